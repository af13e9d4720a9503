//! Signing in with a passkey (issue 16, items 2 and 3), over HTTP as the
//! sign-in page's script does it: the first step instead of the password
//! (the authenticator names the account; two factors, `amr` `pop` `mfa`,
//! `acr` 2), and the second step after the password, next to the
//! authenticator app. Then what an attacker tries: a replayed answer, an
//! answer carried to another browser, another account's user handle, a
//! copied authenticator (its counter goes back), a wrong origin, garbage,
//! an oversized body, a disabled account: each a JSON refusal that starts
//! no session.
//!
//! The authenticator is the kit's software passkey (`tests::passkey`),
//! which is not this server's code. WebAuthn needs a domain name: the
//! servers' issuer, and the address the tests use, is
//! `http://localhost:<port>`.

use openidconnect::core::CoreIdTokenClaims;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::browser::{NewClient, Page, register_client};
use tests::passkey::SoftAuthenticator;

use crate::oidc::{self, CALLBACK};
use crate::passkeys::{add, origin, post_json};
use crate::{Backend, TestApp};

on_both_backends!(
    a_passkey_signs_in_to_a_portal_without_a_password,
    prompt_login_is_met_by_a_passkey_sign_in_for_the_request,
    a_passkey_meets_a_client_that_requires_two_step_sign_in,
    a_passkey_is_the_second_step_after_the_password,
    a_replayed_passkey_answer_is_refused,
    another_browser_cannot_finish_this_browsers_passkey_sign_in,
    a_forged_user_handle_is_refused,
    a_copied_passkey_is_refused_and_audited,
    bad_passkey_answers_get_json_errors_and_no_session,
    a_disabled_account_cannot_sign_in_with_its_passkey,
    wrong_passwords_do_not_lock_the_owners_passkey_out,
    the_second_step_takes_only_the_accounts_own_passkey,
    a_password_alone_still_signs_in_where_no_second_step_is_asked,
    a_copied_passkey_is_refused_in_the_second_step_too,
    bursts_of_passkey_answers_from_one_network_are_throttled,
    a_passkey_sign_in_ends_another_accounts_half_done_sign_in,
    two_tabs_of_one_browser_each_finish_their_own_passkey_sign_in,
    a_parallel_burst_of_passkey_answers_gets_no_more_checks_than_the_limit,
    one_passkey_answer_sent_twice_at_once_signs_in_once,
    another_browser_cannot_finish_this_browsers_passkey_second_step,
);

const EMAIL: &str = "pat@example.com";
const PW: &str = "correct horse battery staple";
const START: &str = "/login/passkey/start";
const FINISH: &str = "/login/passkey/finish";
const STEP_START: &str = "/login/otp/passkey/start";
const STEP_FINISH: &str = "/login/otp/passkey/finish";

/// A server whose issuer is `http://localhost:<port>`, reached by that name.
async fn spawn(backend: Backend) -> TestApp {
    let mut app = TestApp::spawn_with(backend, |c| {
        c.server.issuer.set_host(Some("localhost")).unwrap();
    })
    .await;
    app.base_url = origin(&app);
    app
}

/// Pat, with a password and a passkey made in its own browser.
async fn pat_with_a_passkey(app: &TestApp) -> (idp::store::User, SoftAuthenticator) {
    let user = app.create_user(EMAIL, PW, "Pat").await;
    let mut authenticator = SoftAuthenticator::default();
    let browser = app.other_browser();
    browser.signed_in(EMAIL, PW).await;
    add(&browser, &mut authenticator, "Laptop").await;
    (user, authenticator)
}

