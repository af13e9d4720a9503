//! The durable store's contract, checked on PostgreSQL and on SQLite.

use idp::domain::{ClientId, ClientKind, Email, GrantType, IdTokenAlg, RedirectUri, UserId};
use idp::store::{self, AuditEvent, NewClient, NewUser, SharedStore};
use time::{Duration, OffsetDateTime};

use crate::Backend;

on_both_backends!(
    users_are_unique_by_case_insensitive_email,
    users_list_in_email_order,
    clients_round_trip_every_field,
    duplicate_client_ids_conflict,
    audit_events_filter_by_user_newest_first,
    timestamps_keep_order_below_a_second,
    migrations_are_idempotent,
);

async fn open(backend: Backend) -> (SharedStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = tests::config_for(backend, dir.path()).await;
    let store = store::connect(&config.database).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        name: "Jane Doe".into(),
        email_verified: false,
        password_hash: Some("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        is_admin: false,
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

async fn users_are_unique_by_case_insensitive_email(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let created = store
        .create_user(new_user("Jane@Example.com"), now())
        .await
        .unwrap();
    assert_eq!(created.email.as_str(), "Jane@example.com");
    assert!(!created.disabled);
    assert!(created.locked_until.is_none());

    let found = store
        .user_by_email(&Email::parse("jane@EXAMPLE.com").unwrap())
        .await
        .unwrap()
        .expect("found case-insensitively");
    assert_eq!(found, created);
    assert_eq!(
        store.user_by_id(&created.id).await.unwrap(),
        Some(created.clone())
    );

    let again = store.create_user(new_user("JANE@example.com"), now()).await;
    assert!(matches!(again, Err(store::Error::Conflict)), "{again:?}");
    let unknown = UserId::parse("0190e3c0-0000-7000-8000-000000000000").unwrap();
    assert_eq!(store.user_by_id(&unknown).await.unwrap(), None);
}

async fn users_list_in_email_order(backend: Backend) {
    let (store, _dir) = open(backend).await;
    for email in ["carol@example.com", "alice@example.com", "Bob@example.com"] {
        store.create_user(new_user(email), now()).await.unwrap();
    }
    let all = store.list_users(10, 0).await.unwrap();
    let emails: Vec<_> = all.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(
        emails,
        ["alice@example.com", "Bob@example.com", "carol@example.com"]
    );
    let page = store.list_users(1, 1).await.unwrap();
    assert_eq!(page[0].email.as_str(), "Bob@example.com");
}

fn new_client(id: &str) -> NewClient {
    NewClient {
        id: ClientId::parse(id).unwrap(),
        name: "Helix Support".into(),
        secret_hash: Some("ab".repeat(32)),
        kind: ClientKind::Confidential,
        redirect_uris: vec![
            RedirectUri::parse("https://support.example.com/cb").unwrap(),
            RedirectUri::parse("http://127.0.0.1:9000/cb").unwrap(),
        ],
        post_logout_redirect_uris: vec![
            RedirectUri::parse("https://support.example.com/").unwrap(),
        ],
        first_party: true,
        theme: Some("helix".into()),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into(), "email".into()],
        id_token_alg: IdTokenAlg::ES256,
        require_mfa: true,
        require_pkce: true,
        external_id_claim: None,
    }
}

async fn clients_round_trip_every_field(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let input = new_client("support-portal");
    let created = store.create_client(input.clone(), now()).await.unwrap();
    let read = store.client_by_id(&input.id).await.unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(read.redirect_uris, input.redirect_uris);
    assert_eq!(
        read.post_logout_redirect_uris,
        input.post_logout_redirect_uris
    );
    assert_eq!(read.grant_types, input.grant_types);
    assert_eq!(read.scopes, input.scopes);
    assert_eq!(read.theme.as_deref(), Some("helix"));
    assert_eq!(read.id_token_alg, IdTokenAlg::ES256);
    assert!(read.first_party && read.require_mfa && read.require_pkce);
    assert_eq!(read.kind, ClientKind::Confidential);
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
    let missing = ClientId::parse("nobody").unwrap();
    assert_eq!(store.client_by_id(&missing).await.unwrap(), None);
}

async fn duplicate_client_ids_conflict(backend: Backend) {
    let (store, _dir) = open(backend).await;
    store
        .create_client(new_client("portal"), now())
        .await
        .unwrap();
    let again = store.create_client(new_client("portal"), now()).await;
    assert!(matches!(again, Err(store::Error::Conflict)), "{again:?}");
}

fn event(kind: &str, user: Option<&UserId>) -> AuditEvent {
    AuditEvent {
        kind: kind.into(),
        user_id: user.cloned(),
        actor: None,
        client_id: None,
        ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
        detail: serde_json::json!({ "n": kind }),
    }
}

async fn audit_events_filter_by_user_newest_first(backend: Backend) {
    let (store, _dir) = open(backend).await;
    let jane = store
        .create_user(new_user("jane@example.com"), now())
        .await
        .unwrap();
    let t0 = now();
    store
        .record(event("signin", Some(&jane.id)), t0)
        .await
        .unwrap();
    store.record(event("other", None), t0).await.unwrap();
    store
        .record(event("signout", Some(&jane.id)), t0 + Duration::seconds(1))
        .await
        .unwrap();

    let janes = store.audit_events(Some(&jane.id), 10).await.unwrap();
    let kinds: Vec<_> = janes.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(kinds, ["signout", "signin"]);
    assert_eq!(janes[1].event.detail["n"], "signin");
    assert_eq!(janes[1].event.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(store.audit_events(None, 10).await.unwrap().len(), 3);
    assert_eq!(store.audit_events(None, 2).await.unwrap().len(), 2);
}

async fn timestamps_keep_order_below_a_second(backend: Backend) {
    let (store, _dir) = open(backend).await;
    // Microsecond precision survives a round trip on both backends.
    let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
        + Duration::microseconds(123_456);
    store.record(event("precise", None), at).await.unwrap();
    let read = store.audit_events(None, 1).await.unwrap();
    assert_eq!(read[0].occurred_at, at);
    let user = store
        .create_user(new_user("t@example.com"), at)
        .await
        .unwrap();
    assert_eq!(user.created_at, at);
}

async fn migrations_are_idempotent(backend: Backend) {
    let (store, _dir) = open(backend).await;
    store
        .create_user(new_user("keep@example.com"), now())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert_eq!(store.list_users(10, 0).await.unwrap().len(), 1);
}
