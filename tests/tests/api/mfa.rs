//! Two-step sign-in (docs/mfa.md) as a person and a relying party see it:
//! turning it on from the account page, signing in with a code from an
//! authenticator app or a recovery code, lockout, mail to the owner, turning
//! it off, and enforcement through OpenID Connect (`require_mfa`,
//! `mfa.required`, an essential `acr` claim; `acr_values` as a preference)
//! with the ID token's `acr` and `amr`.
//! The codes come from the kit's own RFC 6238 implementation (`tests::totp`),
//! computed at the server's (test) clock.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use openidconnect::core::CoreIdTokenClaims;
use reqwest::StatusCode;
use scraper::Selector;
use serde_json::{Value, json};
use tests::browser::{MailApp, NewClient, Page, register_client};
use tests::signin::Person;
use tests::smtp::ReceivedMail;
use tests::totp;
use time::Duration;

use crate::oidc::{self, CALLBACK, EMAIL, PW};
use crate::{Backend, TestApp};

on_both_backends!(
    turning_it_on_from_the_account_page_shows_a_key_and_ten_codes_once,
    signing_in_asks_for_a_code_after_the_password,
    codes_of_the_neighbouring_steps_work_two_steps_away_do_not,
    a_recovery_code_signs_in_once_and_mails_the_owner,
    five_wrong_codes_lock_the_address,
    signing_in_again_does_not_reset_the_count_of_wrong_codes,
    a_wrong_code_mails_the_owner_once_per_sign_in,
    malformed_codes_get_a_clear_message,
    an_expired_or_foreign_second_step_gets_a_clear_page,
    turning_it_off_needs_the_password_and_a_code,
    new_recovery_codes_void_the_old_ones,
    an_application_that_requires_it_has_users_enrol_during_sign_in,
    id_tokens_tell_whether_a_code_was_entered,
    asking_for_acr_2_steps_a_password_session_up,
    prompt_none_answers_interaction_required_when_a_code_is_needed,
    when_required_for_everyone_a_plain_sign_in_enrols_first,
    the_audit_trail_records_enrolment_and_failures,
    a_session_from_before_turning_it_on_steps_up_with_a_code,
    secrets_are_sealed_at_rest_with_the_key_encryption_key,
    max_age_asks_for_the_password_and_a_code_again,
    prompt_login_is_met_once_by_both_steps_or_an_enrolment,
    acr_values_1_2_signs_in_a_user_without_an_authenticator_with_acr_1,
    acr_values_are_a_preference_in_order_for_a_user_with_an_authenticator,
    an_essential_acr_2_that_cannot_be_met_is_unmet_authentication_requirements,
    an_essential_acr_2_asks_a_user_with_an_authenticator_for_the_code,
    a_client_that_requires_it_still_enrols_whatever_acr_values_say,
);

const NAME: &str = "Jane Doe";

// ---------------------------------------------------------------- pages

/// The path of a `Location` or a URL, without its query.
fn path_of(target: &str) -> String {
    if target.starts_with('/') {
        target.split(['?', '#']).next().unwrap_or("").to_owned()
    } else {
        url::Url::parse(target)
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }
}

fn form_action_path(form: &scraper::ElementRef<'_>) -> String {
    path_of(form.value().attr("action").unwrap_or(""))
}

/// Whether the page has a form posting to `action`.
fn has_form(page: &Page, action: &str) -> bool {
    let forms = Selector::parse("form").unwrap();
    page.html()
        .select(&forms)
        .any(|f| form_action_path(&f) == action)
}