fn field(page: &Page, action: &str, name: &str) -> String {
    page.hidden_fields(action)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// The sign-in page `browser` lands on for `auth_url`: its CSRF token and
/// the pending request's `req`.
async fn sign_in_page(browser: &TestApp, auth_url: &str) -> (Page, String, String) {
    let to_login = oidc::open(browser, auth_url).await;
    let location = to_login.location.clone().expect("sent to the sign-in page");
    assert!(location.starts_with("/login?req="), "{location}");
    let page = oidc::open(browser, &location).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = field(&page, "/login", "csrf_token");
    let req = field(&page, "/login", "req");
    assert!(!req.is_empty(), "the form carries the pending request");
    (page, csrf, req)
}

/// Starts a passkey sign-in in `browser`: the options for `navigator.credentials.get`.
async fn start(browser: &TestApp, csrf: &str, req: &str) -> Value {
    let body = json!({ "csrf_token": csrf, "req": req });
    let (status, options) = post_json(browser, START, &body).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    options
}

async fn finish(browser: &TestApp, csrf: &str, req: &str, answer: &Value) -> (StatusCode, Value) {
    let body = json!({ "csrf_token": csrf, "req": req, "credential": answer });
    post_json(browser, FINISH, &body).await
}

/// Follows redirects from `path` to the client's callback: its query.
async fn to_callback(browser: &TestApp, path: &str) -> std::collections::HashMap<String, String> {
    let mut target = path.to_owned();
    for _ in 0..10 {
        let page = oidc::open(browser, &target).await;
        let Some(next) = page.location.clone() else {
            panic!("stopped at {target}: {} {}", page.status, page.text());
        };
        if next.starts_with(CALLBACK) {
            return oidc::query_of(&next);
        }
        target = next;
    }
    panic!("no end of redirects from {path}");
}

fn amr(claims: &CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .map(|v| v.iter().map(|m| m.as_str().to_owned()).collect())
        .unwrap_or_default()
}

fn acr(claims: &CoreIdTokenClaims) -> Option<String> {
    claims.auth_context_ref().map(|a| a.as_str().to_owned())
}

async fn client(app: &TestApp, require_mfa: bool) -> oidc::Rp {
    let secret = register_client(
        app,
        NewClient {
            require_mfa,
            ..NewClient::app("shop", "Helix Shop", CALLBACK)
        },
    )
    .await;
    oidc::rp(app, "shop", secret).await
}

/// Whether `browser` has a session (the account page opens).
async fn has_session(browser: &TestApp) -> bool {
    browser.page("/account").await.status == StatusCode::OK
}

async fn audit_kinds(app: &TestApp, user: &idp::store::User) -> Vec<(String, Value)> {
    app.state
        .store
        .audit_events(Some(&user.id), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.detail))
        .collect()
}

/// A whole passkey sign-in through `rp` in a fresh browser: the ID token's claims.
async fn signed_in_with_passkey(
    app: &TestApp,
    rp: &oidc::Rp,
    authenticator: &mut SoftAuthenticator,
) -> (TestApp, CoreIdTokenClaims) {
    let browser = app.other_browser();
    let auth = oidc::start(rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(app), &options);
    let (status, done) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let to = done["redirect"].as_str().expect("where to go next");
    assert!(to.starts_with("/authorize/continue?req="), "{to}");
    let answer = to_callback(&browser, to).await;
    assert_eq!(answer.get("state"), Some(auth.state.secret()), "{answer:?}");
    let code = answer.get("code").expect("a code");
    let tokens = oidc::redeem(rp, code, &auth.verifier).await.unwrap();
    let claims = oidc::verify_id_token(rp, &tokens, Some(&auth.nonce));
    (browser, claims)
}

/// `prompt=login` in a browser already signed in: the passkey sign-in made
/// for the request serves it, once, with no second trip to the sign-in page.
async fn prompt_login_is_met_by_a_passkey_sign_in_for_the_request(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    let (browser, _) = signed_in_with_passkey(&app, &rp, &mut authenticator).await;
    for asked in [("prompt", "login"), ("max_age", "0")] {
        let auth = oidc::start(&rp, &["email"], &[asked]);
        // Asked to sign in although the browser has a session.
        let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
        let options = start(&browser, &csrf, &req).await;
        let answer = authenticator.sign_in(&origin(&app), &options);
        let (status, done) = finish(&browser, &csrf, &req, &answer).await;
        assert_eq!(status, StatusCode::OK, "{done}");
        let to = done["redirect"].as_str().expect("where to go next");
        let answer = to_callback(&browser, to).await;
        let code = answer.get("code").expect("a code");
        let tokens = oidc::redeem(&rp, code, &auth.verifier).await.unwrap();
        let claims = oidc::verify_id_token(&rp, &tokens, Some(&auth.nonce));
        assert_eq!(claims.subject().as_str(), user.id.as_str(), "{asked:?}");
    }
}

