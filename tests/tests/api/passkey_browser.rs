//! Passkeys on the account page in headless Chromium (issue 16, item 1):
//! the page's own script runs the registration ceremony, and Chromium
//! answers `navigator.credentials.create` with a virtual authenticator (the
//! WebAuthn WebDriver extension, `tests::webauthn`), whose credentials the
//! test then reads: what a person's phone would hold. The server's issuer is
//! `http://localhost:<port>` (WebAuthn RP ids are domain names) and the
//! browser opens the pages there. Each test fails on a console error or a
//! Content-Security-Policy violation. The ceremony's refusals are HTTP
//! tests (`passkeys.rs`).

use serde_json::json;
use tests::TestApp;
use tests::browser::{NewClient, register_client};
use tests::chromium::{Browser, save_screenshot, sign_in};
use tests::rp::TestRp;
use tests::webauthn::{
    browser_with_authenticator, issuer_on_localhost, issuer_url, press_add_passkey,
    register_passkey, sign_in_at_issuer,
};

use crate::Backend;

in_chromium!(
    a_passkey_is_added_on_the_portal_themed_page,
    a_passkey_is_removed_from_the_page_but_not_the_last_way_in,
    without_a_recent_sign_in_the_page_asks_to_confirm_it_is_you,
    a_passkey_signs_in_to_a_portal_on_another_origin,
    a_passkey_is_the_second_step_of_a_portal_that_requires_two,
    a_replayed_passkey_answer_is_refused_in_the_browser,
);

const EMAIL: &str = "jane@example.com";
const PW: &str = "Correct-Horse-Battery-9";

/// A provider on `http://localhost:<port>` with Jane, and a first-party
/// portal wearing `theme`; returns the query that shows its theme.
async fn provider(backend: Backend, theme: &str) -> (TestApp, idp::store::User, String) {
    let app = TestApp::spawn_with(backend, issuer_on_localhost).await;
    let jane = app.create_user(EMAIL, PW, "Jane Doe").await;
    let client = format!("{theme}-portal");
    register_client(&app, NewClient::portal(&client, theme)).await;
    (app, jane, format!("?client_id={client}"))
}

async fn stored(app: &TestApp, user: &idp::store::User) -> Vec<idp::store::StoredPasskey> {
    app.state.store.passkeys(&user.id).await.unwrap()
}

/// Waits until the page shown wears `theme`.
async fn wears(browser: &Browser, theme: &str) {
    browser
        .wait_until(
            &format!("the {theme} theme"),
            "return document.readyState === 'complete'
               && document.body.classList.contains('theme-' + arguments[0]);",
            vec![json!(theme)],
        )
        .await;
}

async fn a_passkey_is_added_on_the_portal_themed_page(backend: Backend) {
    let (app, jane, query) = provider(backend, "helix").await;
    let (browser, key) = browser_with_authenticator().await;
    sign_in_at_issuer(&browser, &app, &query, EMAIL, PW).await;

    // From the account page's link, in the portal's theme.
    browser.follow_link("Passkeys").await;
    browser.wait_for_path("/account/passkeys").await;
    wears(&browser, "helix").await;
    browser.see("You have no passkeys yet.").await;

    // The finger is not recognised: the page says so, nothing is made.
    key.set_user_verified(&browser, false).await;
    let refused = press_add_passkey(&browser, "Work laptop").await;
    let message = refused.expect_err("no passkey without user verification");
    assert!(message.contains("No passkey was made"), "{message}");
    assert!(key.credentials(&browser).await.is_empty());
    assert!(stored(&app, &jane).await.is_empty());

    key.set_user_verified(&browser, true).await;
    register_passkey(&browser, &app, &query, "Work laptop").await;
    wears(&browser, "helix").await;
    browser.see("Not used yet.").await;

    // The phone holds one discoverable credential for this server, under a
    // handle that is the account's id, not its address; the server holds
    // the same credential.
    let held = key.credentials(&browser).await;
    assert_eq!(held.len(), 1, "{held:?}");
    let credential = &held[0];
    assert!(credential.is_resident_credential, "{credential:?}");
    assert_eq!(
        credential.rp_id.as_deref(),
        Some("localhost"),
        "{credential:?}"
    );
    let handle = credential.user_handle_bytes().expect("a user handle");
    assert!(
        !String::from_utf8_lossy(&handle).contains(EMAIL),
        "{credential:?}"
    );
    let id = uuid::Uuid::parse_str(jane.id.as_str()).unwrap();
    assert_eq!(handle, id.as_bytes(), "{credential:?}");
    let passkeys = stored(&app, &jane).await;
    assert_eq!(passkeys.len(), 1);
    assert_eq!(passkeys[0].name, "Work laptop");
    assert_eq!(passkeys[0].credential_id, credential.credential_id);

    // The same phone again: it says it holds one already and makes none.
    let refused = press_add_passkey(&browser, "Again").await;
    let message = refused.expect_err("no second passkey on the same phone");
    assert!(
        message.contains("This device already has a passkey for your account"),
        "{message}"
    );
    assert_eq!(key.credentials(&browser).await.len(), 1);
    assert_eq!(stored(&app, &jane).await.len(), 1);

    browser
        .assert_clean_console("adding a passkey in the helix theme")
        .await;
    save_screenshot(&browser, "passkeys-helix-added").await;
    browser.quit().await;
}