/// The error message of `field` in the form posting to `action`: what its
/// `aria-describedby` names, the field's hint left out.
fn field_error(page: &Page, action: &str, field: &str) -> String {
    let html = page.html();
    let forms = Selector::parse("form").unwrap();
    let input = Selector::parse(&format!("[name=\"{field}\"]")).unwrap();
    let Some(element) = html
        .select(&forms)
        .filter(|f| form_action_path(f) == action)
        .find_map(|f| f.select(&input).next())
    else {
        return String::new();
    };
    element
        .value()
        .attr("aria-describedby")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|id| {
            let sel = Selector::parse(&format!("[id=\"{id}\"]")).ok()?;
            let described = html.select(&sel).next()?;
            let is_hint = id.ends_with("-hint")
                || described
                    .value()
                    .attr("class")
                    .is_some_and(|c| c.contains("hint"));
            (!is_hint).then(|| described.text().collect::<String>())
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// The text of the `role=status` messages (flashes).
fn status_messages(page: &Page) -> String {
    let sel = Selector::parse("[role=status]").unwrap();
    page.html()
        .select(&sel)
        .map(|e| e.text().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://` URI on an enrolment page (a link, or text).
fn otpauth_uri(page: &Page) -> Option<String> {
    let html = page.html();
    let all = Selector::parse("*").unwrap();
    html.select(&all)
        .flat_map(|e| {
            e.value()
                .attrs()
                .map(|(_, v)| v.to_owned())
                .collect::<Vec<_>>()
        })
        .find(|v| v.starts_with("otpauth://"))
        .or_else(|| {
            page.text()
                .split_whitespace()
                .find(|w| w.starts_with("otpauth://"))
                .map(str::to_owned)
        })
}

/// The base32 key of an enrolment page: the manual key, or else the QR code's URI.
fn secret_on(page: &Page) -> String {
    page.manual_key()
        .map(|k| k.split_whitespace().collect())
        .or_else(|| otpauth_uri(page).and_then(|u| totp::secret_of_uri(&u)))
        .unwrap_or_else(|| panic!("no setup key on {}: {}", page.url, page.text()))
}

/// `xxxx-xxxx-xxxx-xxxx` in base32 (any case here; the enrolment test checks lower case).
fn is_recovery_code(word: &str) -> bool {
    let groups: Vec<&str> = word.split('-').collect();
    groups.len() == 4
        && groups.iter().all(|g| {
            g.len() == 4
                && g.chars()
                    .all(|c| c.is_ascii_alphabetic() || ('2'..='7').contains(&c))
        })
}

/// The recovery codes on a page, in order, each once.
fn recovery_codes_on(page: &Page) -> Vec<String> {
    let mut codes: Vec<String> = Vec::new();
    for word in page.text().split_whitespace() {
        let word = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '-');
        if is_recovery_code(word) && !codes.iter().any(|c| c == word) {
            codes.push(word.to_owned());
        }
    }
    codes
}

/// Where the page's "Continue" leads.
fn continue_link(page: &Page) -> String {
    let links = Selector::parse("a[href]").unwrap();
    let html = page.html();
    let anchors: Vec<_> = html.select(&links).collect();
    anchors
        .iter()
        .find(|a| {
            a.value()
                .attr("href")
                .is_some_and(|h| h.contains("/authorize/continue"))
        })
        .or_else(|| {
            anchors
                .iter()
                .find(|a| a.text().collect::<String>().trim() == "Continue")
        })
        .and_then(|a| a.value().attr("href").map(str::to_owned))
        .unwrap_or_else(|| panic!("no Continue link on {}: {}", page.url, page.text()))
}

/// A label of an otpauth URI, percent-decoded.
fn decoded(label: &str) -> String {
    url::form_urlencoded::parse(format!("l={label}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether the account's two-step sign-in page says it is on: the forms to
/// turn it off, or else a link to turn it on (never both).
fn mfa_is_on(page: &Page) -> bool {
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let turn_on = Selector::parse("a[href^=\"/account/mfa/setup\"]").unwrap();
    let offers_setup = page.html().select(&turn_on).next().is_some();
    let offers_off = has_form(page, "/account/mfa/disable");
    assert_ne!(
        offers_setup,
        offers_off,
        "either a link to turn it on or a form to turn it off: {}",
        page.text()
    );
    offers_off
}

async fn mfa_on_for(browser: &TestApp) -> bool {
    mfa_is_on(&browser.page("/account/mfa").await)
}

// ---------------------------------------------------------------- codes and time

/// Moves the server's clock into the next 30-second step (a code accepted in
/// this step cannot be used again in it).
fn next_step(app: &TestApp) {
    app.clock.advance(Duration::seconds(totp::STEP_SECS));
}

/// What the authenticator app shows now (by the server's clock).
fn code_now(app: &TestApp, secret: &str) -> String {
    totp::code_at(secret, app.clock_now())
}

/// Six digits that no step from two before to two after now gives.
fn wrong_code(app: &TestApp, secret: &str) -> String {
    let near: Vec<String> = (-2..=2)
        .map(|s| totp::code_steps_from(secret, app.clock_now(), s))
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

// ---------------------------------------------------------------- people

/// Jane's authenticator: her key and the recovery codes she was shown, and
/// the browser in which she turned it on (still signed in).
struct Enrolled {
    secret: String,
    recovery: Vec<String>,
    browser: TestApp,
}

/// Turns two-step sign-in on from the account page of a signed-in browser.
pub(crate) async fn enrol_from_account(browser: &TestApp) -> (String, Vec<String>) {
    let setup = browser.page("/account/mfa/setup").await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    let secret = secret_on(&setup);
    let done = browser
        .submit_on(
            &setup,
            "/account/mfa/setup",
            &[("code", &code_now(browser, &secret))],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let codes = recovery_codes_on(&done);
    assert_eq!(codes.len(), 10, "ten recovery codes: {}", done.text());
    (secret, codes)
}

/// Jane, with two-step sign-in turned on from her account page. The clock is
/// then in the next step.
async fn jane_with_totp(app: &TestApp) -> Enrolled {
    app.create_user(EMAIL, PW, NAME).await;
    let browser = app.other_browser();
    let answer = browser.sign_in(EMAIL, PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let (secret, recovery) = enrol_from_account(&browser).await;
    next_step(app);
    Enrolled {
        secret,
        recovery,
        browser,
    }
}

/// Jane's password in a new browser: she is sent to the second step.
/// Returns the browser and the code form.
async fn password_step(app: &TestApp) -> (TestApp, Page) {
    let browser = app.other_browser();
    let answer = browser.sign_in(EMAIL, PW).await;
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "the password: {}",
        answer.text()
    );
    let to = answer.location.clone().unwrap_or_default();
    assert_eq!(path_of(&to), "/login/otp", "after the password");
    let form = browser.page(&to).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    assert!(has_form(&form, "/login/otp"), "{}", form.text());
    (browser, form)
}

async fn enter_code(browser: &TestApp, form: &Page, code: &str) -> Page {
    browser
        .submit_on(form, "/login/otp", &[("code", code)])
        .await
}

/// The code was accepted: on to the account page, signed in.
async fn assert_signed_in(browser: &TestApp, answer: &Page, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "{what}: {}",
        answer.text()
    );
    let to = answer.location.clone().unwrap_or_default();
    assert_eq!(path_of(&to), "/account", "{what}");
    let account = browser.page(&to).await;
    assert_eq!(account.status, StatusCode::OK, "{what}: signed in");
    assert!(account.contains(NAME), "{what}: {}", account.text());
}

/// The code was refused: the form again, a message on the code box, and
/// nobody signed in.
async fn assert_code_refused(browser: &TestApp, answer: &Page, what: &str) {
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{what}: {}",
        answer.text()
    );
    assert!(
        !field_error(answer, "/login/otp", "code").is_empty(),
        "{what}: no message on the code box: {}",
        answer.text()
    );
    assert_eq!(
        browser.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "{what}: not signed in"
    );
}

fn assert_locked_page(page: &Page, what: &str) {
    assert_eq!(
        page.status,
        StatusCode::FORBIDDEN,
        "{what}: {}",
        page.text()
    );
    let text = page.text().to_lowercase();
    assert!(
        text.contains("blocked") || text.contains("locked"),
        "{what}: {}",
        page.text()
    );
}

/// Waits for a mail to Jane whose subject contains `about`.
async fn mail_about(app: &MailApp, about: &str) -> ReceivedMail {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        if let Some(mail) = app
            .mail_to(EMAIL)
            .into_iter()
            .find(|m| m.subject().to_lowercase().contains(about))
        {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail about {about:?} to {EMAIL}; got {:?}",
            app.mail_to(EMAIL)
                .iter()
                .map(ReceivedMail::subject)
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
}

async fn audit_kinds(app: &TestApp) -> Vec<(String, Value)> {
    app.state
        .store
        .audit_events(None, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.detail))
        .collect()
}

// ---------------------------------------------------------------- the account page

async fn turning_it_on_from_the_account_page_shows_a_key_and_ten_codes_once(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| c.mfa.issuer = "Helix ID".into()).await;
    app.create_user(EMAIL, PW, NAME).await;
    assert_eq!(app.sign_in(EMAIL, PW).await.status, StatusCode::SEE_OTHER);
    assert!(!mfa_on_for(&app).await, "off to begin with");

    let setup = app.page("/account/mfa/setup").await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    assert!(setup.body.contains("<svg"), "a QR code: {}", setup.body);
    let shown = setup
        .manual_key()
        .expect("the key to type by hand (id manual-key)");
    let groups: Vec<&str> = shown.split_whitespace().collect();
    assert!(
        groups.len() > 1
            && groups.iter().all(|g| g.len() <= 4)
            && groups[..groups.len() - 1].iter().all(|g| g.len() == 4),
        "in groups of four: {shown:?}"
    );
    let secret: String = groups.concat();
    let key = totp::base32_decode(&secret).expect("the key is base32");
    assert_eq!(key.len(), 20, "160 bits: {shown:?}");

    let uri = otpauth_uri(&setup).expect("an otpauth:// URI");
    let parsed = url::Url::parse(&uri).unwrap();
    assert_eq!(parsed.host_str(), Some("totp"), "{uri}");
    let query: HashMap<String, String> = parsed.query_pairs().into_owned().collect();
    assert_eq!(
        query.get("secret").map(|s| s.to_uppercase()),
        Some(secret.to_uppercase()),
        "the QR code holds the same key: {uri}"
    );
    assert_eq!(
        query.get("issuer").map(String::as_str),
        Some("Helix ID"),
        "{uri}"
    );
    assert_eq!(
        decoded(parsed.path().trim_start_matches('/')),
        format!("Helix ID:{EMAIL}"),
        "the app lists the issuer and the address: {uri}"
    );
    for (name, value) in [("digits", "6"), ("period", "30"), ("algorithm", "SHA1")] {
        if let Some(given) = query.get(name) {
            assert_eq!(given, value, "{uri}");
        }
    }

    // A mistyped code: refused, nothing turned on, the same key still shown.
    let wrong = app
        .submit_on(
            &setup,
            "/account/mfa/setup",
            &[("code", &wrong_code(&app, &secret))],
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.text()
    );
    assert!(
        !field_error(&wrong, "/account/mfa/setup", "code").is_empty(),
        "a message on the code box: {}",
        wrong.text()
    );
    assert!(recovery_codes_on(&wrong).is_empty());
    assert_eq!(
        secret_on(&wrong),
        secret,
        "the key already in the app stays valid"
    );
    assert!(!mfa_on_for(&app).await, "a wrong code turns nothing on");
    let password_only = app.other_browser().sign_in(EMAIL, PW).await;
    assert_eq!(
        password_only.location.as_deref().map(path_of).as_deref(),
        Some("/account")
    );

    // The code from the app: on, ten codes shown once.
    let done = app
        .submit_on(
            &wrong,
            "/account/mfa/setup",
            &[("code", &code_now(&app, &secret))],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let codes = recovery_codes_on(&done);
    assert_eq!(codes.len(), 10, "ten distinct codes: {}", done.text());
    for code in &codes {
        assert_eq!(code, &code.to_lowercase(), "shown in lower case: {codes:?}");
    }
    let status = app.page("/account/mfa").await;
    assert!(mfa_is_on(&status));
    for code in &codes {
        assert!(!status.body.contains(code.as_str()), "codes are shown once");
    }

    let mail = mail_about(&app, "turned on").await;
    let body = mail.text_body();
    assert!(
        body.contains("/forgot-password") && body.contains("/account/mfa"),
        "what to do if it was not her: {body}"
    );
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(
        app.mail_to(EMAIL).len(),
        1,
        "one mail: {:?}",
        app.mail_to(EMAIL)
            .iter()
            .map(ReceivedMail::subject)
            .collect::<Vec<_>>()
    );

    // From now on the password alone does not open the account.
    let answer = app.other_browser().sign_in(EMAIL, PW).await;
    assert_eq!(
        answer.location.as_deref().map(path_of).as_deref(),
        Some("/login/otp")
    );
}

// ---------------------------------------------------------------- signing in

async fn signing_in_asks_for_a_code_after_the_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;

    let browser = app.other_browser();
    let answer = browser.sign_in(EMAIL, PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let to = answer.location.clone().unwrap_or_default();
    assert_eq!(path_of(&to), "/login/otp");
    let cookies: Vec<String> = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    assert!(
        !cookies.iter().any(|c| c.starts_with("idp_session=")),
        "no session after the password alone: {cookies:?}"
    );
    let pending = cookies
        .iter()
        .find(|c| c.contains("idp_mfa="))
        .unwrap_or_else(|| panic!("the half-done sign-in's cookie: {cookies:?}"));
    assert!(pending.contains("HttpOnly"), "{pending}");
    let account = browser.page("/account").await;
    assert_eq!(account.status, StatusCode::SEE_OTHER, "not signed in yet");
    assert_eq!(account.location.as_deref(), Some("/login"));

    let form = browser.page(&to).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.contains(EMAIL), "who is signing in: {}", form.text());
    let code = code_now(&app, &jane.secret);
    let typed = format!("{} {}", &code[..3], &code[3..]);
    let signed_in = enter_code(&browser, &form, &typed).await;
    assert_signed_in(&browser, &signed_in, "the code, typed as 123 456").await;

    // A second sign-in within the same 30 seconds: the same code is spent.
    let (second, form) = password_step(&app).await;
    let replay = enter_code(&second, &form, &code).await;
    assert_code_refused(&second, &replay, "a code used before").await;
    next_step(&app);
    let next = enter_code(&second, &form, &code_now(&app, &jane.secret)).await;
    assert_signed_in(&second, &next, "the next step's code").await;
}

async fn codes_of_the_neighbouring_steps_work_two_steps_away_do_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    app.clock.advance(Duration::minutes(3));
    let now = app.clock_now();

    let (browser, form) = password_step(&app).await;
    for (steps, what) in [(-2, "a code a minute old"), (2, "a code a minute ahead")] {
        let answer = enter_code(
            &browser,
            &form,
            &totp::code_steps_from(&jane.secret, now, steps),
        )
        .await;
        assert_code_refused(&browser, &answer, what).await;
    }
    let previous = enter_code(
        &browser,
        &form,
        &totp::code_steps_from(&jane.secret, now, -1),
    )
    .await;
    assert_signed_in(&browser, &previous, "the previous step's code").await;

    let (browser, form) = password_step(&app).await;
    let ahead = enter_code(
        &browser,
        &form,
        &totp::code_steps_from(&jane.secret, now, 1),
    )
    .await;
    assert_signed_in(&browser, &ahead, "the next step's code").await;
}

async fn a_recovery_code_signs_in_once_and_mails_the_owner(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;

    let (browser, form) = password_step(&app).await;
    let used = enter_code(&browser, &form, &jane.recovery[0]).await;
    assert_eq!(used.status, StatusCode::OK, "{}", used.text());
    assert!(
        used.contains("9 recovery codes"),
        "how many are left: {}",
        used.text()
    );
    let onward = continue_link(&used);
    assert_eq!(path_of(&onward), "/account");
    let account = browser.page(&onward).await;
    assert_eq!(account.status, StatusCode::OK, "signed in");
    assert!(account.contains(NAME));

    let mail = mail_about(&app, "recovery code").await;
    assert!(
        mail.text_body().contains("9 recovery codes"),
        "{}",
        mail.text_body()
    );

    // Once only.
    let (browser, form) = password_step(&app).await;
    let again = enter_code(&browser, &form, &jane.recovery[0]).await;
    assert_code_refused(&browser, &again, "a recovery code used before").await;
    // Another one, typed in capitals without dashes.
    let plain = jane.recovery[1].replace('-', "").to_uppercase();
    let typed = format!("{} {}", &plain[..8], &plain[8..]);
    let used = enter_code(&browser, &form, &typed).await;
    assert_eq!(used.status, StatusCode::OK, "{typed}: {}", used.text());
    assert!(used.contains("8 recovery codes"), "{}", used.text());
    assert_eq!(
        browser.page(&continue_link(&used)).await.status,
        StatusCode::OK
    );
}

async fn five_wrong_codes_lock_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    // Somebody else got past the password a moment earlier, in another browser.
    let (waiting, waiting_form) = password_step(&app).await;

    let (browser, form) = password_step(&app).await;
    let wrong = wrong_code(&app, &jane.secret);
    for attempt in 1..=4 {
        let answer = enter_code(&browser, &form, &wrong).await;
        assert_code_refused(&browser, &answer, &format!("wrong code #{attempt}")).await;
    }
    let fifth = enter_code(&browser, &form, &wrong).await;
    assert_locked_page(&fifth, "the fifth wrong code");

    // Now even the right code, in the browser that was waiting, is refused...
    let late = enter_code(&waiting, &waiting_form, &code_now(&app, &jane.secret)).await;
    assert_locked_page(&late, "the right code after the lock");
    assert_eq!(
        waiting.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "not signed in"
    );
    // ...and so is the right password.
    let again = app.other_browser().sign_in(EMAIL, PW).await;
    assert_locked_page(&again, "the right password after the lock");

    let user = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse(EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(user.locked_until.is_some(), "the lock is in the store");
    let kinds: Vec<String> = audit_kinds(&app)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for kind in ["account.locked", "mfa.refused_locked"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

async fn signing_in_again_does_not_reset_the_count_of_wrong_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let wrong = wrong_code(&app, &jane.secret);
    // Two wrong codes, start again with the password, two more...
    for round in 1..=2 {
        let (browser, form) = password_step(&app).await;
        for attempt in 1..=2 {
            let answer = enter_code(&browser, &form, &wrong).await;
            assert_code_refused(
                &browser,
                &answer,
                &format!("round {round}, wrong code #{attempt}"),
            )
            .await;
        }
    }
    // ...and the fifth wrong code after the right password locks all the same.
    let (browser, form) = password_step(&app).await;
    let fifth = enter_code(&browser, &form, &wrong).await;
    assert_locked_page(
        &fifth,
        "the fifth wrong code, across three sign-ins with the right password",
    );
}

async fn a_wrong_code_mails_the_owner_once_per_sign_in(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    mail_about(&app, "turned on").await;

    let (browser, form) = password_step(&app).await;
    for attempt in 1..=2 {
        let answer = enter_code(&browser, &form, &wrong_code(&app, &jane.secret)).await;
        assert_code_refused(&browser, &answer, &format!("wrong code #{attempt}")).await;
    }
    let warning = app.wait_for_mail_to(EMAIL, 2).await;
    assert!(
        warning.text_body().contains("/forgot-password"),
        "someone knows her password: change it: {}",
        warning.text_body()
    );
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(
        app.mail_to(EMAIL).len(),
        2,
        "one mail for the sign-in, not one per code: {:?}",
        app.mail_to(EMAIL)
            .iter()
            .map(ReceivedMail::subject)
            .collect::<Vec<_>>()
    );
    // The right code still works in that sign-in.
    let signed_in = enter_code(&browser, &form, &code_now(&app, &jane.secret)).await;
    assert_signed_in(&browser, &signed_in, "the right code after two wrong ones").await;

    // Another half-done sign-in with a wrong code: another mail.
    let (browser, form) = password_step(&app).await;
    let answer = enter_code(&browser, &form, &wrong_code(&app, &jane.secret)).await;
    assert_code_refused(&browser, &answer, "a wrong code in a new sign-in").await;
    let again = app.wait_for_mail_to(EMAIL, 3).await;
    assert_eq!(again.subject(), warning.subject());
}

async fn malformed_codes_get_a_clear_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let (browser, form) = password_step(&app).await;
    let wrong = enter_code(&browser, &form, &wrong_code(&app, &jane.secret)).await;
    assert_code_refused(&browser, &wrong, "a wrong code").await;
    let wrong_message = field_error(&wrong, "/login/otp", "code");
    for typed in ["abc", "12345", "1234567"] {
        let answer = enter_code(&browser, &form, typed).await;
        assert_code_refused(&browser, &answer, typed).await;
        let message = field_error(&answer, "/login/otp", "code");
        assert!(
            message.contains('6') && message != wrong_message,
            "{typed:?}: says what a code looks like, not just that it is wrong: {message:?}"
        );
    }
    let signed_in = enter_code(&browser, &form, &code_now(&app, &jane.secret)).await;
    assert_signed_in(&browser, &signed_in, "the right code after typos").await;
}

async fn an_expired_or_foreign_second_step_gets_a_clear_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;

    // A browser that never entered the password (no cookie).
    let stranger = app.other_browser().page("/login/otp").await;
    assert!(
        stranger.status.is_client_error(),
        "{}: {}",
        stranger.status,
        stranger.text()
    );
    assert!(
        stranger.text().to_lowercase().contains("expired"),
        "{}",
        stranger.text()
    );
    assert!(
        stranger.body.contains("href=\"/login"),
        "a way to start again: {}",
        stranger.body
    );

    // Five minutes after the password, the half-done sign-in is gone.
    let (browser, form) = password_step(&app).await;
    app.clock.advance(Duration::seconds(301));
    let late = enter_code(&browser, &form, &code_now(&app, &jane.secret)).await;
    assert!(
        late.status.is_client_error(),
        "{}: {}",
        late.status,
        late.text()
    );
    assert!(
        late.text().to_lowercase().contains("expired"),
        "{}",
        late.text()
    );
    assert_eq!(
        browser.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "not signed in"
    );
    let reopened = browser.page("/login/otp").await;
    assert!(reopened.status.is_client_error(), "{}", reopened.status);
    assert!(
        reopened.text().to_lowercase().contains("expired"),
        "{}",
        reopened.text()
    );

    // Starting again works.
    let (browser, form) = password_step(&app).await;
    let signed_in = enter_code(&browser, &form, &code_now(&app, &jane.secret)).await;
    assert_signed_in(&browser, &signed_in, "a new sign-in").await;
}

// ---------------------------------------------------------------- turning off, new codes

async fn turning_it_off_needs_the_password_and_a_code(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let account = &jane.browser;
    let page = account.page("/account/mfa").await;
    assert!(mfa_is_on(&page));

    // A refusal names the box at fault and leaves two-step sign-in on.
    let refused = async |fields: &[(&str, &str)], field: &str| {
        let answer = account
            .submit_on(&page, "/account/mfa/disable", fields)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text()
        );
        assert!(
            !field_error(&answer, "/account/mfa/disable", field).is_empty(),
            "a message on the turn-off form's {field} box: {}",
            answer.text()
        );
        assert!(mfa_on_for(account).await, "still on");
    };
    let code = code_now(&app, &jane.secret);
    refused(
        &[("password", "not-her-password-1"), ("code", &code)],
        "password",
    )
    .await;
    next_step(&app);
    refused(
        &[("password", PW), ("code", &wrong_code(&app, &jane.secret))],
        "code",
    )
    .await;

    next_step(&app);
    let off = account
        .submit_on(
            &page,
            "/account/mfa/disable",
            &[("password", PW), ("code", &code_now(&app, &jane.secret))],
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text());
    assert!(!mfa_is_on(&off), "{}", off.text());
    assert!(
        !status_messages(&off).trim().is_empty(),
        "a confirmation: {}",
        off.text()
    );
    assert!(!mfa_on_for(account).await);
    mail_about(&app, "turned off").await;

    let answer = app.other_browser().sign_in(EMAIL, PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.location.as_deref().map(path_of).as_deref(),
        Some("/account"),
        "the password alone again"
    );
}

async fn new_recovery_codes_void_the_old_ones(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let account = &jane.browser;
    let page = account.page("/account/mfa").await;
    assert!(mfa_is_on(&page));

    let refused = account
        .submit_on(
            &page,
            "/account/mfa/recovery-codes",
            &[("code", &wrong_code(&app, &jane.secret))],
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.text()
    );
    assert!(
        !field_error(&refused, "/account/mfa/recovery-codes", "code").is_empty(),
        "{}",
        refused.text()
    );
    assert!(recovery_codes_on(&refused).is_empty());

    let fresh = account
        .submit_on(
            &page,
            "/account/mfa/recovery-codes",
            &[("code", &code_now(&app, &jane.secret))],
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    let codes = recovery_codes_on(&fresh);
    assert_eq!(codes.len(), 10, "{}", fresh.text());
    assert!(
        codes.iter().all(|c| !jane.recovery.contains(c)),
        "all new: {codes:?}"
    );
    mail_about(&app, "recovery codes").await;

    let (browser, form) = password_step(&app).await;
    let old = enter_code(&browser, &form, &jane.recovery[2]).await;
    assert_code_refused(&browser, &old, "an old recovery code").await;
    let new = enter_code(&browser, &form, &codes[0]).await;
    assert_eq!(new.status, StatusCode::OK, "{}", new.text());
    assert!(new.contains("9 recovery codes"), "{}", new.text());
}

// ---------------------------------------------------------------- OpenID Connect

/// What happened between an authorize URL and the client's redirect URI.
#[derive(Debug)]
struct Journey {
    answer: HashMap<String, String>,
    /// The pages shown on the way (paths), in order.
    pages: Vec<String>,
    /// The key of an enrolment made on the way.
    enrolled: Option<String>,
}

impl Journey {
    fn code(&self) -> &str {
        self.answer
            .get("code")
            .unwrap_or_else(|| panic!("no code: {:?}", self.answer))
    }

    fn error(&self) -> Option<&str> {
        self.answer.get("error").map(String::as_str)
    }
}

/// Follows the redirects from `url` to [`CALLBACK`] like a browser: enters
/// Jane's password on the sign-in page, a code from `secret` (or the key
/// enrolled on the way) on the code page, and enrols on the enrolment page.
async fn journey(browser: &TestApp, url: &str, secret: Option<&str>) -> Journey {
    let mut jane = Person::new(EMAIL).password(PW).authenticator(secret);
    let callback = format!("{CALLBACK}?");
    let arrived = jane.walk(browser, url, |u| u.starts_with(&callback)).await;
    if let Some(done) = &jane.recovery_page {
        assert_eq!(recovery_codes_on(done).len(), 10, "{}", done.text());
    }
    Journey {
        answer: oidc::query_of(&arrived),
        enrolled: jane.recovery_page.as_ref().and(jane.totp),
        pages: jane.pages,
    }
}

fn acr(claims: &CoreIdTokenClaims) -> Option<String> {
    claims.auth_context_ref().map(|a| a.as_str().to_owned())
}

fn amr(claims: &CoreIdTokenClaims) -> Vec<String> {
    claims
        .auth_method_refs()
        .map(|v| v.iter().map(|m| m.as_str().to_owned()).collect())
        .unwrap_or_default()
}

/// Signs in through `rp` in `browser`, redeems the code and validates the ID token.
async fn signed_in_through(
    browser: &TestApp,
    rp: &oidc::Rp,
    extra: &[(&str, &str)],
    secret: Option<&str>,
) -> (Journey, CoreIdTokenClaims) {
    let auth = oidc::start(rp, &["email"], extra);
    let trip = journey(browser, &auth.url, secret).await;
    assert_eq!(trip.answer.get("state"), Some(auth.state.secret()));
    let tokens = oidc::redeem(rp, trip.code(), &auth.verifier).await.unwrap();
    let claims = oidc::verify_id_token(rp, &tokens, Some(&auth.nonce));
    (trip, claims)
}

async fn shop(app: &TestApp) -> oidc::Rp {
    let secret = register_client(app, NewClient::app("shop", "Helix Shop", CALLBACK)).await;
    oidc::rp(app, "shop", secret).await
}

async fn bank(app: &TestApp) -> oidc::Rp {
    let secret = register_client(
        app,
        NewClient {
            require_mfa: true,
            ..NewClient::app("bank", "Helix Bank", CALLBACK)
        },
    )
    .await;
    oidc::rp(app, "bank", secret).await
}

async fn an_application_that_requires_it_has_users_enrol_during_sign_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let rp = bank(&app).await;

    let (trip, claims) = signed_in_through(&app, &rp, &[], None).await;
    assert_eq!(trip.pages, ["/login", "/login/mfa-setup"], "{trip:?}");
    assert!(trip.enrolled.is_some());
    assert_eq!(amr(&claims), ["pwd", "otp"]);
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert!(mfa_on_for(&app).await, "she now has two-step sign-in");

    // The session has both steps: the next request needs no page at all.
    let (again, claims) = signed_in_through(&app, &rp, &[], None).await;
    assert!(again.pages.is_empty(), "{again:?}");
    assert_eq!(acr(&claims).as_deref(), Some("2"));
}

async fn id_tokens_tell_whether_a_code_was_entered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["acr_values_supported"], json!(["1", "2"]), "{doc}");
    app.create_user(EMAIL, PW, NAME).await;
    let rp = shop(&app).await;

    let browser = app.other_browser();
    let (trip, claims) = signed_in_through(&browser, &rp, &[], None).await;
    assert_eq!(trip.pages, ["/login"]);
    assert_eq!(amr(&claims), ["pwd"]);
    assert_eq!(acr(&claims).as_deref(), Some("1"));

    // She turns it on; the next sign-in asks for a code and says so.
    let (secret, _) = enrol_from_account(&browser).await;
    next_step(&app);
    let (trip, claims) = signed_in_through(&app.other_browser(), &rp, &[], Some(&secret)).await;
    assert_eq!(trip.pages, ["/login", "/login/otp"]);
    assert_eq!(amr(&claims), ["pwd", "otp"]);
    assert_eq!(acr(&claims).as_deref(), Some("2"));
}