async fn a_passkey_signs_in_to_a_portal_without_a_password(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;

    // The sign-in page offers it: a section the script shows, and the
    // email field's autofill may list passkeys.
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (page, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let html = page.body.clone();
    // Hidden until the script shows it: without JavaScript the page is
    // the email and password form, as before.
    assert!(html.contains("data-passkey-signin hidden"), "{html}");
    assert!(
        html.contains("autocomplete=\"username webauthn\""),
        "{html}"
    );
    assert!(html.contains("/passkey-signin.js\" defer"), "{html}");
    // No account named: nothing to enumerate, the authenticator chooses;
    // user verification is required (two factors in one).
    let options = start(&browser, &csrf, &req).await;
    let public_key = &options["publicKey"];
    assert!(
        public_key["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{options}"
    );
    assert_eq!(public_key["userVerification"], "required", "{options}");
    assert_eq!(public_key["rpId"], "localhost", "{options}");

    let (browser, claims) = signed_in_with_passkey(&app, &rp, &mut authenticator).await;
    assert_eq!(claims.subject().as_str(), user.id.as_str());
    assert_eq!(amr(&claims), ["pop", "mfa"]);
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert!(has_session(&browser).await);

    // Its use is recorded and shown to the owner.
    let stored = app.state.store.passkeys(&user.id).await.unwrap();
    assert!(stored[0].last_used_at.is_some());
    let activity = browser.page("/account/activity").await.text();
    assert!(activity.contains("Signed in with a passkey"), "{activity}");
    let passkeys = browser.page("/account/passkeys").await.text();
    assert!(passkeys.contains("Last used"), "{passkeys}");
    let sessions = browser.page("/account/sessions").await.text();
    assert!(sessions.contains("with a passkey"), "{sessions}");
}

async fn a_passkey_meets_a_client_that_requires_two_step_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, true).await;
    // No code asked, no authenticator app to set up: the passkey is both.
    let (_, claims) = signed_in_with_passkey(&app, &rp, &mut authenticator).await;
    assert_eq!(amr(&claims), ["pop", "mfa"]);
    assert_eq!(acr(&claims).as_deref(), Some("2"));
}

