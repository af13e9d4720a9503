//! Passkeys on the account pages (issue 16, item 1): adding one after a
//! recent sign-in, listing, renaming and removing them, and the
//! registration ceremony's refusals: a replayed answer, a malformed one,
//! an answer carried to another browser. The authenticator is the kit's
//! software passkey (`tests::passkey`); the JSON calls are the ones the
//! page's script makes.
//!
//! WebAuthn needs a domain name: these servers' issuer is
//! `http://localhost:<port>` (the requests still go to 127.0.0.1).

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::browser::MailApp;
use tests::passkey::SoftAuthenticator;
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    a_passkey_is_added_after_a_recent_sign_in_and_listed,
    adding_a_passkey_mails_its_owner,
    adding_or_removing_a_passkey_needs_a_recent_sign_in,
    passkeys_are_renamed_and_removed,
    the_last_way_to_sign_in_cannot_be_removed,
    a_replayed_registration_is_refused,
    a_malformed_attestation_is_refused_and_nothing_is_stored,
    another_browser_cannot_finish_this_browsers_registration,
);

const EMAIL: &str = "pat@example.com";
const PW: &str = "correct horse battery staple";
const PAGE: &str = "/account/passkeys";
const START: &str = "/account/passkeys/register/start";
const FINISH: &str = "/account/passkeys/register/finish";

/// A server whose issuer is a domain name (WebAuthn RP ids are domains).
async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.server.issuer.set_host(Some("localhost")).unwrap();
    })
    .await
}

pub(crate) fn origin(app: &TestApp) -> String {
    app.state
        .config
        .server
        .issuer
        .origin()
        .ascii_serialization()
}

/// An account, signed in in `app`'s browser.
async fn signed_in(app: &TestApp) -> idp::store::User {
    let user = app.create_user(EMAIL, PW, "Pat").await;
    app.signed_in(EMAIL, PW).await;
    user
}

/// This browser's CSRF token, from the passkeys page.
async fn csrf(app: &TestApp) -> String {
    let page = app.page(PAGE).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page.hidden_fields(START)
        .into_iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v)
        .expect("the add form carries a CSRF token")
}

pub(crate) async fn post_json(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let json = response.json().await.unwrap_or(Value::Null);
    (status, json)
}

async fn start(app: &TestApp, csrf: &str) -> (StatusCode, Value) {
    post_json(app, START, &json!({ "csrf_token": csrf })).await
}

async fn finish(app: &TestApp, csrf: &str, name: &str, credential: &Value) -> (StatusCode, Value) {
    let body = json!({ "csrf_token": csrf, "name": name, "credential": credential });
    post_json(app, FINISH, &body).await
}

/// Adds a passkey named `name` with `authenticator`; it must succeed.
pub(crate) async fn add(app: &TestApp, authenticator: &mut SoftAuthenticator, name: &str) {
    let csrf = csrf(app).await;
    let (status, options) = start(app, &csrf).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let credential = authenticator.register(&origin(app), &options);
    let (status, answer) = finish(app, &csrf, name, &credential).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn stored(app: &TestApp, user: &idp::store::User) -> Vec<idp::store::StoredPasskey> {
    app.state.store.passkeys(&user.id).await.unwrap()
}

async fn activity(app: &TestApp) -> String {
    app.page("/account/activity").await.text()
}

async fn a_passkey_is_added_after_a_recent_sign_in_and_listed(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    let page = app.page(PAGE).await;
    assert!(
        page.contains("You have no passkeys yet."),
        "{}",
        page.text()
    );
    assert!(
        app.page("/account")
            .await
            .body
            .contains("/account/passkeys")
    );

    let csrf = csrf(&app).await;
    let (status, options) = start(&app, &csrf).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let pk = &options["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["user"]["name"], EMAIL);
    // Discoverable, with user verification: usable without a password later.
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(pk["authenticatorSelection"]["requireResidentKey"], true);
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");

    let mut authenticator = SoftAuthenticator::default();
    let credential = authenticator.register(&origin(&app), &options);
    let (status, answer) = finish(&app, &csrf, "  Work laptop ", &credential).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["redirect"], PAGE);

    let passkeys = stored(&app, &user).await;
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].name, "Work laptop");
    assert_eq!(
        passkeys[0].credential_id,
        credential["rawId"].as_str().unwrap()
    );
    let page = app.page(PAGE).await;
    assert!(page.contains("Work laptop"), "{}", page.text());
    assert!(page.contains("Not used yet."), "{}", page.text());
    assert!(activity(&app).await.contains("Passkey added"));

    // The same authenticator is told about the passkey it already holds.
    let (_, options) = start(&app, &csrf).await;
    let excluded = options["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(excluded.len(), 1);
    assert_eq!(excluded[0]["id"], credential["rawId"]);
}

