//! The admin API over HTTP, on the admin listener: who may call it (every
//! refusal leaves everything as it was), users, the audit trail, and the
//! OpenAPI document.
//!
//! People's tokens are minted here with the server's own keys and code
//! (`oidc::issue::access_token`), as `/token` would mint them after a
//! console sign-in; automation tokens come from `/token` itself.

mod clients;
mod console;
mod external_ids;
mod import;
mod pages;
mod pages_readable;
mod passkeys;
mod profile;
mod records;
mod sessions;
mod users;

use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::{Value, json};
use time::Duration;

use idp::domain::{ClientId, ClientKind, GrantType, IdTokenAlg};
use idp::oidc::issue::Authentication;
use idp::store::User;

use crate::{Backend, TestApp};

on_both_backends!(
    admin_api_lives_only_on_the_admin_listener_and_describes_itself,
    refused_tokens_change_nothing,
    a_passkey_is_a_second_factor_for_administration,
    an_old_sign_in_does_not_administer,
    the_admin_listener_trusts_only_its_own_proxies,
);

const PW: &str = "Correct-Horse-Battery-9";
const AUTOMATION: &str = "automation";

/// Registers a first-party client; returns its secret (confidential clients).
async fn register(
    app: &TestApp,
    id: &str,
    kind: ClientKind,
    grant: GrantType,
    redirect_uris: &[&str],
    scopes: &[&str],
) -> Option<String> {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    idp::oidc::register_client_with_scopes(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: ClientId::parse(id).unwrap(),
            name: id.into(),
            kind,
            redirect_uris: redirect_uris
                .iter()
                .map(|u| idp::domain::RedirectUri::parse(u).unwrap())
                .collect(),
            post_logout_redirect_uris: vec![],
            first_party: true,
            theme: None,
            grant_types: vec![grant],
            id_token_alg: IdTokenAlg::RS256,
            require_mfa: false,
            require_pkce: false,
            external_id_claim: None,
        },
        &scopes,
    )
    .await
    .unwrap()
    .secret
}

