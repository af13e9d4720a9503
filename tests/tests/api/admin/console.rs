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
use tests::signin::Person;

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

/// Signs in as `person` at `client` asking for `scope`, from a browser of
/// its own; returns the `/token` answer.
async fn sign_in_as(app: &TestApp, person: &mut Person, client: &str, scope: &str) -> Value {
    let start = authorize_url(app, client, scope);
    let callback = person
        .walk(&app.other_browser(), &start, |u| u.starts_with(CALLBACK))
        .await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap_or_else(|| panic!("no code: {callback}"))
        .1
        .into_owned();
    redeem(app, client, &code).await.json().await.unwrap()
}

/// Signs in with a password at `client` asking for `scope`; returns the `/token` answer.
pub(super) async fn sign_in(app: &TestApp, client: &str, scope: &str, email: &str) -> Value {
    sign_in_as(app, &mut Person::new(email).password(PW), client, scope).await
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
            require_pkce: false,
            external_id_claim: None,
        },
        &["openid".to_owned(), "admin".to_owned()],
    )
    .await
    .unwrap();
    console_admin(&app, "root@example.com").await;

    // The first sign-in sets up the authenticator; its token administers.
    let mut root = Person::new("root@example.com").password(PW);
    let first = sign_in_as(&app, &mut root, console, "openid admin").await;
    assert_eq!(root.pages, ["/login", "/login/mfa-setup"]);
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
    root.pages.clear();
    let again = sign_in_as(&app, &mut root, console, "openid admin").await;
    assert_eq!(root.pages, ["/login", "/login/otp"]);
    let r = call(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        again["access_token"].as_str(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
}
