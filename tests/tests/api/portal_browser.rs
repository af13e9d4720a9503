//! Sign-ins that end where a person's sign-in ends: on the relying party's
//! page, on another origin, in headless Chromium. An HTTP client follows a
//! 303 anywhere; Chromium checks the sign-in page's CSP `form-action` against
//! every hop of the redirect chain after a form POST (`POST /login → 303
//! /authorize/continue → 303 http://127.0.0.1:<rp>/cb`), so only a browser
//! shows whether Sign in, Allow, Deny and Verify really bring a person back.
//!
//! The relying party is the kit's [`TestRp`] (the `openidconnect` crate, on
//! its own port), one per client; each test fails on a console error or a
//! Content-Security-Policy violation, and leaves a screenshot of each end
//! page in `target/screenshots/`.

use serde_json::{Value, json};
use tests::TestApp;
use tests::browser::NewClient;
use tests::chromium::{Browser, save_screenshot, sign_in, wait_for_themed_sign_in};
use tests::rp::TestRp;

use crate::Backend;

in_chromium!(
    signs_in_at_the_relying_party_in_the_default_theme,
    signs_in_at_the_relying_party_in_the_helix_theme,
    signs_in_at_the_relying_party_in_the_hosting_theme_with_the_captcha_solved_by_the_page,
    signs_in_at_the_relying_party_in_the_customer_theme,
    consent_deny_and_allow_land_on_the_relying_party,
    two_step_sign_in_with_a_code_lands_on_the_relying_party,
    prompt_none_with_a_live_session_returns_silently,
    form_post_lands_on_the_relying_party,
    rp_initiated_logout_lands_on_the_post_logout_page,
    administrator_signs_in_to_the_console_twice,
);

const EMAIL: &str = "jane@example.com";
const PW: &str = "Correct-Horse-Battery-9";
const NAME: &str = "Jane Doe";

/// A provider with a cheap captcha (the hosting theme's page solves it with
/// its own script: 2^8 hashes instead of 2^16 keeps the test short) and Jane.
async fn provider(backend: Backend) -> (TestApp, idp::store::User) {
    let app = TestApp::spawn_with(backend, |c| c.captcha.difficulty = 8).await;
    let jane = app.create_user(EMAIL, PW, NAME).await;
    (app, jane)
}

/// A first-party portal client wearing `theme`, served by its own relying party.
async fn portal(app: &TestApp, id: &str, theme: &str) -> TestRp {
    TestRp::start(app, NewClient::portal(id, theme)).await
}

/// The claims the relying party's page shows, as a person reads them.
async fn claims_shown(browser: &Browser) -> Value {
    browser
        .wait_until(
            "the claims on the relying party's page",
            "const v = id => { const e = document.getElementById(id); return e ? e.innerText.trim() : null; };
             return v('sub') === null ? null
               : { sub: v('sub'), email: v('email'), acr: v('acr'), amr: v('amr'),
                   auth_time: v('auth_time'), method: v('method') };",
            vec![],
        )
        .await
}

/// On the relying party's callback page, signed in as `user` with `amr`.
async fn assert_signed_in_at(browser: &Browser, rp: &TestRp, user: &idp::store::User, amr: &str) {
    browser.wait_for_address(&rp.url("/cb")).await;
    let shown = claims_shown(browser).await;
    let last = rp.last_sign_in();
    assert_eq!(shown["sub"], json!(user.id.as_str()), "{shown}");
    assert_eq!(last.sub, user.id.as_str());
    assert_eq!(shown["email"], json!(EMAIL), "{shown}");
    assert_eq!(shown["amr"], json!(amr), "{shown}");
    let acr = if amr.contains("otp") { "2" } else { "1" };
    assert_eq!(shown["acr"], json!(acr), "{shown}");
}

/// From the relying party's sign-in link to its callback page, in `theme`.
async fn sign_in_through(browser: &Browser, rp: &TestRp, login: &str, theme: &str) {
    browser.open(&rp.url(login)).await;
    wait_for_themed_sign_in(browser, theme).await;
    browser.assert_clean_console("the sign-in page").await;
    sign_in(browser, EMAIL, PW).await;
}

async fn signs_in_at_the_relying_party(backend: Backend, theme: &str) {
    let (app, jane) = provider(backend).await;
    let rp = portal(&app, &format!("{theme}-portal"), theme).await;
    let browser = Browser::start().await;
    sign_in_through(&browser, &rp, "/login", theme).await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    browser
        .assert_clean_console(&format!("the {theme} sign-in and the relying party"))
        .await;
    save_screenshot(&browser, &format!("rp-{theme}-signed-in")).await;
    browser.quit().await;
}

async fn signs_in_at_the_relying_party_in_the_default_theme(backend: Backend) {
    signs_in_at_the_relying_party(backend, "default").await;
}

async fn signs_in_at_the_relying_party_in_the_helix_theme(backend: Backend) {
    signs_in_at_the_relying_party(backend, "helix").await;
}