async fn asking_for_acr_2_steps_a_password_session_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let rp = shop(&app).await;
    let (_, first) = signed_in_through(&app, &rp, &[], None).await;
    assert_eq!(acr(&first).as_deref(), Some("1"));

    // Without an authenticator, `acr_values=2` is a preference that cannot
    // be had: no enrolment is forced, the ID token says what was reached.
    app.clock.advance(Duration::seconds(10));
    let (trip, claims) = signed_in_through(&app, &rp, &[("acr_values", "2")], None).await;
    assert!(trip.pages.is_empty(), "no page, no set-up: {trip:?}");
    assert_eq!(acr(&claims).as_deref(), Some("1"));

    // With one (turned on from the account page, so the session has the
    // password alone), the same request steps the session up with a code.
    let (secret, _) = enrol_from_account(&app).await;
    next_step(&app);
    let (trip, claims) = signed_in_through(&app, &rp, &[("acr_values", "2")], Some(&secret)).await;
    assert_eq!(
        trip.pages,
        ["/login/otp"],
        "no password again, only the second step: {trip:?}"
    );
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert_eq!(amr(&claims), ["pwd", "otp"]);
    assert_eq!(claims.subject(), first.subject());

    // The session is now stepped up: asking silently for acr 2 works.
    let (silent, claims) =
        signed_in_through(&app, &rp, &[("acr_values", "2"), ("prompt", "none")], None).await;
    assert!(silent.pages.is_empty(), "{silent:?}");
    assert_eq!(acr(&claims).as_deref(), Some("2"));
}