async fn a_passkey_is_the_second_step_after_the_password(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, true).await;

    // The client requires two steps; Pat has no authenticator app but a
    // passkey: after the password comes the passkey, not an enrolment.
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (page, _, _) = sign_in_page(&browser, &auth.url).await;
    let after = browser
        .submit_on(&page, "/login", &[("email", EMAIL), ("password", PW)])
        .await;
    assert_eq!(
        after.location.as_deref(),
        Some("/login/otp"),
        "{}",
        after.text()
    );
    let step = browser.page("/login/otp").await;
    let html = step.body.clone();
    assert!(html.contains("data-passkey-step"), "{html}");
    assert!(!html.contains("name=\"code\""), "no code to type: {html}");
    let csrf = step_csrf(&step);
    assert!(
        !has_session(&browser).await,
        "no session before the second step"
    );

    // Only Pat's own passkeys are offered.
    let (status, options) = post_json(&browser, STEP_START, &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let listed: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(listed, authenticator.credential_ids());

    let answer = authenticator.sign_in(&origin(&app), &options);
    let body = json!({ "csrf_token": csrf, "credential": answer });
    let (status, done) = post_json(&browser, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let to = done["redirect"].as_str().unwrap();
    let answer = to_callback(&browser, to).await;
    let tokens = oidc::redeem(&rp, &answer["code"], &auth.verifier)
        .await
        .unwrap();
    let claims = oidc::verify_id_token(&rp, &tokens, Some(&auth.nonce));
    assert_eq!(amr(&claims), ["pwd", "pop", "mfa"]);
    assert_eq!(acr(&claims).as_deref(), Some("2"));

    // The same answer again: the step is over and its challenge used.
    let (status, again) = post_json(&browser, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert!(
        app.state
            .store
            .totp_credential(&user.id)
            .await
            .unwrap()
            .is_none(),
        "no authenticator app was forced on Pat"
    );
}

async fn a_replayed_passkey_answer_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(&app), &options);
    let (status, _) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::OK);

    // Someone who captured the answer sends it again from a fresh browser,
    // with a challenge of its own: the answer signed another challenge.
    let thief = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&thief, &auth.url).await;
    start(&thief, &csrf, &req).await;
    let (status, refused) = finish(&thief, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["error"].as_str().is_some(), "{refused}");
    assert!(!has_session(&thief).await);
    // And with no challenge at all (the first one is used up).
    let (status, _) = finish(&thief, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!has_session(&thief).await);
}

async fn another_browser_cannot_finish_this_browsers_passkey_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(&app), &options);

    // Another browser holds no ceremony: the answer opens nothing there,
    // with its own CSRF token and request or with this browser's.
    let other = app.other_browser();
    let (_, other_csrf, other_req) = sign_in_page(&other, &auth.url).await;
    let (status, _) = finish(&other, &other_csrf, &other_req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = finish(&other, &csrf, &req, &answer).await;
    assert!(status.is_client_error(), "{status}");
    assert!(!has_session(&other).await);

    // This browser's sign-in was left alone.
    let (status, done) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(has_session(&browser).await);
}

async fn a_forged_user_handle_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let (pat, mut authenticator) = pat_with_a_passkey(&app).await;
    let sam = app.create_user("sam@example.com", PW, "Sam").await;
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let mut answer = authenticator.sign_in(&origin(&app), &options);
    // Pat's passkey, claiming to be Sam's (the handle is not signed).
    let sams_handle = base64url(uuid::Uuid::parse_str(sam.id.as_str()).unwrap().as_bytes());
    answer["response"]["userHandle"] = Value::String(sams_handle);
    let (status, refused) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(!has_session(&browser).await);
    let events = audit_kinds(&app, &pat).await;
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "passkey.signin_failed" && d["reason"] == "other_user"),
        "{events:?}"
    );
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn a_copied_passkey_is_refused_and_audited(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    // Two browsers each get a challenge; the authenticator signs both, the
    // first with the lower counter. A copy of the key used elsewhere looks
    // like this: an answer whose counter is not above the one last seen.
    let first = app.other_browser();
    let second = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf1, req1) = sign_in_page(&first, &auth.url).await;
    let (_, csrf2, req2) = sign_in_page(&second, &auth.url).await;
    let options1 = start(&first, &csrf1, &req1).await;
    let options2 = start(&second, &csrf2, &req2).await;
    let older = authenticator.sign_in(&origin(&app), &options1);
    let newer = authenticator.sign_in(&origin(&app), &options2);

    let (status, _) = finish(&second, &csrf2, &req2, &newer).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) = finish(&first, &csrf1, &req1, &older).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(!has_session(&first).await);

    let events = audit_kinds(&app, &user).await;
    assert!(
        events.iter().any(|(k, _)| k == "passkey.clone_warning"),
        "{events:?}"
    );
    let activity = second.page("/account/activity").await.text();
    assert!(activity.contains("it may have been copied"), "{activity}");
}

