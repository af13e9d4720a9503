//! Data retention (`idp::retention`): rows past their window are deleted by
//! a pass, rows inside it stay, reuse detection and JWKS keep what they need,
//! `/metrics` counts it, one node prunes at a time, and a database lost in
//! the middle of a pass leaves whole batches and no lock behind.

use std::sync::Arc;

use idp::clock::{Clock, ManualClock};
use idp::domain::{ClientId, ClientKind, Email, GrantType, IdTokenAlg, RedirectUri, UserId};
use idp::retention::{Outcome, RetentionError, run_once};
use idp::store::{AuditEvent, AuditQuery, NewClient, NewRefreshToken, NewToken, NewUser};
use idp::store::{OutgoingMail, RETENTION_APPLICATION_NAME, RETENTION_LOCK_KEY, SharedStore};
use sqlx::Connection;
use time::{Duration, OffsetDateTime};

use crate::{Backend, TestApp};

on_both_backends!(
    audit_events_are_kept_audit_days_and_counted_in_metrics,
    audit_days_zero_keeps_every_event,
    mail_is_kept_per_outcome,
    links_are_kept_link_days_after_use_or_expiry,
    refresh_tokens_stay_while_their_family_lives,
    signing_keys_stay_while_published_or_still_trusted,
);

mod postgres_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_node_prunes_at_a_time() {
        super::one_node_prunes_at_a_time().await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_database_lost_mid_pass_leaves_whole_batches() {
        super::a_database_lost_mid_pass_leaves_whole_batches().await
    }
}

const KIND: &str = "test.retention";

async fn pass(app: &TestApp) -> Outcome {
    run_once(&app.state).await.expect("a retention pass")
}

/// The first column of every row `sql` returns, as text, sorted.
async fn column(app: &TestApp, sql: &'static str) -> Vec<String> {
    let url = app.state.config.database.url.expose().to_owned();
    let mut values: Vec<String> = match app.backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
        }
    };
    values.sort();
    values
}

async fn metrics(app: &TestApp) -> String {
    let response = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// The value of the series `series` (name and labels) in `body`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn pruned_total(body: &str, table: &str) -> f64 {
    let series = format!("idp_retention_rows_pruned_total{{table=\"{table}\"}}");
    sample(body, &series).unwrap_or_else(|| panic!("no {series} in\n{body}"))
}

async fn record(app: &TestApp, label: &str, at: OffsetDateTime) {
    let event = AuditEvent {
        kind: KIND.into(),
        user_id: None,
        actor: None,
        client_id: None,
        ip: None,
        user_agent: None,
        detail: serde_json::json!({ "label": label }),
    };
    app.state.store.record(event, at).await.unwrap();
}

async fn recorded(app: &TestApp) -> Vec<String> {
    let query = AuditQuery {
        kind: Some(KIND.into()),
        limit: 100,
        ..AuditQuery::default()
    };
    let mut labels: Vec<String> = app
        .state
        .store
        .search_audit_events(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.detail["label"].as_str().unwrap().to_owned())
        .collect();
    labels.sort();
    labels
}

async fn audit_events_are_kept_audit_days_and_counted_in_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let start = app.clock.now();
    record(&app, "old", start).await;
    app.clock.advance(Duration::days(2));
    record(&app, "recent", app.clock.now()).await;
    let before = metrics(&app).await;
    assert_eq!(pruned_total(&before, "audit_event"), 0.0);

    // 401 days after the first, 399 after the second (default 400 days).
    app.clock.advance(Duration::days(399));
    let outcome = pass(&app).await;
    assert_eq!(outcome.pruned("audit_event"), 1, "{outcome:?}");
    assert_eq!(recorded(&app).await, ["recent"]);

    let after = metrics(&app).await;
    assert_eq!(pruned_total(&after, "audit_event"), 1.0);
    assert_eq!(pruned_total(&after, "refresh_token"), 0.0);
    assert_eq!(
        sample(&after, "idp_retention_last_success_timestamp_seconds"),
        Some(app.clock.now().unix_timestamp() as f64)
    );
}

async fn audit_days_zero_keeps_every_event(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.retention.audit_days = 0).await;
    record(&app, "ancient", app.clock.now()).await;
    app.clock.advance(Duration::days(20 * 365));
    let outcome = pass(&app).await;
    assert_eq!(outcome.pruned("audit_event"), 0);
    assert_eq!(recorded(&app).await, ["ancient"]);
}

fn mail(to: &str) -> OutgoingMail {
    OutgoingMail {
        recipient: to.into(),
        subject: "Hello".into(),
        body_text: "Hello".into(),
        body_html: None,
        sender: None,
    }
}