async fn prompt_none_answers_interaction_required_when_a_code_is_needed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let shop = shop(&app).await;
    let bank = bank(&app).await;
    let (_, claims) = signed_in_through(&app, &shop, &[], None).await;
    assert_eq!(
        acr(&claims).as_deref(),
        Some("1"),
        "a password-only session"
    );

    for (rp, extra, what) in [(&bank, &[("prompt", "none")][..], "a client requiring it")] {
        let auth = oidc::start(rp, &[], extra);
        let trip = journey(&app, &auth.url, None).await;
        assert_eq!(
            trip.error(),
            Some("interaction_required"),
            "{what}: {:?}",
            trip.answer
        );
        assert!(trip.pages.is_empty(), "{what}: {trip:?}");
        assert_eq!(
            trip.answer.get("state"),
            Some(auth.state.secret()),
            "{what}"
        );
        assert!(!trip.answer.contains_key("code"), "{what}");
    }
    // The same session still answers silently where the password is enough,
    // and where `acr_values=2` only prefers more (she has no authenticator).
    let auth = oidc::start(&shop, &[], &[("prompt", "none")]);
    let trip = journey(&app, &auth.url, None).await;
    assert!(trip.answer.contains_key("code"), "{:?}", trip.answer);
    let (silent, claims) = signed_in_through(
        &app,
        &shop,
        &[("acr_values", "2"), ("prompt", "none")],
        None,
    )
    .await;
    assert!(silent.pages.is_empty(), "{silent:?}");
    assert_eq!(acr(&claims).as_deref(), Some("1"));
}