/// The owner hears of every new way into the account (issue 16, item 4).
async fn adding_a_passkey_mails_its_owner(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| {
        c.server.issuer.set_host(Some("localhost")).unwrap();
    })
    .await;
    signed_in(&app).await;
    add(&app, &mut SoftAuthenticator::default(), "Kitchen <tablet>").await;

    let mail = app.wait_for_mail_to(EMAIL, 1).await;
    assert!(
        mail.subject().contains("a passkey was added"),
        "{}",
        mail.subject()
    );
    let text = mail.text_body();
    assert!(text.contains("\"Kitchen <tablet>\""), "{text}");
    assert!(text.contains(EMAIL), "{text}");
    assert!(text.contains("/forgot-password"), "{text}");
    assert!(text.contains("/account/passkeys"), "{text}");
    let html = mail.html_body().expect("an HTML alternative");
    assert!(html.contains("Kitchen &lt;tablet&gt;"), "{html}");
    assert_eq!(app.mail_to(EMAIL).len(), 1, "one mail per passkey");
}

async fn adding_or_removing_a_passkey_needs_a_recent_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    add(&app, &mut SoftAuthenticator::default(), "Phone").await;
    app.clock.advance(Duration::minutes(10));

    let csrf = csrf(&app).await;
    let (status, answer) = start(&app, &csrf).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let reauth = answer["reauth"].as_str().unwrap();
    assert!(
        reauth.starts_with("/account/reauth?return_to=%2Faccount%2Fpasskeys"),
        "{reauth}"
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("Confirm it's you")
    );
    // Nothing was started: an answer has nothing to finish.
    let (status, answer) = finish(&app, &csrf, "x", &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("expired or was already used"),
        "{answer}"
    );

    let id = stored(&app, &user).await[0].id.clone();
    let remove = format!("/account/passkeys/{id}/remove");
    let page = app.submit(PAGE, &remove, &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(
        page.location
            .as_deref()
            .unwrap()
            .starts_with("/account/reauth?")
    );
    assert_eq!(stored(&app, &user).await.len(), 1);

    // Confirming brings the session back to recent.
    let page = app
        .submit(reauth, "/account/reauth", &[("password", PW)])
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    assert_eq!(page.location.as_deref(), Some(PAGE));
    let (status, answer) = start(&app, &csrf).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

async fn passkeys_are_renamed_and_removed(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    add(&app, &mut SoftAuthenticator::default(), "Phone").await;
    add(&app, &mut SoftAuthenticator::default(), "Key").await;
    let ids: Vec<String> = stored(&app, &user)
        .await
        .into_iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids.len(), 2);

    let rename = format!("/account/passkeys/{}/rename", ids[0]);
    let page = app.submit(PAGE, &rename, &[("name", "Old phone")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.contains("Passkey renamed."), "{}", page.text());
    assert!(page.contains("Old phone"));
    let page = app
        .submit(PAGE, &rename, &[("name", &"x".repeat(65))])
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("at most 64 characters"), "{}", page.text());

    let remove = format!("/account/passkeys/{}/remove", ids[1]);
    let page = app.submit(PAGE, &remove, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(page.contains("Passkey “Key” removed."), "{}", page.text());
    let left = stored(&app, &user).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "Old phone");

    // With a password, the last passkey can go too.
    let remove = format!("/account/passkeys/{}/remove", ids[0]);
    let page = app.submit(PAGE, &remove, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    assert!(stored(&app, &user).await.is_empty());

    let log = activity(&app).await;
    assert!(log.contains("Passkey renamed"), "{log}");
    assert!(log.contains("Passkey removed"), "{log}");

    // Someone else's passkey (or none) is not found, and not touched.
    let other = TestApp::clone(&app).other_browser();
    other.create_user("sam@example.com", PW, "Sam").await;
    other.signed_in("sam@example.com", PW).await;
    add(&other, &mut SoftAuthenticator::default(), "Sam's").await;
    let sams = other
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("sam@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let sams_id = stored(&other, &sams).await[0].id.clone();
    let csrf = csrf(&app).await;
    for action in ["rename", "remove"] {
        let path = format!("/account/passkeys/{sams_id}/{action}");
        let values = [
            ("csrf_token".to_owned(), csrf.clone()),
            ("name".to_owned(), "mine now".to_owned()),
        ];
        let page = app.post(&path, &values).await;
        assert_eq!(
            page.status,
            StatusCode::NOT_FOUND,
            "{action}: {}",
            page.text()
        );
    }
    assert_eq!(stored(&other, &sams).await[0].name, "Sam's");
}

async fn the_last_way_to_sign_in_cannot_be_removed(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    add(&app, &mut SoftAuthenticator::default(), "Only").await;
    // An account without a password (made elsewhere): its passkey is its way in.
    app.remove_password(&user.id).await;
    let id = stored(&app, &user).await[0].id.clone();
    let remove = format!("/account/passkeys/{id}/remove");
    let page = app.submit(PAGE, &remove, &[]).await;
    assert_eq!(page.status, StatusCode::CONFLICT, "{}", page.text());
    assert!(page.contains("only way you can sign in"), "{}", page.text());
    assert_eq!(stored(&app, &user).await.len(), 1);

    // With a second passkey, one of them can go.
    add(&app, &mut SoftAuthenticator::default(), "Spare").await;
    let page = app.submit(PAGE, &remove, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let left = stored(&app, &user).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "Spare");

    // Two removals at once, of the last two: one of them must stay.
    for round in 0..20 {
        add(
            &app,
            &mut SoftAuthenticator::default(),
            &format!("Round {round}"),
        )
        .await;
        let both = stored(&app, &user).await;
        assert_eq!(both.len(), 2);
        // Straight to the store, so both land within microseconds.
        let store = app.state.store.as_ref();
        let (a, b) = tokio::join!(
            store.remove_passkey(&user.id, &both[0].id, true),
            store.remove_passkey(&user.id, &both[1].id, true)
        );
        let removed = [a.unwrap(), b.unwrap()];
        assert_eq!(
            removed.iter().filter(|r| **r).count(),
            1,
            "round {round}: {removed:?}"
        );
        assert_eq!(stored(&app, &user).await.len(), 1, "round {round}");
    }
}

async fn a_replayed_registration_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    let csrf = csrf(&app).await;
    let mut authenticator = SoftAuthenticator::default();

    let (_, options) = start(&app, &csrf).await;
    let credential = authenticator.register(&origin(&app), &options);
    let (status, _) = finish(&app, &csrf, "Phone", &credential).await;
    assert_eq!(status, StatusCode::OK);
    // The same answer again: its challenge was used up.
    let (status, answer) = finish(&app, &csrf, "Phone", &credential).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("expired or was already used")
    );

    // An answer to an older challenge, after a newer one was started.
    let (_, first) = start(&app, &csrf).await;
    let (_, _second) = start(&app, &csrf).await;
    let stale = SoftAuthenticator::default().register(&origin(&app), &first);
    let (status, answer) = finish(&app, &csrf, "Stale", &stale).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("did not check out")
    );

    // Past its five minutes, a started registration is gone.
    let (_, options) = start(&app, &csrf).await;
    let late = SoftAuthenticator::default().register(&origin(&app), &options);
    app.clock.advance(Duration::minutes(6));
    let (status, answer) = finish(&app, &csrf, "Late", &late).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("expired or was already used"),
        "{answer}"
    );

    assert_eq!(stored(&app, &user).await.len(), 1);
}