async fn bad_passkey_answers_get_json_errors_and_no_session(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;

    // Not JSON at all.
    let response = browser
        .http
        .post(browser.url(FINISH))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let json: Value = response.json().await.unwrap();
    assert!(json["error"].as_str().is_some(), "{json}");

    // No CSRF token: refused before anything is looked at.
    let (status, _) = post_json(&browser, START, &json!({ "req": req })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Garbage where the credential goes; then an answer made at another origin.
    start(&browser, &csrf, &req).await;
    let (status, refused) = finish(&browser, &csrf, &req, &json!({ "id": 7 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    // A look-alike site relays this browser's challenge: the authenticator
    // answers for that site's origin and RP id, never for this one's.
    let mut options = start(&browser, &csrf, &req).await;
    options["publicKey"]["rpId"] = json!("evil.example");
    let phished = authenticator.sign_in("https://evil.example", &options);
    let (status, refused) = finish(&browser, &csrf, &req, &phished).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");

    // An oversized body: refused by its size, not a server error.
    let huge =
        json!({ "csrf_token": csrf, "req": req, "credential": { "id": "x".repeat(200_000) } });
    let response = browser
        .http
        .post(browser.url(FINISH))
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A passkey removed meanwhile is not registered any more.
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(&app), &options);
    let stored = app.state.store.passkeys(&user.id).await.unwrap();
    assert!(
        app.state
            .store
            .remove_passkey(&user.id, &stored[0].id, false)
            .await
            .unwrap()
    );
    let (status, refused) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not registered"),
        "{refused}"
    );
    assert!(!has_session(&browser).await);
}

async fn a_disabled_account_cannot_sign_in_with_its_passkey(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    app.state
        .store
        .set_user_disabled(&user.id, true, app.clock_now())
        .await
        .unwrap();
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(&app), &options);
    let (status, refused) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(!has_session(&browser).await);
}

async fn wrong_passwords_do_not_lock_the_owners_passkey_out(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    // Someone guesses Pat's password until the address locks.
    let guesser = app.other_browser();
    let mut locked = false;
    for _ in 0..10 {
        let page = guesser.sign_in(EMAIL, "not the password at all").await;
        if page.text().contains("locked") {
            locked = true;
            break;
        }
    }
    assert!(locked, "the address locks after repeated wrong passwords");
    let right = app.other_browser().sign_in(EMAIL, PW).await;
    assert_ne!(
        right.status,
        StatusCode::SEE_OTHER,
        "the password is locked out too"
    );
    // Pat's passkey cannot be guessed, and still signs in.
    let (browser, claims) = signed_in_with_passkey(&app, &rp, &mut authenticator).await;
    assert_eq!(amr(&claims), ["pop", "mfa"]);
    assert!(has_session(&browser).await);
}

async fn the_second_step_takes_only_the_accounts_own_passkey(backend: Backend) {
    let app = spawn(backend).await;
    let (_, _pats) = pat_with_a_passkey(&app).await;
    // Sam has a password, an authenticator app and a passkey of his own.
    let sam = app.create_user("sam@example.com", PW, "Sam").await;
    let mut sams = SoftAuthenticator::default();
    let browser = app.other_browser();
    browser.signed_in("sam@example.com", PW).await;
    crate::mfa::enrol_from_account(&browser).await;
    assert!(
        app.state
            .store
            .totp_credential(&sam.id)
            .await
            .unwrap()
            .is_some()
    );
    add(&browser, &mut sams, "Sam's").await;

    // Someone with Pat's password (but not Pat's passkey) reaches the
    // second step, and answers with a passkey they hold: Sam's.
    let rp = client(&app, true).await;
    let attacker = app.other_browser();
    let (csrf, _) = at_second_step(&attacker, &rp).await;
    let (status, options) = post_json(&attacker, STEP_START, &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    // Sam's authenticator, told to answer (it signs with its own key).
    let mut forged = options.clone();
    forged["publicKey"]["allowCredentials"] =
        json!([{ "type": "public-key", "id": sams.credential_ids()[0] }]);
    let answer = sams.sign_in(&origin(&app), &forged);
    let body = json!({ "csrf_token": csrf, "credential": answer });
    let (status, refused) = post_json(&attacker, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(!has_session(&attacker).await);

    // Sam's own second step shows both ways: the code form and the passkey.
    let sams_browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (page, _, _) = sign_in_page(&sams_browser, &auth.url).await;
    sams_browser
        .submit_on(
            &page,
            "/login",
            &[("email", "sam@example.com"), ("password", PW)],
        )
        .await;
    let step = sams_browser.page("/login/otp").await;
    assert!(step.body.contains("name=\"code\""), "{}", step.body);
    assert!(
        step.body.contains("data-passkey-step hidden"),
        "{}",
        step.body
    );
}

/// The CSRF token of a second-step page (its passkey section's hidden field).
fn step_csrf(step: &Page) -> String {
    step.body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token")
        .to_owned()
}

/// The second step of `browser` after Pat's password through `rp`: its CSRF token.
async fn at_second_step(browser: &TestApp, rp: &oidc::Rp) -> (String, oidc::AuthStart) {
    let auth = oidc::start(rp, &["email"], &[]);
    let (page, _, _) = sign_in_page(browser, &auth.url).await;
    let after = browser
        .submit_on(&page, "/login", &[("email", EMAIL), ("password", PW)])
        .await;
    assert_eq!(
        after.location.as_deref(),
        Some("/login/otp"),
        "{}",
        after.text()
    );
    let step = browser.page("/login/otp").await;
    let csrf = step_csrf(&step);
    (csrf, auth)
}

async fn a_password_alone_still_signs_in_where_no_second_step_is_asked(backend: Backend) {
    let app = spawn(backend).await;
    let (_, _key) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    // Pat's phone is lost (or the passkey is someone else's): where no
    // second step is required, the password still signs in, so Pat can
    // reach the account page and remove it.
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (page, _, _) = sign_in_page(&browser, &auth.url).await;
    let after = browser
        .submit_on(&page, "/login", &[("email", EMAIL), ("password", PW)])
        .await;
    let to = after.location.clone().unwrap_or_default();
    assert!(
        to.starts_with("/authorize/continue"),
        "{to}: {}",
        after.text()
    );
    let answer = to_callback(&browser, &to).await;
    let tokens = oidc::redeem(&rp, &answer["code"], &auth.verifier)
        .await
        .unwrap();
    let claims = oidc::verify_id_token(&rp, &tokens, Some(&auth.nonce));
    assert_eq!(amr(&claims), ["pwd"]);
}

async fn a_copied_passkey_is_refused_in_the_second_step_too(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, true).await;
    // A second step starts (its request remembers the counter as it was);
    // then the passkey is used elsewhere with a higher counter; then the
    // copy's answer, above the remembered counter but not above the
    // stored one, comes for the second step.
    let browser = app.other_browser();
    let (csrf, _) = at_second_step(&browser, &rp).await;
    let (status, options) = post_json(&browser, STEP_START, &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let copy = authenticator.sign_in(&origin(&app), &options);
    signed_in_with_passkey(&app, &rp, &mut authenticator).await;

    let body = json!({ "csrf_token": csrf, "credential": copy });
    let (status, refused) = post_json(&browser, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(!has_session(&browser).await);
    let events = audit_kinds(&app, &user).await;
    assert!(
        events.iter().any(|(k, _)| k == "passkey.clone_warning"),
        "{events:?}"
    );
}

async fn bursts_of_passkey_answers_from_one_network_are_throttled(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, |c| {
        c.server.issuer.set_host(Some("localhost")).unwrap();
        c.lockout.ip_max_failures = 3;
    })
    .await;
    app.base_url = origin(&app);
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        start(&browser, &csrf, &req).await;
        let (status, _) = finish(&browser, &csrf, &req, &json!({ "id": "x" })).await;
        statuses.push(status);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
        ]
    );
}

async fn a_passkey_sign_in_ends_another_accounts_half_done_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, true).await;
    // In one browser, Pat's password reaches the second step; then the
    // same browser signs in with the passkey (first step).
    let browser = app.other_browser();
    at_second_step(&browser, &rp).await;
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(&app), &options);
    let (status, done) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // The half-done one is gone: its page no longer offers a step.
    let step = browser.page("/login/otp").await;
    assert!(!step.body.contains("data-passkey-step"), "{}", step.text());
}