async fn a_passkey_is_removed_from_the_page_but_not_the_last_way_in(backend: Backend) {
    let (app, jane, query) = provider(backend, "customer").await;
    let (browser, key) = browser_with_authenticator().await;
    sign_in_at_issuer(&browser, &app, &query, EMAIL, PW).await;
    register_passkey(&browser, &app, &query, "Phone").await;

    browser.click_button("Remove Phone").await;
    browser.see("Passkey “Phone” removed.").await;
    browser.see("You have no passkeys yet.").await;
    wears(&browser, "customer").await;
    assert!(stored(&app, &jane).await.is_empty());
    browser
        .assert_clean_console("removing a passkey in the customer theme")
        .await;

    // Without a password, her only passkey is her only way in: it stays.
    app.remove_password(&jane.id).await;
    key.remove_all_credentials(&browser).await;
    register_passkey(&browser, &app, &query, "Only key").await;
    browser.click_button("Remove Only key").await;
    browser.see("only way you can sign in").await;
    browser.see("Only key").await;
    wears(&browser, "customer").await;
    assert_eq!(stored(&app, &jane).await.len(), 1);
    assert_eq!(key.credentials(&browser).await.len(), 1);
    // The refusal is a 409 page, which Chromium logs as a failed load.
    browser
        .assert_clean_console_but("the refused removal", &["status of 409"])
        .await;
    save_screenshot(&browser, "passkeys-customer-last-way-in").await;
    browser.quit().await;
}

async fn without_a_recent_sign_in_the_page_asks_to_confirm_it_is_you(backend: Backend) {
    let (app, jane, query) = provider(backend, "helix").await;
    let (browser, key) = browser_with_authenticator().await;
    sign_in_at_issuer(&browser, &app, &query, EMAIL, PW).await;
    register_passkey(&browser, &app, &query, "Phone").await;
    let reauth_after = app.state.config.account.reauth_max_age_minutes;
    app.clock.advance(time::Duration::minutes(
        i64::try_from(reauth_after).unwrap() + 1,
    ));

    // The page still shows; adding sends her to "Confirm it's you", in the
    // portal's theme, before any ceremony.
    browser
        .open(&issuer_url(&app, &format!("/account/passkeys{query}")))
        .await;
    browser.see("Phone").await;
    press_add_passkey(&browser, "Laptop")
        .await
        .expect("the browser leaves for the confirmation");
    browser.wait_for_path("/account/reauth").await;
    browser.see("Confirm it's you").await;
    wears(&browser, "helix").await;
    assert_eq!(key.credentials(&browser).await.len(), 1);
    browser
        .assert_clean_console_but(
            "the passkey started without a recent sign-in",
            &["/account/passkeys/register/start - Failed to load resource: the server responded with a status of 403"],
        )
        .await;

    // Removing too.
    browser
        .open(&issuer_url(&app, &format!("/account/passkeys{query}")))
        .await;
    browser.click_button("Remove Phone").await;
    browser.wait_for_path("/account/reauth").await;
    browser.see("Confirm it's you").await;
    assert_eq!(stored(&app, &jane).await.len(), 1);

    // Confirmed with her password: back on the page, and adding works
    // (from a new laptop: an authenticator without her first passkey).
    browser.type_into("password", PW).await;
    browser.click_button("Confirm").await;
    browser.wait_for_path("/account/passkeys").await;
    wears(&browser, "helix").await;
    let first = key.credentials(&browser).await[0].credential_id.clone();
    key.remove_credential(&browser, &first).await;
    press_add_passkey(&browser, "Laptop")
        .await
        .expect("the passkey is added");
    browser.wait_for_path("/account/passkeys").await;
    browser.see("Laptop").await;
    assert_eq!(stored(&app, &jane).await.len(), 2);
    browser
        .assert_clean_console("adding a passkey after confirming")
        .await;
    browser.quit().await;
}

