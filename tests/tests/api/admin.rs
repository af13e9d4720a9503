//! The admin API over HTTP, on the admin listener: who may call it (every
//! refusal leaves everything as it was), users, the audit trail, and the
//! OpenAPI document.
//!
//! People's tokens are minted here with the server's own keys and code
//! (`oidc::issue::access_token`), as `/token` would mint them after a
//! console sign-in; automation tokens come from `/token` itself.

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};
use time::Duration;
use time::format_description::well_known::Rfc3339;

use idp::domain::{ClientId, ClientKind, GrantType, IdTokenAlg};
use idp::oidc::issue::Authentication;
use idp::store::User;

use crate::{Backend, TestApp};

on_both_backends!(
    admin_api_lives_only_on_the_admin_listener_and_describes_itself,
    automation_searches_and_pages_users,
    administrator_disables_enables_and_unlocks_users,
    admin_role_is_granted_and_revoked,
    reset_mfa_removes_the_authenticator,
    audit_events_filter_by_user_type_and_time,
    clients_are_registered_edited_and_their_secrets_rotated,
    outbox_and_signing_keys,
    refused_tokens_change_nothing,
);

const PW: &str = "Correct-Horse-Battery-9";
const AUTOMATION: &str = "automation";

/// Registers a confidential client_credentials client with `scopes`; returns its secret.
async fn register_client(app: &TestApp, id: &str, scopes: &[&str]) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    idp::oidc::register_client_with_scopes(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: ClientId::parse(id).unwrap(),
            name: id.into(),
            kind: ClientKind::Confidential,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: true,
            theme: None,
            grant_types: vec![GrantType::ClientCredentials],
            id_token_alg: IdTokenAlg::RS256,
            require_mfa: false,
        },
        &scopes,
    )
    .await
    .unwrap()
    .secret
    .unwrap()
}