async fn two_tabs_of_one_browser_each_finish_their_own_passkey_sign_in(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    // One browser, two sign-in pages (two tabs, or the autofill request
    // and the button): the later start does not void the earlier one.
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let first = start(&browser, &csrf, &req).await;
    let second = start(&browser, &csrf, &req).await;
    assert_ne!(
        first["publicKey"]["challenge"],
        second["publicKey"]["challenge"]
    );
    let answer = authenticator.sign_in(&origin(&app), &first);
    let (status, done) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    // Used once: the same answer again finds nothing.
    let (status, _) = finish(&browser, &csrf, &req, &answer).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn a_parallel_burst_of_passkey_answers_gets_no_more_checks_than_the_limit(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, |c| {
        c.server.issuer.set_host(Some("localhost")).unwrap();
        c.lockout.ip_max_failures = 3;
    })
    .await;
    app.base_url = origin(&app);
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    // Twenty answers at once from one network: each is counted before it is
    // looked at, so no more than the limit get past the count.
    let body = json!({ "csrf_token": csrf, "req": req, "credential": { "id": "x" } });
    let sends = (0..20).map(|_| post_json(&browser, FINISH, &body));
    let statuses: Vec<StatusCode> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::BAD_REQUEST)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, throttled), (3, 17), "{statuses:?}");
}