async fn a_malformed_attestation_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    let csrf = csrf(&app).await;

    // The attestation object replaced by bytes that are no CBOR map.
    let (_, options) = start(&app, &csrf).await;
    let mut credential = SoftAuthenticator::default().register(&origin(&app), &options);
    credential["response"]["attestationObject"] = json!("AAECAwQFBgcICQ");
    let (status, answer) = finish(&app, &csrf, "Bad", &credential).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("did not check out"),
        "{answer}"
    );

    // Not a credential at all.
    let (_, _) = start(&app, &csrf).await;
    let (status, answer) = finish(&app, &csrf, "Bad", &json!({ "id": 5 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{answer}"
    );

    // An answer made for another origin of the same host (a look-alike
    // site relaying the challenge), properly signed by the authenticator:
    // only the server's origin check stands in the way.
    let (_, options) = start(&app, &csrf).await;
    let elsewhere = SoftAuthenticator::default().register("http://localhost:1", &options);
    let (status, answer) = finish(&app, &csrf, "Bad", &elsewhere).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("did not check out"),
        "{answer}"
    );

    // Not JSON, and JSON without the CSRF token.
    let response = app
        .http
        .post(app.url(FINISH))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"].is_string());
    let (status, answer) = post_json(&app, START, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");

    assert!(stored(&app, &user).await.is_empty());
    assert!(activity(&app).await.contains("Refused: adding a passkey"));
}

async fn another_browser_cannot_finish_this_browsers_registration(backend: Backend) {
    let app = spawn(backend).await;
    let user = signed_in(&app).await;
    let csrf = csrf(&app).await;
    let (_, options) = start(&app, &csrf).await;
    let credential = SoftAuthenticator::default().register(&origin(&app), &options);

    // The same person signed in in another browser: its session holds no
    // registration, so this browser's answer opens nothing there.
    let other = app.other_browser();
    other.signed_in(EMAIL, PW).await;
    let other_csrf = self::csrf(&other).await;
    let (status, answer) = finish(&other, &other_csrf, "Stolen", &credential).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(stored(&app, &user).await.is_empty());

    // This browser's registration was left alone and still finishes.
    let (status, answer) = finish(&app, &csrf, "Mine", &credential).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(stored(&app, &user).await.len(), 1);
}