/// Registers a confidential client_credentials client with `scopes`; returns its secret.
async fn register_client(app: &TestApp, id: &str, scopes: &[&str]) -> String {
    let confidential = ClientKind::Confidential;
    register(
        app,
        id,
        confidential,
        GrantType::ClientCredentials,
        &[],
        scopes,
    )
    .await
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
pub(crate) async fn automation_token(app: &TestApp) -> String {
    let secret = register_client(app, AUTOMATION, &["admin"]).await;
    client_token(app, AUTOMATION, &secret).await
}

async fn a_passkey_is_a_second_factor_for_administration(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let console = idp::admin_api::CONSOLE_CLIENT_ID;
    let (root, _) = console_admin(&app, "root@example.com").await;
    // Signed in with a passkey alone, or as the step after the password:
    // the provider says acr 2, and the admin API agrees (it must not send
    // the console back to a sign-in that can only end the same way).
    for amr in [&["pop", "mfa"][..], &["pwd", "pop", "mfa"][..]] {
        let token = user_token(&app, &root, console, amr);
        let r = call(&app, reqwest::Method::GET, "/admin/api/users", Some(&token)).await;
        assert_eq!(r.status(), StatusCode::OK, "{amr:?}");
    }
    // A passkey's presence alone (no verification, no `mfa`) is not enough.
    let token = user_token(&app, &root, console, &["pop"]);
    let r = call(&app, reqwest::Method::GET, "/admin/api/users", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A person's access token as `/token` issues it after a sign-in with `amr`.
fn user_token(app: &TestApp, user: &User, client: &str, amr: &[&str]) -> String {
    let auth = Authentication {
        auth_time: app.clock_now().unix_timestamp(),
        amr: amr.iter().map(|s| s.to_string()).collect(),
        acr: if amr.contains(&"otp") || amr.contains(&"mfa") {
            "2"
        } else {
            "1"
        }
        .into(),
    };
    let scopes = ["openid".to_string(), "admin".to_string()];
    idp::oidc::issue::access_token(
        &app.state,
        &ClientId::parse(client).unwrap(),
        user.id.as_str(),
        idp::oidc::issue::Release::scopes(&scopes),
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

/// A JSON request with a bearer token: its status and JSON answer.
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

/// The user's most recent audit event of `kind`.
async fn latest_event(
    app: &TestApp,
    user: &idp::domain::UserId,
    kind: &str,
) -> idp::store::AuditEvent {
    let events = app.state.store.audit_events(Some(user), 100).await.unwrap();
    events
        .into_iter()
        .find(|e| e.event.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} recorded"))
        .event
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
        ("/admin/api/users", "post"),
        ("/admin/api/users/import", "post"),
        ("/admin/api/users/{id}", "get"),
        ("/admin/api/users/{id}/disable", "post"),
        ("/admin/api/users/{id}/enable", "post"),
        ("/admin/api/users/{id}/unlock", "post"),
        ("/admin/api/users/{id}/sign-out", "post"),
        ("/admin/api/users/{id}/send-password-reset", "post"),
        ("/admin/api/users/{id}/reset-mfa", "post"),
        ("/admin/api/users/{id}/grant-admin", "post"),
        ("/admin/api/users/{id}/revoke-admin", "post"),
        ("/admin/api/users/{id}", "patch"),
        ("/admin/api/users/{id}/sessions", "get"),
        ("/admin/api/users/{id}/sessions/{session_id}", "delete"),
        ("/admin/api/users/{id}/refresh-tokens", "get"),
        ("/admin/api/users/{id}/refresh-tokens/{family_id}", "delete"),
        ("/admin/api/users/{id}/passkeys", "get"),
        ("/admin/api/users/{id}/passkeys/{passkey_id}", "delete"),
        ("/admin/api/summary", "get"),
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
        for refusal in ["401", "403"] {
            assert!(
                op["responses"][refusal].is_object(),
                "{method} {path} {refusal}"
            );
        }
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for schema in [
        "UserView",
        "UserPage",
        "UserPatch",
        "SessionList",
        "RefreshTokenList",
        "PasskeyList",
        "Summary",
        "AuditEventPage",
        "ErrorBody",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
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
        (reqwest::Method::GET, "/admin/api/summary".to_string()),
        (
            reqwest::Method::PATCH,
            format!("/admin/api/users/{}", target.id),
        ),
        (
            reqwest::Method::GET,
            format!("/admin/api/users/{}/sessions", target.id),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/api/users/{}/sessions/0123456789abcdef", target.id),
        ),
        (
            reqwest::Method::GET,
            format!("/admin/api/users/{}/refresh-tokens", target.id),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/api/users/{}/refresh-tokens/some-family", target.id),
        ),
        (
            reqwest::Method::GET,
            format!("/admin/api/users/{}/passkeys", target.id),
        ),
        (
            reqwest::Method::DELETE,
            format!("/admin/api/users/{}/passkeys/some-passkey", target.id),
        ),
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
        idp::oidc::issue::Release::scopes(&["openid".into(), "admin".into()]),
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

/// A console token whose sign-in (with its code) is older than
/// `admin.max_sign_in_age_minutes`, as a refresh token would give, is sent
/// back to sign in again (RFC 9470 `max_age`); a recent one works.
async fn an_old_sign_in_does_not_administer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, recent) = console_admin(&app, "root@example.com").await;
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        Some(&recent),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    let twelve_hours_and_a_minute_ago = app.clock_now() - Duration::minutes(721);
    let auth = Authentication {
        auth_time: twelve_hours_and_a_minute_ago.unix_timestamp(),
        amr: vec!["pwd".into(), "otp".into()],
        acr: "2".into(),
    };
    let scopes = ["openid".to_string(), "admin".to_string()];
    let (old, _) = idp::oidc::issue::access_token(
        &app.state,
        &ClientId::parse(idp::admin_api::CONSOLE_CLIENT_ID).unwrap(),
        admin.id.as_str(),
        idp::oidc::issue::Release::scopes(&scopes),
        Some(&auth),
    )
    .unwrap();
    let r = call(
        &app,
        reqwest::Method::POST,
        &format!("/admin/api/users/{}/revoke-admin", admin.id.as_str()),
        Some(&old),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("max_age=\"43200\""),
        "{challenge}"
    );
}

/// The admin listener has its own count of trusted proxies: a proxy in front
/// of the public listener does not let callers of the admin API write their
/// own address into the audit trail.
async fn the_admin_listener_trusts_only_its_own_proxies(backend: Backend) {
    for (admin_hops, recorded) in [(0, "127.0.0.1"), (1, "203.0.113.50")] {
        let app = TestApp::spawn_with(backend, |c| {
            c.server.trusted_proxy_hops = 1;
            c.admin.trusted_proxy_hops = admin_hops;
        })
        .await;
        let jane = app.create_user("jane@example.com", PW, "Jane").await;
        let token = automation_token(&app).await;
        let r = app
            .http
            .post(app.admin_url(&format!("/admin/api/users/{}/unlock", jane.id)))
            .bearer_auth(&token)
            .header("x-forwarded-for", "203.0.113.50")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let unlocked = latest_event(&app, &jane.id, "admin.user_unlocked").await;
        assert_eq!(
            unlocked.ip.as_deref(),
            Some(recorded),
            "admin.trusted_proxy_hops = {admin_hops}"
        );
    }
}