/// `wait_for_themed_sign_in` waits for captcha.js to report the puzzle
/// solved and the button enabled; the browser's answer is what is sent.
async fn signs_in_at_the_relying_party_in_the_hosting_theme_with_the_captcha_solved_by_the_page(
    backend: Backend,
) {
    signs_in_at_the_relying_party(backend, "hosting").await;
}

async fn signs_in_at_the_relying_party_in_the_customer_theme(backend: Backend) {
    signs_in_at_the_relying_party(backend, "customer").await;
}

async fn consent_deny_and_allow_land_on_the_relying_party(backend: Backend) {
    let (app, jane) = provider(backend).await;
    let mut planner = NewClient::portal("planner", "helix");
    planner.name = "Trip Planner";
    planner.first_party = false;
    let rp = TestRp::start(&app, planner).await;
    let browser = Browser::start().await;

    // Deny: back at the application, which is told access_denied.
    sign_in_through(&browser, &rp, "/login", "helix").await;
    browser.wait_for_path("/consent").await;
    browser.see("Allow Trip Planner to use your account?").await;
    browser.assert_clean_console("the consent page").await;
    browser.click_button("Deny").await;
    browser.wait_for_address(&rp.url("/cb")).await;
    let error = browser
        .wait_until(
            "the error on the relying party's page",
            "const e = document.getElementById('error'); return e ? e.innerText : null;",
            vec![],
        )
        .await;
    assert_eq!(error, json!("access_denied"));
    assert!(rp.sign_ins().is_empty(), "no sign-in after Deny");
    browser.assert_clean_console("Deny").await;
    save_screenshot(&browser, "rp-consent-denied").await;

    // Asked again (nothing was granted); Allow: signed in at the application.
    browser.open(&rp.url("/login")).await;
    browser.wait_for_path("/consent").await;
    browser.click_button("Allow").await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    browser.assert_clean_console("Allow").await;
    save_screenshot(&browser, "rp-consent-allowed").await;

    // Granted now, yet prompt=consent asks once more; Allow lands there again.
    browser.open(&rp.url("/login?prompt=consent")).await;
    browser.wait_for_path("/consent").await;
    browser.click_button("Allow").await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    assert_eq!(rp.sign_ins().len(), 2);
    browser.assert_clean_console("prompt=consent").await;
    browser.quit().await;
}

/// Turns two-step sign-in on for `email` from the account page, in a
/// browser without JavaScript; returns the key. The clock is then in the
/// next step (a code of the step used here would be a replay).
async fn with_authenticator(app: &TestApp, email: &str) -> String {
    let browser = app.other_browser();
    browser.signed_in(email, PW).await;
    let setup = browser.page("/account/mfa/setup").await;
    assert_eq!(setup.status, reqwest::StatusCode::OK, "{}", setup.text());
    let key = setup.manual_key_compact().expect("the key to type by hand");
    let code = tests::totp::code_at(&key, app.clock_now());
    let done = browser
        .submit_on(&setup, "/account/mfa/setup", &[("code", &code)])
        .await;
    assert_eq!(done.status, reqwest::StatusCode::OK, "{}", done.text());
    app.clock.advance(time::Duration::seconds(30));
    key
}

async fn two_step_sign_in_with_a_code_lands_on_the_relying_party(backend: Backend) {
    let (app, jane) = provider(backend).await;
    let key = with_authenticator(&app, EMAIL).await;
    let rp = portal(&app, "customer-portal", "customer").await;
    let browser = Browser::start().await;
    sign_in_through(&browser, &rp, "/login", "customer").await;
    browser.wait_for_path("/login/otp").await;
    browser.see(EMAIL).await;
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Verify").await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd otp").await;
    browser
        .assert_clean_console("the code and the relying party")
        .await;
    save_screenshot(&browser, "rp-two-step-signed-in").await;
    browser.quit().await;
}