async fn when_required_for_everyone_a_plain_sign_in_enrols_first(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.mfa.required = true).await;
    app.create_user(EMAIL, PW, NAME).await;

    let answer = app.sign_in(EMAIL, PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let to = answer.location.clone().unwrap_or_default();
    assert_eq!(path_of(&to), "/login/mfa-setup");
    let account = app.page("/account").await;
    assert_eq!(
        account.location.as_deref(),
        Some("/login"),
        "no session before enrolling"
    );

    let setup = app.page(&to).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    assert!(setup.body.contains("<svg"), "a QR code");
    assert!(
        setup
            .link("Cancel")
            .is_some_and(|l| l.starts_with("/login")),
        "cancelling goes back to sign in: {:?}",
        setup.link("Cancel")
    );
    // Without mfa.issuer, authenticator apps show the issuer's host.
    let uri = otpauth_uri(&setup).expect("an otpauth:// URI");
    let parsed = url::Url::parse(&uri).unwrap();
    let issuer: Option<String> = parsed
        .query_pairs()
        .find(|(k, _)| k == "issuer")
        .map(|(_, v)| v.into_owned());
    assert_eq!(issuer.as_deref(), Some("127.0.0.1"), "{uri}");
    assert_eq!(
        decoded(parsed.path().trim_start_matches('/')),
        format!("127.0.0.1:{EMAIL}"),
        "{uri}"
    );

    let secret = secret_on(&setup);
    let done = app
        .submit_on(
            &setup,
            "/login/mfa-setup",
            &[("code", &code_now(&app, &secret))],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(recovery_codes_on(&done).len(), 10, "{}", done.text());
    let onward = continue_link(&done);
    assert_eq!(path_of(&onward), "/account");
    let account = app.page(&onward).await;
    assert_eq!(account.status, StatusCode::OK, "signed in now");
    assert!(account.contains(NAME));

    next_step(&app);
    let (browser, form) = password_step(&app).await;
    let signed_in = enter_code(&browser, &form, &code_now(&app, &secret)).await;
    assert_signed_in(&browser, &signed_in, "the next sign-in, with a code").await;
}

// ---------------------------------------------------------------- audit

async fn the_audit_trail_records_enrolment_and_failures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let (browser, form) = password_step(&app).await;
    let wrong = enter_code(&browser, &form, &wrong_code(&app, &jane.secret)).await;
    assert_code_refused(&browser, &wrong, "a wrong code").await;
    let malformed = enter_code(&browser, &form, "abc").await;
    assert_code_refused(&browser, &malformed, "letters").await;
    let code = code_now(&app, &jane.secret);
    let signed_in = enter_code(&browser, &form, &code).await;
    assert_signed_in(&browser, &signed_in, "the right code").await;
    let (browser, form) = password_step(&app).await;
    let replayed = enter_code(&browser, &form, &code).await;
    assert_code_refused(&browser, &replayed, "the same code again").await;

    let user = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse(EMAIL).unwrap())
        .await
        .unwrap()
        .unwrap();
    let events = app.state.store.audit_events(None, 200).await.unwrap();
    let enrolled = events
        .iter()
        .find(|e| e.event.kind == "mfa.enrolled")
        .unwrap_or_else(|| panic!("mfa.enrolled in {events:#?}"));
    assert_eq!(enrolled.event.user_id.as_ref(), Some(&user.id));
    let mut reasons: Vec<String> = events
        .iter()
        .filter(|e| e.event.kind == "mfa.failed")
        .inspect(|e| assert_eq!(e.event.user_id.as_ref(), Some(&user.id)))
        .filter_map(|e| e.event.detail["reason"].as_str().map(str::to_owned))
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["malformed", "replayed", "wrong"], "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.event.kind == "login.succeeded"
                && e.event.detail["amr"] == json!(["pwd", "otp"])),
        "login.succeeded with amr [pwd, otp] in {events:#?}"
    );
}