/// A provider on `http://localhost:<port>`, reached by that name, with
/// Jane, and a relying party wearing `theme` on its own origin
/// (127.0.0.1, its own port), requiring two-step sign-in if `require_mfa`.
async fn provider_and_portal(
    backend: Backend,
    theme: &str,
    require_mfa: bool,
) -> (TestApp, idp::store::User, TestRp) {
    let mut app = TestApp::spawn_with(backend, issuer_on_localhost).await;
    app.base_url = issuer_url(&app, "");
    let jane = app.create_user(EMAIL, PW, "Jane Doe").await;
    let client = format!("{theme}-portal");
    let rp = TestRp::start(
        &app,
        NewClient {
            require_mfa,
            ..NewClient::portal(&client, theme)
        },
    )
    .await;
    (app, jane, rp)
}

/// Jane adds a passkey from her account page, then signs out of the
/// provider: the authenticator keeps the passkey, the browser no session.
async fn jane_with_a_passkey(browser: &Browser, app: &TestApp, theme: &str) {
    let query = format!("?client_id={theme}-portal");
    sign_in_at_issuer(browser, app, &query, EMAIL, PW).await;
    register_passkey(browser, app, &query, "Phone").await;
    browser
        .client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
}

async fn a_passkey_signs_in_to_a_portal_on_another_origin(backend: Backend) {
    let (app, jane, rp) = provider_and_portal(backend, "helix", false).await;
    let (browser, key) = browser_with_authenticator().await;
    jane_with_a_passkey(&browser, &app, "helix").await;

    // The portal sends her to the provider's sign-in page, in its theme.
    // The page quietly asks for a passkey for the email field's autofill;
    // her finger is not recognised yet, so that request finds nothing and
    // the page stays, with its button.
    key.set_user_verified(&browser, false).await;
    browser.open(&rp.url("/login")).await;
    browser.wait_for_path("/login").await;
    wears(&browser, "helix").await;
    browser.visible_button("Sign in with a passkey").await;
    assert!(rp.sign_ins().is_empty());

    // The button: the phone answers and she lands on the portal (another
    // origin), signed in with two factors and no password typed.
    key.set_user_verified(&browser, true).await;
    browser.press_button("Sign in with a passkey").await;
    browser.wait_for_address(&rp.url("/cb")).await;
    browser.see("Signed in to helix-portal").await;
    let signed_in = rp.last_sign_in();
    assert_eq!(signed_in.sub, jane.id.as_str());
    assert_eq!(signed_in.amr, ["pop", "mfa"]);
    assert_eq!(signed_in.acr.as_deref(), Some("2"));
    let passkeys = app.state.store.passkeys(&jane.id).await.unwrap();
    assert!(passkeys[0].last_used_at.is_some());

    // Signed out again: this time the autofill request itself signs her in
    // (Chromium's virtual authenticator picks the passkey at once, as she
    // would from the email field's list).
    browser.open(&issuer_url(&app, "/account")).await;
    browser
        .client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
    browser.open(&rp.url("/login")).await;
    browser.wait_for_address(&rp.url("/cb")).await;
    assert_eq!(rp.sign_ins().len(), 2);
    assert_eq!(rp.last_sign_in().amr, ["pop", "mfa"]);
    // A new sign-in with the passkey, not the first one's session.
    let passkey_sign_ins = app
        .state
        .store
        .audit_events(Some(&jane.id), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == "login.succeeded" && e.event.detail["passkey"] == "Phone")
        .count();
    assert_eq!(passkey_sign_ins, 2);
    browser
        .assert_clean_console("signing in with a passkey from the helix portal")
        .await;
    save_screenshot(&browser, "passkey-signin-helix").await;
    browser.quit().await;
}