/// Queues a message at `at` and claims it as a worker would; returns its id.
async fn queued_and_claimed(store: &SharedStore, to: &str, at: OffsetDateTime) -> String {
    let id = store.enqueue_mail(mail(to), at).await.unwrap();
    let claimed = store
        .claim_due_mail(at, Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(claimed.iter().map(|m| &m.id).collect::<Vec<_>>(), [&id]);
    id
}

async fn mail_is_kept_per_outcome(backend: Backend) {
    // The state without the server: no delivery worker to send these first.
    let dir = tempfile::tempdir().unwrap();
    let config = tests::config_for(backend, dir.path()).await;
    let clock = ManualClock::default();
    let state = idp::startup::connect(config, Arc::new(clock.clone()))
        .await
        .unwrap();
    let store = state.store.clone();
    let now = clock.now();
    let failed_old = queued_and_claimed(&store, "a@example.com", now - Duration::days(91)).await;
    store
        .mark_mail_attempt_failed(&failed_old, "550 no such user", None)
        .await
        .unwrap();
    let failed_recent = queued_and_claimed(&store, "b@example.com", now - Duration::days(89)).await;
    store
        .mark_mail_attempt_failed(&failed_recent, "550 no such user", None)
        .await
        .unwrap();
    let sent_old = queued_and_claimed(&store, "c@example.com", now - Duration::days(31)).await;
    store
        .mark_mail_sent(&sent_old, now - Duration::days(31))
        .await
        .unwrap();
    let sent_recent = queued_and_claimed(&store, "d@example.com", now - Duration::days(29)).await;
    store
        .mark_mail_sent(&sent_recent, now - Duration::days(29))
        .await
        .unwrap();
    // Still to be delivered, however old: never pruned.
    let pending = store
        .enqueue_mail(mail("e@example.com"), now - Duration::days(400))
        .await
        .unwrap();

    let outcome = run_once(&state).await.unwrap();
    assert_eq!(outcome.pruned("mail_outbox"), 2, "{outcome:?}");
    let mut kept = vec![failed_recent, sent_recent, pending];
    kept.sort();
    let mut left: Vec<String> = store
        .list_mail(None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    left.sort();
    assert_eq!(left, kept);
}

fn user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        name: "Jane Doe".into(),
        email_verified: false,
        password_hash: Some("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        is_admin: false,
    }
}

fn token(hash: &str, expires_at: OffsetDateTime) -> NewToken {
    NewToken {
        hash: hash.into(),
        expires_at,
    }
}

async fn links_are_kept_link_days_after_use_or_expiry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.state.store.clone();
    let now = app.clock.now();
    let days = Duration::days;
    let jane = store
        .create_user(user("jane@example.com"), now - days(30))
        .await
        .unwrap();
    let m = || mail("jane@example.com");
    // Used 8 days ago (it would still be valid): gone. Using it voids the
    // others of that time, so the rest are made afterwards.
    store
        .create_password_reset(
            &jane.id,
            token("reset-used", now + days(1)),
            None,
            m(),
            now - days(9),
        )
        .await
        .unwrap();
    assert!(
        store
            .complete_password_reset("reset-used", &jane.id, "$argon2id$x", m(), now - days(8))
            .await
            .unwrap()
    );
    for (hash, created) in [("reset-expired-8", 8), ("reset-expired-6", 6)] {
        let at = now - days(created);
        store
            .create_password_reset(
                &jane.id,
                token(hash, at + Duration::hours(1)),
                None,
                m(),
                at,
            )
            .await
            .unwrap();
    }
    store
        .create_password_reset(
            &jane.id,
            token("reset-live", now + Duration::hours(1)),
            None,
            m(),
            now,
        )
        .await
        .unwrap();

    // Verification links: one used 8 days ago, one expired 8 days ago, one
    // used 6 days ago.
    let register = |email: &'static str, hash: &'static str, at: OffsetDateTime| {
        let store = store.clone();
        async move {
            store
                .register_user(
                    user(email),
                    token(hash, at + Duration::hours(48)),
                    mail(email),
                    at,
                )
                .await
                .unwrap()
        }
    };
    // Made 8 days and an hour ago: only its use, not its expiry, is past the window.
    register(
        "a@example.com",
        "verify-used-8",
        now - days(8) - Duration::hours(1),
    )
    .await;
    store
        .verify_email("verify-used-8", now - days(8))
        .await
        .unwrap();
    register("b@example.com", "verify-expired-8", now - days(10)).await;
    register("c@example.com", "verify-used-6", now - days(7)).await;
    store
        .verify_email("verify-used-6", now - days(6))
        .await
        .unwrap();

    let outcome = pass(&app).await;
    assert_eq!(outcome.pruned("password_reset_token"), 2, "{outcome:?}");
    assert_eq!(outcome.pruned("email_verification_token"), 2, "{outcome:?}");
    assert_eq!(
        column(&app, "select token_hash from password_reset_token").await,
        ["reset-expired-6", "reset-live"]
    );
    assert_eq!(
        column(&app, "select token_hash from email_verification_token").await,
        ["verify-used-6"]
    );
}