async fn one_passkey_answer_sent_twice_at_once_signs_in_once(backend: Backend) {
    let app = spawn(backend).await;
    let (user, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, false).await;
    let browser = app.other_browser();
    let auth = oidc::start(&rp, &["email"], &[]);
    let (_, csrf, req) = sign_in_page(&browser, &auth.url).await;
    let options = start(&browser, &csrf, &req).await;
    let answer = authenticator.sign_in(&origin(&app), &options);
    // The same answer, several times at once: the ceremony is taken once.
    let sends = (0..8).map(|_| finish(&browser, &csrf, &req, &answer));
    let statuses: Vec<StatusCode> = futures::future::join_all(sends)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let passed = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(passed, 1, "{statuses:?}");
    let sign_ins = audit_kinds(&app, &user)
        .await
        .into_iter()
        .filter(|(k, d)| k == "login.succeeded" && d["passkey"] == "Laptop")
        .count();
    assert_eq!(sign_ins, 1);
}

async fn another_browser_cannot_finish_this_browsers_passkey_second_step(backend: Backend) {
    let app = spawn(backend).await;
    let (_, mut authenticator) = pat_with_a_passkey(&app).await;
    let rp = client(&app, true).await;
    let browser = app.other_browser();
    let (csrf, _) = at_second_step(&browser, &rp).await;
    let (status, options) = post_json(&browser, STEP_START, &json!({ "csrf_token": csrf })).await;
    assert_eq!(status, StatusCode::OK, "{options}");
    let answer = authenticator.sign_in(&origin(&app), &options);

    // Another browser where Pat's password was typed too (its own second
    // step), and one with no second step at all: neither holds this
    // browser's check, so the answer opens nothing there.
    let other = app.other_browser();
    let (other_csrf, _) = at_second_step(&other, &rp).await;
    let body = json!({ "csrf_token": other_csrf, "credential": answer });
    let (status, _) = post_json(&other, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!has_session(&other).await);
    let stranger = app.other_browser();
    let body = json!({ "csrf_token": csrf, "credential": answer });
    let (status, _) = post_json(&stranger, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!has_session(&stranger).await);

    // This browser's second step was left alone.
    let (status, done) = post_json(&browser, STEP_FINISH, &body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(has_session(&browser).await);
}