async fn prompt_none_with_a_live_session_returns_silently(backend: Backend) {
    let (app, jane) = provider(backend).await;
    let rp = portal(&app, "default-portal", "default").await;
    let browser = Browser::start().await;
    sign_in_through(&browser, &rp, "/login", "default").await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    let first = rp.last_sign_in();

    // Later, the application checks the session without showing anything:
    // straight back with a code for the same sign-in (same auth_time).
    app.clock.advance(time::Duration::minutes(5));
    browser.open(&rp.url("/login?prompt=none")).await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    let silent = rp.last_sign_in();
    assert_eq!(rp.sign_ins().len(), 2);
    assert_eq!(silent.auth_time, first.auth_time, "no new authentication");
    browser.assert_clean_console("prompt=none").await;

    // With the ID token it holds as the hint: the same, silently.
    let hinted = |hint: &str| rp.url(&format!("/login?prompt=none&id_token_hint={hint}"));
    browser.open(&hinted(&first.id_token)).await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    assert_eq!(rp.sign_ins().len(), 3);
    assert_eq!(rp.last_sign_in().sub, first.sub);

    // Bob signed in at the same application elsewhere; his ID token as the
    // hint in Jane's browser is never answered for Jane.
    app.create_user("bob@example.com", "Amber-Orchard-Violin-2846", "Bob")
        .await;
    let elsewhere = app.other_browser();
    let mut bob = tests::signin::Person::new("bob@example.com");
    bob.password = Some("Amber-Orchard-Violin-2846".into());
    let callback = rp.url("/cb?");
    let arrived = bob
        .walk(&elsewhere, &rp.url("/login"), |u| u.starts_with(&callback))
        .await;
    assert_eq!(elsewhere.page_at(&arrived).await.status, 200);
    let bobs = rp.last_sign_in();
    assert_ne!(bobs.sub, first.sub);
    browser.open(&hinted(&bobs.id_token)).await;
    browser
        .wait_until(
            "the relying party's page with the provider's error",
            "const e = document.getElementById('error'); return e ? e.innerText.trim() : null;",
            vec![],
        )
        .await;
    browser.see("login_required").await;
    assert_eq!(
        rp.sign_ins().len(),
        4,
        "no sign-in for Jane with Bob's hint"
    );
    browser
        .assert_clean_console("prompt=none with an id_token_hint")
        .await;
    save_screenshot(&browser, "rp-prompt-none").await;
    browser.quit().await;
}

async fn form_post_lands_on_the_relying_party(backend: Backend) {
    let (app, jane) = provider(backend).await;
    let rp = portal(&app, "helix-portal", "helix").await;
    let browser = Browser::start().await;
    sign_in_through(&browser, &rp, "/login?response_mode=form_post", "helix").await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;
    let shown = claims_shown(&browser).await;
    assert_eq!(
        shown["method"],
        json!("POST"),
        "the answer came as a form post"
    );
    assert_eq!(rp.last_sign_in().method, "POST");
    browser.assert_clean_console("form_post").await;
    save_screenshot(&browser, "rp-form-post").await;
    browser.quit().await;
}

async fn rp_initiated_logout_lands_on_the_post_logout_page(backend: Backend) {
    let (app, jane) = provider(backend).await;
    let rp = portal(&app, "customer-portal", "customer").await;
    let browser = Browser::start().await;
    sign_in_through(&browser, &rp, "/login", "customer").await;
    assert_signed_in_at(&browser, &rp, &jane, "pwd").await;

    // The application's Sign out: to the provider with the ID token as the
    // hint, and straight back to the application's own page.
    browser.follow_link("Sign out").await;
    browser.wait_for_address(&rp.url("/signed-out")).await;
    browser.see("You are signed out of the test app.").await;
    browser.assert_clean_console("the post-logout page").await;
    save_screenshot(&browser, "rp-signed-out").await;

    // Signed out at the provider too: the next sign-in asks for the password.
    browser.open(&rp.url("/login")).await;
    wait_for_themed_sign_in(&browser, "customer").await;
    browser.quit().await;
}

async fn administrator_signs_in_to_the_console_twice(backend: Backend) {
    let (app, _) = provider(backend).await;
    let root = app.create_user("root@example.com", PW, "Root Admin").await;
    app.state
        .store
        .set_user_admin(&root.id, true, app.clock_now())
        .await
        .unwrap();

    // First sign-in: the password, then an authenticator is set up.
    let browser = Browser::start().await;
    browser.open(&app.admin_url("/admin/")).await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, "root@example.com", PW).await;
    browser.wait_for_path("/login/mfa-setup").await;
    let key = browser
        .wait_until(
            "the setup key (#manual-key)",
            "const k = document.getElementById('manual-key');
             return k && k.getClientRects().length > 0 ? k.innerText : null;",
            vec![],
        )
        .await;
    let key = key.as_str().unwrap_or_default().to_owned();
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Turn on").await;
    browser.see("recovery codes").await;
    browser.follow_link("Continue").await;
    browser.wait_for_address(&app.admin_url("/admin/")).await;
    browser.see("Dashboard").await;
    browser.see("Root Admin").await;
    browser
        .assert_clean_console("the first console sign-in")
        .await;
    save_screenshot(&browser, "console-first-sign-in").await;
    browser.quit().await;

    // Second sign-in, in a fresh profile: the password, then a code.
    app.clock.advance(time::Duration::seconds(30));
    let browser = Browser::start().await;
    browser.open(&app.admin_url("/admin/")).await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, "root@example.com", PW).await;
    browser.wait_for_path("/login/otp").await;
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Verify").await;
    browser.wait_for_address(&app.admin_url("/admin/")).await;
    browser.see("Dashboard").await;
    browser.see("Root Admin").await;
    browser
        .assert_clean_console("the second console sign-in")
        .await;
    save_screenshot(&browser, "console-second-sign-in").await;
    browser.quit().await;
}
