//! Tokens from a real sign-in (authorize, password, code, token): the
//! `admin` scope comes only from a client registered with it, and a sign-in
//! without the second step is sent back for one. (The console sign-in with a
//! one-time code is covered with minted tokens in `mod.rs`; through the
//! pages it waits for the shared TOTP test helper.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(admin_scope_comes_only_from_a_registered_client_and_needs_the_second_step);

const CALLBACK: &str = "http://127.0.0.1:4000/cb";
const VERIFIER: &str = "a-pkce-verifier-of-forty-three-characters-or-more";

/// Registers a public first-party client using the code flow.
async fn register_public(app: &TestApp, id: &str, scopes: &[&str]) {
    let code = GrantType::AuthorizationCode;
    register(app, id, ClientKind::Public, code, &[CALLBACK], scopes).await;
}

/// Signs in with a password at `client` asking for `scope`; returns the `/token` answer.
async fn sign_in(app: &TestApp, client: &str, scope: &str, email: &str) -> Value {
    let browser = app.other_browser();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut next = url::Url::parse_with_params(
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
    .to_string();
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
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", client),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn admin_scope_comes_only_from_a_registered_client_and_needs_the_second_step(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
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