async fn a_passkey_is_the_second_step_of_a_portal_that_requires_two(backend: Backend) {
    let (app, _jane, rp) = provider_and_portal(backend, "customer", true).await;
    let (browser, key) = browser_with_authenticator().await;
    jane_with_a_passkey(&browser, &app, "customer").await;

    // Password first (her finger not recognised yet, the sign-in page's
    // autofill request finds nothing); the portal requires a second step,
    // and Jane has a passkey (no authenticator app): the page asks for it.
    key.set_user_verified(&browser, false).await;
    browser.open(&rp.url("/login")).await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, EMAIL, PW).await;
    browser.wait_for_path("/login/otp").await;
    wears(&browser, "customer").await;

    // Her finger is not recognised at first: the page says so and stays.
    browser.press_button("Use a passkey").await;
    browser.see("No passkey was used").await;
    assert!(rp.sign_ins().is_empty());

    key.set_user_verified(&browser, true).await;
    browser.press_button("Use a passkey").await;
    browser.wait_for_address(&rp.url("/cb")).await;
    let signed_in = rp.last_sign_in();
    assert_eq!(signed_in.amr, ["pwd", "pop", "mfa"]);
    assert_eq!(signed_in.acr.as_deref(), Some("2"));
    browser
        .assert_clean_console("a passkey as the second step in the customer theme")
        .await;
    save_screenshot(&browser, "passkey-second-step-customer").await;
    browser.quit().await;
}

async fn a_replayed_passkey_answer_is_refused_in_the_browser(backend: Backend) {
    let (app, jane, rp) = provider_and_portal(backend, "helix", false).await;
    let (browser, key) = browser_with_authenticator().await;
    jane_with_a_passkey(&browser, &app, "helix").await;
    // Something in the page (an extension, an injected script) copies what
    // the sign-in script sends: the passkey's answer.
    browser
        .cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": "(function () {
                const send = window.fetch;
                window.fetch = function (url, init) {
                  if (String(url).indexOf('/login/passkey/finish') >= 0 && init && init.body) {
                    localStorage.setItem('copied-answer', init.body);
                  }
                  return send.apply(this, arguments);
                };
              })();" }),
        )
        .await;
    browser.open(&rp.url("/login")).await;
    browser.wait_for_address(&rp.url("/cb")).await;
    assert_eq!(rp.sign_ins().len(), 1);

    // Signed out, the copy is sent again from the provider's own page,
    // with that page's fresh CSRF token and a challenge of its own.
    browser.open(&issuer_url(&app, "/account")).await;
    browser
        .client
        .delete_all_cookies()
        .await
        .expect("cookies cleared");
    key.set_user_verified(&browser, false).await;
    browser.open(&issuer_url(&app, "/login")).await;
    browser.wait_for_path("/login").await;
    browser.visible_button("Sign in with a passkey").await;
    let answer = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const copied = JSON.parse(localStorage.getItem('copied-answer'));
             copied.csrf_token = document.querySelector('form[action=\\'/login\\'] [name=csrf_token]').value;
             copied.req = '';
             fetch('/login/passkey/start', { method: 'POST', credentials: 'same-origin',
                 headers: { 'Content-Type': 'application/json' },
                 body: JSON.stringify({ csrf_token: copied.csrf_token }) })
               .then(() => fetch('/login/passkey/finish', { method: 'POST', credentials: 'same-origin',
                 headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(copied) }))
               .then(r => r.json().then(j => done({ status: r.status, body: j })))
               .catch(e => done({ status: 0, body: String(e) }));",
            vec![],
        )
        .await
        .expect("the copied answer sent again");
    assert_eq!(answer["status"], 400, "{answer}");
    let error = answer["body"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("expired or was already used"), "{answer}");
    // No session: the account page sends to the sign-in page.
    browser.open(&issuer_url(&app, "/account")).await;
    browser.wait_for_path("/login").await;
    assert_eq!(rp.sign_ins().len(), 1);
    let signed_in = app
        .state
        .store
        .audit_events(Some(&jane.id), 50)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == "login.succeeded")
        .count();
    assert_eq!(
        signed_in, 2,
        "the password (to add the passkey) and the passkey, no more"
    );
    browser
        .assert_clean_console_but(
            "a copied passkey answer sent again",
            &["/login/passkey/finish - Failed to load resource"],
        )
        .await;
    browser.quit().await;
}