async fn client(app: &TestApp) -> ClientId {
    let id = ClientId::parse("retention-rp").unwrap();
    let client = NewClient {
        id: id.clone(),
        name: "Retention RP".into(),
        secret_hash: Some("ab".repeat(32)),
        kind: ClientKind::Confidential,
        redirect_uris: vec![RedirectUri::parse("https://rp.example.com/cb").unwrap()],
        post_logout_redirect_uris: vec![],
        first_party: false,
        theme: None,
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into()],
        id_token_alg: IdTokenAlg::ES256,
        require_mfa: false,
        require_pkce: false,
        external_id_claim: None,
    };
    app.state
        .store
        .create_client(client, app.clock.now())
        .await
        .unwrap();
    id
}

struct Family {
    id: String,
    user: UserId,
    client: ClientId,
    /// The family's absolute end.
    ends: OffsetDateTime,
}

impl Family {
    /// A token of the family issued at `at`, idle expiry 30 days.
    fn token(&self, hash: &str, at: OffsetDateTime) -> NewRefreshToken {
        NewRefreshToken {
            token_hash: hash.into(),
            family_id: self.id.clone(),
            user_id: self.user.clone(),
            client_id: self.client.clone(),
            scopes: vec!["openid".into()],
            auth_time: at,
            amr: vec!["pwd".into()],
            acr: None,
            claims: Default::default(),
            expires_at: (at + Duration::days(30)).min(self.ends),
            family_expires_at: self.ends,
        }
    }
}

async fn refresh_tokens_stay_while_their_family_lives(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let store = app.state.store.clone();
    let now = app.clock.now();
    let days = Duration::days;
    let rp = client(&app).await;
    let jane = store
        .create_user(user("jane@example.com"), now - days(100))
        .await
        .unwrap();
    let family = |id: &str, started: OffsetDateTime| Family {
        id: id.into(),
        user: jane.id.clone(),
        client: rp.clone(),
        ends: started + days(90),
    };

    // Live: its first token expired 10 days ago and was rotated long ago,
    // yet presenting it again must still revoke the family.
    let live = family("live", now - days(40));
    let first = store
        .insert_refresh_token(live.token("live-1", now - days(40)), now - days(40))
        .await
        .unwrap();
    let second = store
        .rotate_refresh_token(
            &first.id,
            live.token("live-2", now - days(39)),
            now - days(39),
        )
        .await
        .unwrap()
        .unwrap();
    store
        .rotate_refresh_token(
            &second.id,
            live.token("live-3", now - days(1)),
            now - days(1),
        )
        .await
        .unwrap()
        .unwrap();

    // Revoked 8 days ago (a rotated token came back: reuse): gone.
    let revoked_8 = family("revoked-8", now - days(20));
    let t = store
        .insert_refresh_token(
            revoked_8.token("revoked-8-1", now - days(20)),
            now - days(20),
        )
        .await
        .unwrap();
    store
        .rotate_refresh_token(
            &t.id,
            revoked_8.token("revoked-8-2", now - days(19)),
            now - days(19),
        )
        .await
        .unwrap()
        .unwrap();
    store
        .revoke_refresh_family("revoked-8", now - days(8))
        .await
        .unwrap();

    // Revoked 6 days ago: kept.
    let revoked_6 = family("revoked-6", now - days(20));
    store
        .insert_refresh_token(
            revoked_6.token("revoked-6-1", now - days(20)),
            now - days(20),
        )
        .await
        .unwrap();
    store
        .revoke_refresh_family("revoked-6", now - days(6))
        .await
        .unwrap();

    // Unused for 30 days: expired 8 days ago, gone; 6 days ago, kept.
    let idle_8 = family("idle-8", now - days(38));
    store
        .insert_refresh_token(idle_8.token("idle-8-1", now - days(38)), now - days(38))
        .await
        .unwrap();
    let idle_6 = family("idle-6", now - days(36));
    store
        .insert_refresh_token(idle_6.token("idle-6-1", now - days(36)), now - days(36))
        .await
        .unwrap();

    let outcome = pass(&app).await;
    assert_eq!(outcome.pruned("refresh_token"), 3, "{outcome:?}");
    assert_eq!(
        column(&app, "select token_hash from refresh_token").await,
        ["idle-6-1", "live-1", "live-2", "live-3", "revoked-6-1"]
    );
    let rotated = store
        .refresh_token_by_hash("live-1")
        .await
        .unwrap()
        .unwrap();
    assert!(rotated.rotated_at.is_some() && rotated.revoked_at.is_none());
}