async fn a_session_from_before_turning_it_on_steps_up_with_a_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Jane's browser signed in with the password alone, then turned TOTP on.
    let jane = jane_with_totp(&app).await;
    let rp = shop(&app).await;
    let (plain, claims) = signed_in_through(&jane.browser, &rp, &[], None).await;
    assert!(plain.pages.is_empty(), "the live session serves: {plain:?}");
    assert_eq!(
        acr(&claims).as_deref(),
        Some("1"),
        "that session had no code"
    );

    let (trip, claims) = signed_in_through(
        &jane.browser,
        &rp,
        &[("acr_values", "2")],
        Some(&jane.secret),
    )
    .await;
    assert_eq!(
        trip.pages,
        ["/login/otp"],
        "her app's code, no password and no new enrolment: {trip:?}"
    );
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert_eq!(amr(&claims), ["pwd", "otp"]);
}

async fn secrets_are_sealed_at_rest_with_the_key_encryption_key(backend: Backend) {
    use base64::Engine;
    let kek = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let app = TestApp::spawn_with(backend, |c| {
        c.keys.encryption_key = Some(idp::config::Secret::new(kek));
    })
    .await;
    let jane = jane_with_totp(&app).await;
    let email = idp::domain::Email::parse(EMAIL).unwrap();
    let user = app
        .state
        .store
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    let stored = app
        .state
        .store
        .totp_credential(&user.id)
        .await
        .unwrap()
        .expect("a credential");
    assert!(stored.secret_encrypted);
    assert!(
        !stored.secret.contains(&jane.secret) && !stored.secret.contains(&jane.secret[..8]),
        "the key shown to Jane is not in the database: {}",
        stored.secret
    );
    // And it still works: the server opens it to check her codes.
    let (browser, form) = password_step(&app).await;
    let answer = enter_code(&browser, &form, &code_now(&app, &jane.secret)).await;
    assert_signed_in(&browser, &answer, "a code from the sealed secret").await;
}

