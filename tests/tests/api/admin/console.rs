//! Tokens from a real sign-in (authorize, password, one-time code, token):
//! the `admin` scope comes only from a client registered with it, a sign-in
//! without the second step is sent back for one, and an administrator who
//! signs in to the console (`require_mfa`) sets up an authenticator the
//! first time and enters its code afterwards.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    admin_scope_comes_only_from_a_registered_client_and_needs_the_second_step,
    an_administrator_signs_in_to_the_console_with_a_one_time_code,
);

/// These tests register `admin-console` themselves as a public client with
/// their own callback, to drive the flow by hand: the built-in one is off.
async fn without_builtin_console(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| c.admin.console.disabled = true).await
}

pub(super) const CALLBACK: &str = "http://127.0.0.1:4000/cb";
const VERIFIER: &str = "a-pkce-verifier-of-forty-three-characters-or-more";

/// The authorization request of a public client: code flow with PKCE.
fn authorize_url(app: &TestApp, client: &str, scope: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    url::Url::parse_with_params(
        &app.url("/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", client),
            ("redirect_uri", CALLBACK),
            ("scope", scope),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap()
    .to_string()
}

/// Redeems a code at `/token` as the public `client`; the answer must be 200.
async fn redeem(app: &TestApp, client: &str, code: &str) -> reqwest::Response {
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r
}

/// Registers a public first-party client using the code flow.
async fn register_public(app: &TestApp, id: &str, scopes: &[&str]) {
    let code = GrantType::AuthorizationCode;
    register(app, id, ClientKind::Public, code, &[CALLBACK], scopes).await;
}

/// Signs in with a password at `client` asking for `scope`; returns the `/token` answer.
pub(super) async fn sign_in(app: &TestApp, client: &str, scope: &str, email: &str) -> Value {
    let browser = app.other_browser();
    let mut next = authorize_url(app, client, scope);
    let code = loop {
        if next.starts_with(CALLBACK) {
            let url = url::Url::parse(&next).unwrap();
            let code = url.query_pairs().find(|(k, _)| k == "code");
            break code
                .unwrap_or_else(|| panic!("no code: {next}"))
                .1
                .into_owned();
        }
        let url = if next.starts_with('/') {
            app.url(&next)
        } else {
            next.clone()
        };
        let page = tests::browser::Page::from(browser.http.get(url).send().await.unwrap()).await;
        let page = if page.status == StatusCode::OK && page.url.contains("/login") {
            let req = url::Url::parse(&page.url)
                .unwrap()
                .query_pairs()
                .find(|(k, _)| k == "req")
                .map(|(_, v)| v.into_owned())
                .expect("/login?req=…");
            let fields = [("email", email), ("password", PW), ("req", req.as_str())];
            browser.submit_on(&page, "/login", &fields).await
        } else {
            page
        };
        assert!(page.status.is_redirection(), "{next}: {}", page.text());
        next = page.location.unwrap();
    };
    let r = redeem(app, client, &code).await;
    r.json().await.unwrap()
}

async fn admin_scope_comes_only_from_a_registered_client_and_needs_the_second_step(
    backend: Backend,
) {
    let app = without_builtin_console(backend).await;
    let console = idp::admin_api::CONSOLE_CLIENT_ID;
    register_public(&app, console, &["openid", "admin"]).await;
    register_public(&app, "portal", &[]).await;
    console_admin(&app, "root@example.com").await;

    // Any client may ask; only one registered with it gets the scope.
    let portal = sign_in(&app, "portal", "openid admin", "root@example.com").await;
    assert_eq!(portal["scope"], "openid");
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        portal["access_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );

    // The console gets it, but a password alone does not administer.
    let tokens = sign_in(&app, console, "openid admin", "root@example.com").await;
    assert_eq!(tokens["scope"], "openid admin");
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        tokens["access_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()[WWW_AUTHENTICATE].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\"")
            && challenge.contains("acr_values=\"2\""),
        "{challenge}"
    );
}

/// Follows a sign-in at `client` through every page like a browser: the
/// password, the authenticator set-up (its key read off the page and kept
/// in `secret`) or the code page; returns the `/token` answer.
async fn sign_in_with_code(
    app: &TestApp,
    client: &str,
    email: &str,
    secret: &mut Option<String>,
) -> Value {
    let browser = app.other_browser();
    let mut next = authorize_url(app, client, "openid admin");
    let mut pages = Vec::new();
    let code = loop {
        assert!(pages.len() < 12, "too many pages: {pages:?}");
        if next.starts_with(CALLBACK) {
            let url = url::Url::parse(&next).unwrap();
            let code = url.query_pairs().find(|(k, _)| k == "code");
            break code
                .unwrap_or_else(|| panic!("no code: {next}"))
                .1
                .into_owned();
        }
        let url = if next.starts_with('/') {
            app.url(&next)
        } else {
            next.clone()
        };
        let page = tests::browser::Page::from(browser.http.get(url).send().await.unwrap()).await;
        if page.status.is_redirection() {
            next = page.location.unwrap();
            continue;
        }
        assert_eq!(page.status, StatusCode::OK, "{next}: {}", page.text());
        let path = url::Url::parse(&page.url).unwrap().path().to_owned();
        pages.push(path.clone());
        let answer = match path.as_str() {
            "/login" => {
                browser
                    .submit_on(&page, "/login", &[("email", email), ("password", PW)])
                    .await
            }
            "/login/mfa-setup" => {
                let key = page.manual_key_compact().expect("the key to type by hand");
                let code = tests::totp::code_at(&key, app.clock_now());
                *secret = Some(key);
                let done = browser
                    .submit_on(&page, "/login/mfa-setup", &[("code", &code)])
                    .await;
                assert_eq!(done.status, StatusCode::OK, "{}", done.text());
                next = done
                    .link("Continue")
                    .expect("a way on after the recovery codes");
                continue;
            }
            "/login/otp" => {
                let key = secret
                    .as_deref()
                    .expect("asked for a code before any set-up");
                let code = tests::totp::code_at(key, app.clock_now());
                browser
                    .submit_on(&page, "/login/otp", &[("code", &code)])
                    .await
            }
            other => panic!("unexpected page {other}: {}", page.text()),
        };
        assert!(answer.status.is_redirection(), "{path}: {}", answer.text());
        next = answer.location.unwrap();
    };
    let r = redeem(app, client, &code).await;
    let mut tokens: Value = r.json().await.unwrap();
    tokens["pages"] = serde_json::json!(pages);
    tokens
}

async fn an_administrator_signs_in_to_the_console_with_a_one_time_code(backend: Backend) {
    let app = without_builtin_console(backend).await;
    let console = idp::admin_api::CONSOLE_CLIENT_ID;
    idp::oidc::register_client_with_scopes(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: ClientId::parse(console).unwrap(),
            name: "Admin console".into(),
            kind: ClientKind::Public,
            redirect_uris: vec![idp::domain::RedirectUri::parse(CALLBACK).unwrap()],
            post_logout_redirect_uris: vec![],
            first_party: true,
            theme: None,
            grant_types: vec![GrantType::AuthorizationCode],
            id_token_alg: IdTokenAlg::RS256,
            require_mfa: true,
        },
        &["openid".to_owned(), "admin".to_owned()],
    )
    .await
    .unwrap();
    console_admin(&app, "root@example.com").await;

    // The first sign-in sets up the authenticator; its token administers.
    let mut secret = None;
    let first = sign_in_with_code(&app, console, "root@example.com", &mut secret).await;
    assert_eq!(
        first["pages"],
        serde_json::json!(["/login", "/login/mfa-setup"])
    );
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        first["access_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Later sign-ins ask for the app's code.
    app.clock.advance(time::Duration::seconds(30));
    let again = sign_in_with_code(&app, console, "root@example.com", &mut secret).await;
    assert_eq!(again["pages"], serde_json::json!(["/login", "/login/otp"]));
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        again["access_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}