/// A client_credentials token from `/token`.
async fn client_token(app: &TestApp, id: &str, secret: &str) -> String {
    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// A token for the automation client, which is granted `admin`.
async fn automation_token(app: &TestApp) -> String {
    let secret = register_client(app, AUTOMATION, &["admin"]).await;
    client_token(app, AUTOMATION, &secret).await
}

/// A person's access token as `/token` issues it after a sign-in with `amr`.
fn user_token(app: &TestApp, user: &User, client: &str, amr: &[&str]) -> String {
    let auth = Authentication {
        auth_time: app.clock_now().unix_timestamp(),
        amr: amr.iter().map(|s| s.to_string()).collect(),
        acr: if amr.contains(&"otp") { "2" } else { "1" }.into(),
    };
    let scopes = ["openid".to_string(), "admin".to_string()];
    idp::oidc::issue::access_token(
        &app.state,
        &ClientId::parse(client).unwrap(),
        user.id.as_str(),
        &scopes,
        Some(&auth),
    )
    .unwrap()
    .0
}

/// An administrator signed in to the console with a one-time code.
async fn console_admin(app: &TestApp, email: &str) -> (User, String) {
    let user = app.create_user(email, PW, "Admin").await;
    let user = app
        .state
        .store
        .set_user_admin(&user.id, true, app.clock_now())
        .await
        .unwrap()
        .unwrap();
    let token = user_token(
        app,
        &user,
        idp::admin_api::CONSOLE_CLIENT_ID,
        &["pwd", "otp"],
    );
    (user, token)
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = app.http.request(method, app.admin_url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let r = call(app, reqwest::Method::GET, path, Some(token)).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let r = call(app, reqwest::Method::POST, path, Some(token)).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// `(type, actor, user_id)` of every admin event, oldest first.
async fn admin_events(app: &TestApp) -> Vec<(String, Option<String>, Option<String>)> {
    let mut events: Vec<_> = app
        .state
        .store
        .audit_events(None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind.starts_with("admin.") || e.event.kind == "mfa.reset")
        .map(|e| {
            (
                e.event.kind,
                e.event.actor,
                e.event.user_id.map(|u| u.to_string()),
            )
        })
        .collect();
    events.reverse();
    events
}

// ---------------------------------------------------------------- listener and document

async fn admin_api_lives_only_on_the_admin_listener_and_describes_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_ne!(app.admin_base_url, app.base_url);
    let token = automation_token(&app).await;

    let (status, _) = get(&app, "/admin/api/users", &token).await;
    assert_eq!(status, StatusCode::OK);
    // The public listener knows nothing of administration.
    for path in ["/admin/api/users", "/admin/api/openapi.json"] {
        let r = app
            .http
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "{path} on the public port"
        );
    }
    // ...and the admin listener serves none of the public pages.
    let r = app.http.get(app.admin_url("/login")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "not_found");

    let r = app
        .http
        .get(app.admin_url("/admin/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (path, method) in [
        ("/admin/api/users", "get"),
        ("/admin/api/users/{id}", "get"),
        ("/admin/api/users/{id}/disable", "post"),
        ("/admin/api/users/{id}/enable", "post"),
        ("/admin/api/users/{id}/unlock", "post"),
        ("/admin/api/users/{id}/reset-mfa", "post"),
        ("/admin/api/users/{id}/grant-admin", "post"),
        ("/admin/api/users/{id}/revoke-admin", "post"),
        ("/admin/api/audit-events", "get"),
        ("/admin/api/clients", "get"),
        ("/admin/api/clients", "post"),
        ("/admin/api/clients/{id}", "get"),
        ("/admin/api/clients/{id}", "patch"),
        ("/admin/api/clients/{id}/rotate-secret", "post"),
        ("/admin/api/mail", "get"),
        ("/admin/api/mail/{id}/retry", "post"),
        ("/admin/api/keys", "get"),
        ("/admin/api/keys/rotate", "post"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is described");
        assert_eq!(op["security"], json!([{ "bearer": [] }]), "{path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for schema in ["UserView", "UserPage", "AuditEventPage", "ErrorBody"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

// ---------------------------------------------------------------- users

async fn automation_searches_and_pages_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    for (email, name) in [
        ("carol@example.com", "Carol Jones"),
        ("alice@example.com", "Alice Smith"),
        ("bob@example.org", "Bob Smith"),
        ("dave_x@example.com", "Dave"),
    ] {
        app.create_user(email, PW, name).await;
    }

    // Pages of two, ordered by email, until the cursor runs out.
    let mut emails = Vec::new();
    let mut path = "/admin/api/users?limit=2".to_string();
    loop {
        let (status, page) = get(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for u in items {
            assert!(u.get("password_hash").is_none(), "{u}");
            emails.push(u["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/admin/api/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        emails,
        [
            "alice@example.com",
            "bob@example.org",
            "carol@example.com",
            "dave_x@example.com"
        ]
    );

    // Search by part of the name or email, case-insensitively.
    let found = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = get(&app, "/admin/api/users?q=SMITH", &token).await;
    assert_eq!(found(&page), ["alice@example.com", "bob@example.org"]);
    let (_, page) = get(&app, "/admin/api/users?q=example.org", &token).await;
    assert_eq!(found(&page), ["bob@example.org"]);
    // LIKE wildcards are taken literally.
    let (_, page) = get(&app, "/admin/api/users?q=_", &token).await;
    assert_eq!(found(&page), ["dave_x@example.com"]);
    let (_, page) = get(&app, "/admin/api/users?q=%25", &token).await;
    assert_eq!(found(&page), Vec::<String>::new());

    // One user, by id; its view shows the state administrators act on.
    let alice = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, page) = get(&app, &format!("/admin/api/users?q={}", alice.id), &token).await;
    assert_eq!(found(&page), ["alice@example.com"]);
    let (status, user) = get(&app, &format!("/admin/api/users/{}", alice.id), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], alice.id.as_str());
    assert_eq!(user["name"], "Alice Smith");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["is_admin"], false);
    assert_eq!(user["mfa_enabled"], false);
    assert_eq!(user["locked_until"], Value::Null);

    // Bad input: a clear JSON error, never a 500.
    for (path, status) in [
        ("/admin/api/users?limit=0", StatusCode::BAD_REQUEST),
        ("/admin/api/users?limit=201", StatusCode::BAD_REQUEST),
        ("/admin/api/users?limit=many", StatusCode::BAD_REQUEST),
        ("/admin/api/users?cursor=%21%21", StatusCode::BAD_REQUEST),
        ("/admin/api/users/not-a-user-id", StatusCode::NOT_FOUND),
        (
            "/admin/api/users/0190a5a4-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, body) = get(&app, path, &token).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
    let (status, body) = post(
        &app,
        "/admin/api/users/0190a5a4-0000-7000-8000-000000000000/disable",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn administrator_disables_enables_and_unlocks_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let actor = format!("user:{}", admin.id);

    // Disabled: sign-in is refused.
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/disable", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["disabled"], true);
    assert_ne!(
        app.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER,
        "a disabled account cannot sign in"
    );
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/enable", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["disabled"], false);
    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status,
        StatusCode::SEE_OTHER,
        "enabled again"
    );

    // Administrators cannot lock themselves out.
    let (status, body) = post(
        &app,
        &format!("/admin/api/users/{}/disable", admin.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");

    // Locked after five failures; an administrator lifts the lock at once.
    let browser = app.other_browser();
    for _ in 0..5 {
        browser
            .sign_in("jane@example.com", "wrong-password-123")
            .await;
    }
    assert_eq!(
        browser.sign_in("jane@example.com", PW).await.status,
        StatusCode::FORBIDDEN,
        "locked"
    );
    let (_, user) = get(&app, &format!("/admin/api/users/{}", jane.id), &token).await;
    assert!(user["locked_until"].is_string(), "{user}");
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/unlock", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["locked_until"], Value::Null);
    assert_eq!(
        browser.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER,
        "unlocked"
    );

    let jane_id = Some(jane.id.to_string());
    assert_eq!(
        admin_events(&app).await,
        [
            (
                "admin.user_disabled".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
            (
                "admin.user_enabled".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
            (
                "admin.user_unlocked".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
        ]
    );
    // The event records where the administrator called from.
    let recorded = app
        .state
        .store
        .audit_events(Some(&jane.id), 50)
        .await
        .unwrap();
    let disabled = recorded
        .iter()
        .find(|e| e.event.kind == "admin.user_disabled")
        .unwrap();
    assert_eq!(disabled.event.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        disabled.event.user_agent.as_deref(),
        Some(tests::USER_AGENT)
    );
}

async fn admin_role_is_granted_and_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let automation = automation_token(&app).await;
    let (root, root_token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let jane_token = user_token(
        &app,
        &jane,
        idp::admin_api::CONSOLE_CLIENT_ID,
        &["pwd", "otp"],
    );

    let (status, _) = get(&app, "/admin/api/users", &jane_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not an administrator yet");
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/grant-admin", jane.id),
        &automation,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["is_admin"], true);
    // Checked at each call: the same token works now...
    let (status, _) = get(&app, "/admin/api/users", &jane_token).await;
    assert_eq!(status, StatusCode::OK);
    // ...and stops working the moment the role goes.
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/revoke-admin", jane.id),
        &root_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["is_admin"], false);
    let (status, _) = get(&app, "/admin/api/users", &jane_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Nobody revokes their own role (the last administrator stays one).
    let (status, _) = post(
        &app,
        &format!("/admin/api/users/{}/revoke-admin", root.id),
        &root_token,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let jane_id = Some(jane.id.to_string());
    assert_eq!(
        admin_events(&app).await,
        [
            (
                "admin.admin_granted".into(),
                Some(format!("client:{AUTOMATION}")),
                jane_id.clone()
            ),
            (
                "admin.admin_revoked".into(),
                Some(format!("user:{}", root.id)),
                jane_id
            ),
        ]
    );
}

async fn reset_mfa_removes_the_authenticator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let store = &app.state.store;
    let now = app.clock_now();
    store
        .start_totp_enrolment(
            &jane.id,
            idp::store::NewTotp {
                secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into(),
                secret_encrypted: false,
                digits: 6,
                period_secs: 30,
            },
            now,
        )
        .await
        .unwrap();
    assert!(store.confirm_totp(&jane.id, 1, &[], now).await.unwrap());
    let (_, user) = get(&app, &format!("/admin/api/users/{}", jane.id), &token).await;
    assert_eq!(user["mfa_enabled"], true);

    let path = format!("/admin/api/users/{}/reset-mfa", jane.id);
    let (status, user) = post(&app, &path, &token).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["mfa_enabled"], false);
    assert!(store.totp_credential(&jane.id).await.unwrap().is_none());
    // Nothing left to reset: said so, nothing recorded.
    let (status, body) = post(&app, &path, &token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    assert_eq!(
        admin_events(&app).await,
        [(
            "mfa.reset".into(),
            Some(format!("user:{}", admin.id)),
            Some(jane.id.to_string())
        )]
    );
    // The owner is told.
    let mail = store.list_mail(None, 50).await.unwrap();
    assert!(
        mail.iter().any(|m| m.mail.recipient == "jane@example.com"),
        "a notice is queued for the owner"
    );
}

// ---------------------------------------------------------------- audit trail

async fn audit_events_filter_by_user_type_and_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let john = app.create_user("john@example.com", PW, "John").await;

    // An hour apart, each with a token fresh at the time.
    let start = app.clock_now();
    for (i, (user, action)) in [(&jane, "disable"), (&jane, "enable"), (&john, "disable")]
        .into_iter()
        .enumerate()
    {
        app.clock.set(start + Duration::hours(i as i64));
        let token = user_token(&app, &admin, idp::admin_api::CONSOLE_CLIENT_ID, &["otp"]);
        let path = format!("/admin/api/users/{}/{action}", user.id);
        let (status, body) = post(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let token = user_token(&app, &admin, idp::admin_api::CONSOLE_CLIENT_ID, &["otp"]);

    let kinds = |page: &Value| -> Vec<(String, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["user_id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let jane_id = jane.id.to_string();
    let john_id = john.id.to_string();
    let at = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap().replace('+', "%2B");

    let (status, page) = get(
        &app,
        &format!("/admin/api/audit-events?user_id={jane_id}"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        kinds(&page),
        [
            ("admin.user_enabled".into(), jane_id.clone()),
            ("admin.user_disabled".into(), jane_id.clone()),
        ],
        "most recent first"
    );
    assert_eq!(
        page["items"][0]["actor"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("user")
    );
    assert_eq!(page["next_cursor"], Value::Null);

    let (_, page) = get(
        &app,
        "/admin/api/audit-events?type=admin.user_disabled",
        &token,
    )
    .await;
    assert_eq!(
        kinds(&page),
        [
            ("admin.user_disabled".into(), john_id.clone()),
            ("admin.user_disabled".into(), jane_id.clone()),
        ]
    );

    // A time range: [since, until).
    let since = at(start + Duration::minutes(30));
    let until = at(start + Duration::minutes(90));
    let (_, page) = get(
        &app,
        &format!("/admin/api/audit-events?type=admin.user_enabled&since={since}&until={until}"),
        &token,
    )
    .await;
    assert_eq!(
        kinds(&page),
        [("admin.user_enabled".into(), jane_id.clone())]
    );
    let (_, page) = get(
        &app,
        &format!("/admin/api/audit-events?since={since}&until={until}&user_id={john_id}"),
        &token,
    )
    .await;
    assert_eq!(kinds(&page), Vec::<(String, String)>::new());

    // Pages of one, following the cursor, cover the same events.
    let mut seen = Vec::new();
    let mut path = "/admin/api/audit-events?type=admin.user_disabled&limit=1".to_string();
    loop {
        let (status, page) = get(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(kinds(&page));
        match page["next_cursor"].as_str() {
            Some(c) => {
                path =
                    format!("/admin/api/audit-events?type=admin.user_disabled&limit=1&cursor={c}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            ("admin.user_disabled".into(), john_id),
            ("admin.user_disabled".into(), jane_id),
        ]
    );

    for path in [
        "/admin/api/audit-events?since=yesterday",
        "/admin/api/audit-events?until=2026-13-01T00:00:00Z",
        "/admin/api/audit-events?user_id=nobody",
        "/admin/api/audit-events?cursor=abc",
        "/admin/api/audit-events?limit=-1",
    ] {
        let (status, body) = get(&app, path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], "bad_request", "{path}");
    }
}

// ---------------------------------------------------------------- clients

async fn send_json(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let r = app
        .http
        .request(method, app.admin_url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn clients_are_registered_edited_and_their_secrets_rotated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let actor = Some(format!("client:{AUTOMATION}"));
    let post_json = |path: &'static str, body: Value| {
        let app = app.clone();
        let token = token.clone();
        async move { send_json(&app, reqwest::Method::POST, path, &token, &body).await }
    };

    let (status, created) = post_json(
        "/admin/api/clients",
        json!({
            "client_id": "billing",
            "name": "Billing",
            "redirect_uris": ["https://billing.example.com/cb"],
            "theme": "helix",
            "id_token_alg": "ES256",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 random bits, base64url");
    let client = &created["client"];
    assert_eq!(client["client_id"], "billing");
    assert_eq!(client["kind"], "confidential");
    assert_eq!(client["theme"], "helix");
    assert_eq!(client["id_token_alg"], "ES256");
    assert_eq!(
        client["scopes"],
        json!(["openid", "profile", "email", "offline_access"]),
        "admin is never a default"
    );
    assert!(client.get("secret_hash").is_none());

    let (status, public) = post_json(
        "/admin/api/clients",
        json!({
            "client_id": "spa",
            "name": "Single-page app",
            "public": true,
            "redirect_uris": ["http://127.0.0.1:3000/cb"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{public}");
    assert_eq!(public["client_secret"], Value::Null);

    // Refused registrations say why.
    for (body, status, reason) in [
        (
            json!({ "client_id": "billing", "name": "Again", "redirect_uris": ["https://b.example.com/cb"] }),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            json!({ "client_id": "x", "name": "X", "redirect_uris": ["ftp://x.example.com"] }),
            StatusCode::BAD_REQUEST,
            "redirect_uris",
        ),
        (
            json!({ "client_id": "x", "name": "X", "public": true, "grant_types": ["client_credentials"] }),
            StatusCode::BAD_REQUEST,
            "public client",
        ),
        (
            json!({ "client_id": "x", "name": "X", "grant_types": ["client_credentials"], "scopes": ["root"] }),
            StatusCode::BAD_REQUEST,
            "unknown scope root",
        ),
        (
            json!({ "client_id": "x", "name": "X", "grant_types": ["password"] }),
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            json!({ "client_id": "x", "name": "X", "colour": "red" }),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (
            json!({ "name": "no id" }),
            StatusCode::BAD_REQUEST,
            "client_id",
        ),
    ] {
        let (got, answer) = post_json("/admin/api/clients", body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(reason),
            "{body} -> {answer}"
        );
    }
    assert_eq!(
        app.state.store.list_clients().await.unwrap().len(),
        3,
        "none of them registered"
    );

    let (status, list) = get(&app, "/admin/api/clients", &token).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [AUTOMATION, "billing", "spa"]);

    // Edits: new redirect URI, theme taken away, MFA required.
    let (status, edited) = send_json(
        &app,
        reqwest::Method::PATCH,
        "/admin/api/clients/billing",
        &token,
        &json!({
            "redirect_uris": ["https://billing.example.com/callback"],
            "theme": null,
            "require_mfa": true,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        edited["redirect_uris"],
        json!(["https://billing.example.com/callback"])
    );
    assert_eq!(edited["theme"], Value::Null);
    assert_eq!(edited["require_mfa"], true);
    assert_eq!(edited["name"], "Billing", "untouched");
    let (_, shown) = get(&app, "/admin/api/clients/billing", &token).await;
    assert_eq!(shown, edited);
    for (path, body, status) in [
        (
            "/admin/api/clients/billing",
            json!({ "grant_types": [] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/api/clients/billing",
            json!({ "redirect_uris": [] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/api/clients/billing",
            json!({ "kind": "public" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/api/clients/nobody",
            json!({ "name": "N" }),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, answer) = send_json(&app, reqwest::Method::PATCH, path, &token, &body).await;
        assert_eq!(got, status, "{body} -> {answer}");
    }

    // A new secret: the old one stops working at once.
    let worker_secret = register_client(&app, "worker", &["openid"]).await;
    client_token(&app, "worker", &worker_secret).await;
    let (status, rotated) = post_json("/admin/api/clients/worker/rotate-secret", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, worker_secret);
    let old = app
        .http
        .post(app.url("/token"))
        .basic_auth("worker", Some(&worker_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    client_token(&app, "worker", &new_secret).await;
    let (status, _) = post_json("/admin/api/clients/spa/rotate-secret", json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a public client has no secret"
    );

    let events: Vec<(String, Option<String>, Option<String>)> = app
        .state
        .store
        .audit_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .filter(|e| e.event.kind.starts_with("admin.client"))
        .map(|e| {
            (
                e.event.kind,
                e.event.actor,
                e.event.client_id.map(|c| c.to_string()),
            )
        })
        .collect();
    let event =
        |kind: &str, client: &str| (kind.to_owned(), actor.clone(), Some(client.to_owned()));
    assert_eq!(
        events,
        [
            event("admin.client_created", "billing"),
            event("admin.client_created", "spa"),
            event("admin.client_updated", "billing"),
            event("admin.client_secret_rotated", "worker"),
        ]
    );
}

// ---------------------------------------------------------------- outbox and keys

async fn outbox_and_signing_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let actor = Some(format!("client:{AUTOMATION}"));
    let store = &app.state.store;

    // A message that failed for good; due in an hour, so this node's worker
    // leaves it alone while the test claims it.
    let later = app.clock_now() + Duration::hours(1);
    let id = store
        .enqueue_mail(
            idp::store::OutgoingMail {
                recipient: "jane@example.com".into(),
                subject: "Reset your password".into(),
                body_text: "https://id.example.com/reset-password?token=secret".into(),
                body_html: None,
            },
            later,
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due_mail(later, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .mark_mail_attempt_failed(&id, "550 no such user", None)
        .await
        .unwrap();

    let (status, list) = get(&app, "/admin/api/mail?status=failed", &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["recipient"], "jane@example.com");
    assert_eq!(items[0]["subject"], "Reset your password");
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["last_error"], "550 no such user");
    assert!(
        !list.to_string().contains("token=secret"),
        "bodies (reset links) are never shown"
    );
    let (status, _) = get(&app, "/admin/api/mail?status=sent", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&app, "/admin/api/mail?status=lost", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = post(&app, &format!("/admin/api/mail/{id}/retry"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    // Due now: the worker, woken, delivers it (to a file in these tests).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.list_mail(None, 10).await.unwrap()[0].status != idp::store::MailStatus::Sent {
        assert!(
            std::time::Instant::now() < deadline,
            "the retried message is sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Only a failed message can be retried.
    let (status, body) = post(&app, &format!("/admin/api/mail/{id}/retry"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Keys: one active per algorithm; a rotation publishes the next ones.
    let (status, keys) = get(&app, "/admin/api/keys", &token).await;
    assert_eq!(status, StatusCode::OK);
    let states = |keys: &Value| -> Vec<(String, String)> {
        let mut v: Vec<_> = keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["alg"].as_str().unwrap().to_owned(),
                    k["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect()
    };
    assert_eq!(
        states(&keys),
        pairs(&[
            ("ES256", "active"),
            ("EdDSA", "active"),
            ("RS256", "active")
        ])
    );
    let (status, rotated) = post(&app, "/admin/api/keys/rotate", &token).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let kids: Vec<String> = rotated["kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 3);
    let (_, keys) = get(&app, "/admin/api/keys", &token).await;
    assert_eq!(
        states(&keys),
        pairs(&[
            ("ES256", "active"),
            ("ES256", "next"),
            ("EdDSA", "active"),
            ("EdDSA", "next"),
            ("RS256", "active"),
            ("RS256", "next"),
        ])
    );
    for k in keys["items"].as_array().unwrap() {
        assert_eq!(
            k["state"] == "next",
            kids.contains(&k["kid"].as_str().unwrap().to_owned()),
            "{k}"
        );
        assert!(k.get("private_key").is_none());
    }

    assert_eq!(
        admin_events(&app).await,
        [
            ("admin.mail_retried".into(), actor.clone(), None),
            ("admin.keys_rotated".into(), actor, None),
        ]
    );
}

// ---------------------------------------------------------------- refusals

/// What a refusal must look like: the status, and an RFC 6750 challenge
/// with the error code (none when no token was sent).
async fn assert_refused(
    app: &TestApp,
    token: Option<&str>,
    status: StatusCode,
    error: Option<&str>,
    case: &str,
) {
    let target = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("jane@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    for (method, path) in [
        (reqwest::Method::GET, "/admin/api/users".to_string()),
        (reqwest::Method::GET, "/admin/api/audit-events".to_string()),
        (
            reqwest::Method::POST,
            format!("/admin/api/users/{}/disable", target.id),
        ),
        (
            reqwest::Method::POST,
            format!("/admin/api/users/{}/grant-admin", target.id),
        ),
        (reqwest::Method::POST, "/admin/api/keys/rotate".to_string()),
    ] {
        let r = call(app, method.clone(), &path, token).await;
        assert_eq!(r.status(), status, "{case}: {method} {path}");
        let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
        assert!(
            challenge.starts_with("Bearer realm="),
            "{case}: {challenge}"
        );
        match error {
            Some(e) => assert!(
                challenge.contains(&format!("error=\"{e}\"")),
                "{case}: {challenge}"
            ),
            None => assert!(!challenge.contains("error="), "{case}: {challenge}"),
        }
        let body: Value = r.json().await.unwrap();
        assert!(body["message"].is_string(), "{case}: {body}");
    }
    let after = app
        .state
        .store
        .user_by_id(&target.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !after.disabled && !after.is_admin,
        "{case}: nothing changed"
    );
    assert_eq!(admin_events(app).await, [], "{case}: nothing recorded");
}

async fn refused_tokens_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let console = idp::admin_api::CONSOLE_CLIENT_ID;
    app.create_user("jane@example.com", PW, "Jane").await;
    let (root, root_token) = console_admin(&app, "root@example.com").await;
    let plain = app.create_user("plain@example.com", PW, "Plain").await;

    assert_refused(&app, None, StatusCode::UNAUTHORIZED, None, "no token").await;
    assert_refused(
        &app,
        Some("not.a.jwt"),
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
        "garbage",
    )
    .await;

    let not_admin = user_token(&app, &plain, console, &["pwd", "otp"]);
    assert_refused(
        &app,
        Some(&not_admin),
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
        "not an administrator",
    )
    .await;

    let password_only = user_token(&app, &root, console, &["pwd"]);
    assert_refused(
        &app,
        Some(&password_only),
        StatusCode::UNAUTHORIZED,
        Some("insufficient_user_authentication"),
        "no one-time code",
    )
    .await;
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        Some(&password_only),
    )
    .await;
    assert!(
        r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("acr_values=\"2\""),
        "RFC 9470: says which acr to come back with"
    );

    let other_client = user_token(&app, &root, "some-rp", &["pwd", "otp"]);
    assert_refused(
        &app,
        Some(&other_client),
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
        "a person's token for another client",
    )
    .await;

    let secret = register_client(&app, "reporting", &["openid", "email"]).await;
    let no_scope = client_token(&app, "reporting", &secret).await;
    assert_refused(
        &app,
        Some(&no_scope),
        StatusCode::FORBIDDEN,
        Some("insufficient_scope"),
        "a client without the admin scope",
    )
    .await;

    // Another audience: signed by the right key, meant for someone else.
    let (_, mut claims) = idp::oidc::issue::access_token(
        &app.state,
        &ClientId::parse(console).unwrap(),
        root.id.as_str(),
        &["openid".into(), "admin".into()],
        Some(&Authentication {
            auth_time: app.clock_now().unix_timestamp(),
            amr: vec!["pwd".into(), "otp".into()],
            acr: "2".into(),
        }),
    )
    .unwrap();
    claims.aud = "https://api.example.com".into();
    let elsewhere = app
        .state
        .keys
        .sign(app.state.config.tokens.access_token_alg, "at+jwt", &claims)
        .unwrap();
    assert_refused(
        &app,
        Some(&elsewhere),
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
        "another audience",
    )
    .await;

    // Revoked at /revoke by the client it was issued to.
    let automation_secret = register_client(&app, AUTOMATION, &["admin"]).await;
    let revoked = client_token(&app, AUTOMATION, &automation_secret).await;
    let r = app
        .http
        .post(app.url("/revoke"))
        .basic_auth(AUTOMATION, Some(&automation_secret))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_refused(
        &app,
        Some(&revoked),
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
        "revoked",
    )
    .await;

    // Disabled administrators lose access at once.
    let (other_admin, other_token) = console_admin(&app, "second@example.com").await;
    app.state
        .store
        .set_user_disabled(&other_admin.id, true, app.clock_now())
        .await
        .unwrap();
    assert_refused(
        &app,
        Some(&other_token),
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
        "a disabled administrator",
    )
    .await;

    // Expired: the good token, ten minutes and a bit later.
    let (status, _) = get(&app, "/admin/api/users", &root_token).await;
    assert_eq!(status, StatusCode::OK, "the good token works before");
    app.clock.advance(Duration::seconds(
        app.state.config.tokens.access_token_ttl_secs as i64 + 10,
    ));
    assert_refused(
        &app,
        Some(&root_token),
        StatusCode::UNAUTHORIZED,
        Some("invalid_token"),
        "expired",
    )
    .await;
}