/// Two nodes of one deployment share Postgres and Redis: a code accepted by
/// one is refused by the other in the same time step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_used_on_one_node_is_refused_on_another() {
    let node1 = TestApp::spawn(Backend::Postgres).await;
    let node2 = node1.spawn_beside(|_| {}).await;
    let jane = jane_with_totp(&node1).await;
    node2.clock.set(node1.clock_now());
    let code = code_now(&node1, &jane.secret);

    let (browser1, form1) = password_step(&node1).await;
    let answer = enter_code(&browser1, &form1, &code).await;
    assert_signed_in(&browser1, &answer, "the code on node 1").await;

    let (browser2, form2) = password_step(&node2).await;
    let replay = enter_code(&browser2, &form2, &code).await;
    assert_code_refused(&browser2, &replay, "the same code on node 2").await;
    assert!(
        replay.text().contains("already used"),
        "told why: {}",
        replay.text()
    );
}

async fn max_age_asks_for_the_password_and_a_code_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let rp = shop(&app).await;
    let browser = app.other_browser();
    let (first, claims) = signed_in_through(&browser, &rp, &[], Some(&jane.secret)).await;
    assert_eq!(first.pages, ["/login", "/login/otp"]);
    let first_auth = claims.auth_time().expect("auth_time");

    app.clock.advance(Duration::seconds(120));
    let (sso, _) = signed_in_through(&browser, &rp, &[], Some(&jane.secret)).await;
    assert!(sso.pages.is_empty(), "the session serves: {sso:?}");

    let (again, claims) =
        signed_in_through(&browser, &rp, &[("max_age", "60")], Some(&jane.secret)).await;
    assert_eq!(
        again.pages,
        ["/login", "/login/otp"],
        "a session older than max_age: both steps again"
    );
    assert!(claims.auth_time().expect("auth_time") > first_auth);
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert_eq!(amr(&claims), ["pwd", "otp"]);
}