async fn signing_keys_stay_while_published_or_still_trusted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys = &app.state.keys;
    let old: Vec<String> = app
        .state
        .store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(old.len(), 3);
    assert!(keys.rotate(true).await.unwrap());
    // The old keys retire when the new ones activate (publish_ahead, 60
    // minutes) and leave JWKS token_max_lifetime (1 day) later.
    let config = &app.state.config.keys;
    let leaves = Duration::minutes(config.publish_ahead_minutes as i64)
        + Duration::seconds(config.token_max_lifetime_secs as i64);
    app.clock.advance(leaves - Duration::seconds(1));
    keys.reload().await.unwrap();
    let jwks: serde_json::Value = serde_json::from_slice(&keys.jwks_json()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 6, "still published");
    assert_eq!(pass(&app).await.pruned("signing_key"), 0);
    assert_eq!(app.state.store.signing_keys().await.unwrap().len(), 6);

    app.clock.advance(Duration::seconds(1));
    assert_eq!(pass(&app).await.pruned("signing_key"), 3);
    let left: Vec<String> = app
        .state
        .store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(left.len(), 3);
    assert!(
        left.iter().all(|kid| !old.contains(kid)),
        "the old ones went"
    );
    keys.reload().await.unwrap();
    let jwks: serde_json::Value = serde_json::from_slice(&keys.jwks_json()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
}

async fn pg(app: &TestApp) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(app.state.config.database.url.expose())
        .await
        .unwrap()
}

async fn one_node_prunes_at_a_time() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let other = app.spawn_beside(|_| {}).await;
    other.clock.set(app.clock.now());
    record(&app, "old", app.clock.now() - Duration::days(401)).await;

    // A third party (another node mid-pass) holds the lock.
    let mut holder = pg(&app).await;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(RETENTION_LOCK_KEY)
        .execute(&mut holder)
        .await
        .unwrap();
    assert_eq!(run_once(&app.state).await.unwrap(), Outcome::Skipped);
    assert_eq!(run_once(&other.state).await.unwrap(), Outcome::Skipped);
    assert_eq!(recorded(&app).await, ["old"]);
    let body = metrics(&app).await;
    assert_eq!(pruned_total(&body, "audit_event"), 0.0);
    assert_eq!(
        sample(&body, "idp_retention_last_success_timestamp_seconds"),
        Some(0.0),
        "a skipped pass is no success"
    );

    sqlx::query("select pg_advisory_unlock($1)")
        .bind(RETENTION_LOCK_KEY)
        .execute(&mut holder)
        .await
        .unwrap();
    assert_eq!(
        run_once(&other.state).await.unwrap().pruned("audit_event"),
        1
    );
    assert!(recorded(&app).await.is_empty());
    // The pass let go of the lock when it ended.
    let (free,): (bool,) = sqlx::query_as("select pg_try_advisory_lock($1)")
        .bind(RETENTION_LOCK_KEY)
        .fetch_one(&mut holder)
        .await
        .unwrap();
    assert!(free);
}

async fn a_database_lost_mid_pass_leaves_whole_batches() {
    const ROWS: usize = 50;
    const BATCH: usize = 10;
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.retention.batch_size = BATCH as u32;
        c.retention.batch_pause_ms = 400;
    })
    .await;
    for i in 0..ROWS {
        record(
            &app,
            &format!("e{i:02}"),
            app.clock.now() - Duration::days(500),
        )
        .await;
    }
    let state = app.state.clone();
    let running = tokio::spawn(async move { run_once(&state).await });

    // Once the first batch is committed, the pass's connection is cut, as
    // when the database goes away.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while recorded(&app).await.len() == ROWS {
        assert!(std::time::Instant::now() < deadline, "no batch committed");
        tokio::task::yield_now().await;
    }
    let mut admin = pg(&app).await;
    let (cut,): (i64,) = sqlx::query_as(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where application_name = $1 and datname = current_database()",
    )
    .bind(RETENTION_APPLICATION_NAME)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(cut, 1);
    let failed = running.await.unwrap();
    let Err(RetentionError::Prune { table, pruned, .. }) = failed else {
        panic!("the pass should report the lost database: {failed:?}");
    };
    assert_eq!(table, "audit_event");
    let left = recorded(&app).await.len();
    assert!(left > 0, "the pass was cut short");
    assert_eq!((ROWS - left) % BATCH, 0, "whole batches only: {left} left");
    assert_eq!(pruned as usize, ROWS - left);
    let body = metrics(&app).await;
    assert_eq!(pruned_total(&body, "audit_event") as usize, ROWS - left);

    // The lock went with the connection: the next pass finishes the job.
    let outcome = run_once(&app.state).await.unwrap();
    assert_eq!(outcome.pruned("audit_event") as usize, left);
    assert!(recorded(&app).await.is_empty());
    assert_eq!(
        pruned_total(&metrics(&app).await, "audit_event"),
        ROWS as f64
    );
}