/// `prompt=login` and `max_age=0` ask for both steps once: the sign-in the
/// second step (or an enrolment on the way) completes is the one made for
/// the request, and serves it.
async fn prompt_login_is_met_once_by_both_steps_or_an_enrolment(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let rp = shop(&app).await;
    let browser = app.other_browser();
    signed_in_through(&browser, &rp, &[], Some(&jane.secret)).await;
    for asked in [("prompt", "login"), ("max_age", "0")] {
        next_step(&app);
        let (again, claims) = signed_in_through(&browser, &rp, &[asked], Some(&jane.secret)).await;
        assert_eq!(again.pages, ["/login", "/login/otp"], "{asked:?}");
        assert_eq!(amr(&claims), ["pwd", "otp"]);
    }

    // Bob has no authenticator; the bank requires one: he enrols on the way.
    let bob = "bob@example.com";
    app.create_user(bob, PW, "Bob").await;
    let bank = bank(&app).await;
    let browser = app.other_browser();
    browser.sign_in(bob, PW).await;
    let auth = oidc::start(&bank, &["email"], &[("prompt", "login")]);
    let mut person = Person::new(bob).password(PW);
    let callback = format!("{CALLBACK}?");
    let arrived = person
        .walk(&browser, &auth.url, |u| u.starts_with(&callback))
        .await;
    assert_eq!(person.pages, ["/login", "/login/mfa-setup"]);
    let answer = oidc::query_of(&arrived);
    oidc::redeem(&bank, &answer["code"], &auth.verifier)
        .await
        .unwrap();
}

// ------------------------------------------------- acr (OIDC Core 3.1.2.1, 5.5.1.1)

/// An essential `acr` claim request (OIDC Core 5.5.1.1) for `values`.
fn essential_acr(values: &[&str]) -> String {
    json!({ "id_token": { "acr": { "essential": true, "values": values } } }).to_string()
}

async fn acr_values_1_2_signs_in_a_user_without_an_authenticator_with_acr_1(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let rp = shop(&app).await;
    // The discovery document's own list, in order of preference.
    for values in ["1 2", "2 1", "2"] {
        let browser = app.other_browser();
        let (trip, claims) =
            signed_in_through(&browser, &rp, &[("acr_values", values)], None).await;
        assert_eq!(trip.pages, ["/login"], "acr_values={values}: {trip:?}");
        assert!(trip.enrolled.is_none(), "acr_values={values}: no set-up");
        assert_eq!(acr(&claims).as_deref(), Some("1"), "acr_values={values}");
        assert_eq!(amr(&claims), ["pwd"], "acr_values={values}");
        assert!(!mfa_on_for(&browser).await, "nothing was turned on");
    }
}

async fn acr_values_are_a_preference_in_order_for_a_user_with_an_authenticator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Her session has the password alone; she turned TOTP on afterwards.
    let jane = jane_with_totp(&app).await;
    let rp = shop(&app).await;
    let (trip, claims) =
        signed_in_through(&jane.browser, &rp, &[("acr_values", "1 2")], None).await;
    assert!(trip.pages.is_empty(), "1 comes first and is met: {trip:?}");
    assert_eq!(acr(&claims).as_deref(), Some("1"));

    let (trip, claims) = signed_in_through(
        &jane.browser,
        &rp,
        &[("acr_values", "2 1")],
        Some(&jane.secret),
    )
    .await;
    assert_eq!(trip.pages, ["/login/otp"], "2 comes first: {trip:?}");
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert_eq!(amr(&claims), ["pwd", "otp"]);
}

async fn an_essential_acr_2_that_cannot_be_met_is_unmet_authentication_requirements(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let rp = shop(&app).await;
    let claims = essential_acr(&["2"]);
    let auth = oidc::start(&rp, &[], &[("claims", &claims)]);
    let trip = journey(&app, &auth.url, None).await;
    assert_eq!(
        trip.error(),
        Some("unmet_authentication_requirements"),
        "{:?}",
        trip.answer
    );
    assert_eq!(trip.answer.get("state"), Some(auth.state.secret()));
    assert!(!trip.answer.contains_key("code"));
    assert!(trip.enrolled.is_none(), "no set-up is forced: {trip:?}");
    assert!(!mfa_on_for(&app).await);

    // Essential 1 (or 1 or 2) is met by the password.
    let either = essential_acr(&["2", "1"]);
    let (_, id) = signed_in_through(&app, &rp, &[("claims", &either)], None).await;
    assert_eq!(acr(&id).as_deref(), Some("1"));
    // A class this provider does not know cannot be met at all.
    let unknown = essential_acr(&["urn:example:loa:4"]);
    let auth = oidc::start(&rp, &[], &[("claims", &unknown)]);
    let trip = journey(&app, &auth.url, None).await;
    assert_eq!(trip.error(), Some("unmet_authentication_requirements"));
    // A `claims` parameter that is not JSON is an invalid request.
    let auth = oidc::start(&rp, &[], &[("claims", "{not json")]);
    let trip = journey(&app, &auth.url, None).await;
    assert_eq!(trip.error(), Some("invalid_request"), "{:?}", trip.answer);
}

async fn an_essential_acr_2_asks_a_user_with_an_authenticator_for_the_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = jane_with_totp(&app).await;
    let rp = shop(&app).await;
    // Her session has the password only. A preference for 2 never fails a
    // silent request (OIDC Core 3.1.2.1): it answers with what the session
    // reached.
    let (silent, id) = signed_in_through(
        &jane.browser,
        &rp,
        &[("acr_values", "2"), ("prompt", "none")],
        None,
    )
    .await;
    assert!(silent.pages.is_empty(), "{silent:?}");
    assert_eq!(acr(&id).as_deref(), Some("1"));

    let claims = essential_acr(&["2"]);
    let (trip, id) = signed_in_through(
        &jane.browser,
        &rp,
        &[("claims", &claims)],
        Some(&jane.secret),
    )
    .await;
    assert_eq!(trip.pages, ["/login/otp"], "{trip:?}");
    assert_eq!(acr(&id).as_deref(), Some("2"));
    assert_eq!(amr(&id), ["pwd", "otp"]);

    // Essential 1, asked of the same session (now with the code): the ID
    // token's acr is one of the values asked for (5.5.1.1), not more.
    let one = essential_acr(&["1"]);
    let (trip, id) = signed_in_through(&jane.browser, &rp, &[("claims", &one)], None).await;
    assert!(trip.pages.is_empty(), "{trip:?}");
    assert_eq!(acr(&id).as_deref(), Some("1"));
    assert_eq!(amr(&id), ["pwd", "otp"]);
}

async fn a_client_that_requires_it_still_enrols_whatever_acr_values_say(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let rp = bank(&app).await;
    let (trip, claims) = signed_in_through(&app, &rp, &[("acr_values", "1")], None).await;
    assert_eq!(trip.pages, ["/login", "/login/mfa-setup"], "{trip:?}");
    assert!(trip.enrolled.is_some());
    assert_eq!(acr(&claims).as_deref(), Some("2"));
    assert_eq!(amr(&claims), ["pwd", "otp"]);
}
