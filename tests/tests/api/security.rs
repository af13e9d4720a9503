//! The attacks of the account-security issue, performed as an attacker
//! would: parallel bursts against every limit that is checked before it is
//! counted, links opened by a client without cookies (a mail gateway), and
//! a session cookie copied into another client (a stolen session). Each test
//! asserts what the attacker or the owner notices: who got in, how many
//! mails arrived, status codes, the audit trail.

use std::time::Duration as StdDuration;

use futures::future::join_all;
use reqwest::StatusCode;
use tests::browser::{MailApp, NewClient, Page, form_values, link_in, register_client};
use tests::totp;
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    a_burst_of_passwords_gets_no_more_checks_than_the_lockout_allows,
    a_burst_from_one_ip_gets_no_more_checks_than_its_limit,
    a_burst_of_codes_at_the_second_step_gets_no_more_checks_than_the_lockout_allows,
    codes_typed_from_a_session_are_limited_and_audited,
    opening_a_mailed_link_changes_nothing,
    registration_bursts_send_no_more_mail_than_the_limits,
    a_stolen_session_cannot_change_how_the_account_signs_in,
    a_burst_of_address_changes_sends_no_more_mail_than_the_limits,
);

const EMAIL: &str = "jane@example.com";
const PW: &str = "Correct-Horse-Battery-9";
const WRONG: &str = "wrong-password-123";

async fn kinds(app: &TestApp) -> Vec<String> {
    app.state
        .store
        .audit_events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect()
}

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

/// Mails to `to` whose subject contains `about`, once the outbox had time
/// to deliver what it holds.
async fn mails_about(app: &MailApp, to: &str, about: &str) -> usize {
    let count = || {
        app.mail_to(to)
            .iter()
            .filter(|m| m.subject().to_lowercase().contains(about))
            .count()
    };
    // Delivery is asynchronous: wait until nothing is left to send.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let all = app.state.store.list_mail(None, 1000).await.unwrap();
        let sent = all.iter().all(|m| m.status == idp::store::MailStatus::Sent);
        if sent || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    count()
}

/// A browser holding a fresh sign-in form, ready to post it.
async fn login_form(app: &TestApp) -> (TestApp, Page) {
    let browser = app.other_browser();
    let form = browser.page("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    (browser, form)
}

async fn a_burst_of_passwords_gets_no_more_checks_than_the_lockout_allows(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane").await;
    // 29 wrong passwords and the right one, each from its own browser, at once.
    let forms = join_all((0..30).map(|_| login_form(&app))).await;
    let answers = join_all(forms.iter().enumerate().map(|(i, (browser, form))| {
        let password = if i == 17 { PW } else { WRONG };
        async move {
            browser
                .submit_on(form, "/login", &[("email", EMAIL), ("password", password)])
                .await
        }
    }))
    .await;

    let kinds = kinds(&app).await;
    assert!(
        count(&kinds, "login.failed") <= 5,
        "at most 5 passwords checked: {} failures recorded",
        count(&kinds, "login.failed")
    );
    assert_eq!(count(&kinds, "account.locked"), 1, "{kinds:?}");
    // The account ends locked, and nobody is signed in to it.
    assert!(
        answers.iter().all(|a| a.status != StatusCode::SEE_OTHER),
        "a sign-in went through a burst that locked the account"
    );
    assert_eq!(
        app.other_browser().sign_in(EMAIL, PW).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        mails_about(&app, EMAIL, "paused").await,
        1,
        "one 'sign-in paused' mail per lock"
    );
}

async fn a_burst_from_one_ip_gets_no_more_checks_than_its_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.lockout.ip_max_failures = 6).await;
    // Thirty addresses, one wrong password each, from one IP, at once.
    let forms = join_all((0..30).map(|_| login_form(&app))).await;
    let answers = join_all(forms.iter().enumerate().map(|(i, (browser, form))| {
        let email = format!("user{i}@example.com");
        async move {
            browser
                .submit_on(form, "/login", &[("email", &email), ("password", WRONG)])
                .await
        }
    }))
    .await;
    let kinds = kinds(&app).await;
    assert!(
        count(&kinds, "login.failed") <= 6,
        "{} passwords checked from one IP",
        count(&kinds, "login.failed")
    );
    assert!(
        answers
            .iter()
            .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
            .count()
            >= 24
    );
}

/// Jane with an authenticator app (set up from the account page); returns
/// its key and the browser, still signed in, in which she set it up.
async fn jane_with_totp(app: &TestApp) -> (String, TestApp) {
    app.create_user(EMAIL, PW, "Jane").await;
    let browser = app.other_browser();
    browser.signed_in(EMAIL, PW).await;
    let setup = browser.page("/account/mfa/setup").await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    let secret = setup.manual_key_compact().expect("the key");
    let code = totp::code_at(&secret, app.clock_now());
    let done = browser
        .submit_on(&setup, "/account/mfa/setup", &[("code", &code)])
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    app.clock.advance(Duration::seconds(totp::STEP_SECS));
    (secret, browser)
}

/// Six digits no nearby step gives.
fn wrong_code(app: &TestApp, secret: &str) -> String {
    let near: Vec<String> = (-2..=2)
        .map(|s| totp::code_steps_from(secret, app.clock_now(), s))
        .collect();
    (0..)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn a_burst_of_codes_at_the_second_step_gets_no_more_checks_than_the_lockout_allows(
    backend: Backend,
) {
    let app = MailApp::spawn(backend).await;
    let (secret, _) = jane_with_totp(&app).await;
    // Past the password once, then thirty codes from that browser at once.
    let browser = app.other_browser();
    let answer = browser.sign_in(EMAIL, PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let form = browser.page("/login/otp").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    let wrong = wrong_code(&app, &secret);
    let answers = join_all((0..30).map(|_| async {
        browser
            .submit_on(&form, "/login/otp", &[("code", wrong.as_str())])
            .await
    }))
    .await;
    let kinds = kinds(&app).await;
    assert!(
        count(&kinds, "mfa.failed") <= 5,
        "{} codes checked",
        count(&kinds, "mfa.failed")
    );
    assert_eq!(count(&kinds, "account.locked"), 1, "{kinds:?}");
    assert!(answers.iter().any(|a| a.status == StatusCode::FORBIDDEN));
    assert_eq!(mails_about(&app, EMAIL, "paused").await, 1);
}

async fn codes_typed_from_a_session_are_limited_and_audited(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let (secret, session) = jane_with_totp(&app).await;
    // Whoever holds Jane's session tries codes for new recovery codes, all at once.
    let thief = session;
    let page = thief.page("/account/mfa").await;
    let wrong = wrong_code(&app, &secret);
    let answers = join_all((0..30).map(|_| async {
        thief
            .submit_on(
                &page,
                "/account/mfa/recovery-codes",
                &[("code", wrong.as_str())],
            )
            .await
    }))
    .await;
    assert!(
        answers
            .iter()
            .all(|a| a.status == StatusCode::UNPROCESSABLE_ENTITY)
    );
    // Even the right code is not checked now: no new recovery codes.
    let right = totp::code_at(&secret, app.clock_now());
    let late = thief
        .submit_on(&page, "/account/mfa/recovery-codes", &[("code", &right)])
        .await;
    assert_eq!(
        late.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        late.text()
    );
    assert!(late.contains("Too many codes"), "{}", late.text());
    // Turning it off is limited by the same allowance.
    let off = thief
        .submit_on(
            &page,
            "/account/mfa/disable",
            &[("password", PW), ("code", &right)],
        )
        .await;
    assert_eq!(
        off.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        off.text()
    );
    let kinds = kinds(&app).await;
    assert_eq!(
        count(&kinds, "mfa.recovery_codes_failed"),
        31,
        "every try audited: {kinds:?}"
    );
    assert_eq!(count(&kinds, "mfa.recovery_codes_regenerated"), 0);
    assert_eq!(count(&kinds, "mfa.disabled"), 0);
    assert_eq!(mails_about(&app, EMAIL, "recovery codes").await, 0);

    // Confirming a new authenticator: the same, in another account.
    app.create_user("ada@example.com", PW, "Ada").await;
    let ada = app.other_browser();
    ada.signed_in("ada@example.com", PW).await;
    let setup = ada.page("/account/mfa/setup").await;
    let key = setup.manual_key_compact().expect("the key");
    let wrong = wrong_code(&app, &key);
    join_all((0..20).map(|_| async {
        ada.submit_on(&setup, "/account/mfa/setup", &[("code", wrong.as_str())])
            .await
    }))
    .await;
    let right = totp::code_at(&key, app.clock_now());
    let late = ada
        .submit_on(&setup, "/account/mfa/setup", &[("code", &right)])
        .await;
    assert_eq!(
        late.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        late.text()
    );
    let kinds = self::kinds(&app).await;
    assert_eq!(count(&kinds, "mfa.enrol_failed"), 21, "{kinds:?}");
}

async fn register(app: &TestApp, name: &str, email: &str) -> Page {
    app.submit(
        "/register",
        "/register",
        &[
            ("name", name),
            ("email", email),
            ("password", PW),
            ("password_confirm", PW),
        ],
    )
    .await
}

/// A mail gateway: no cookies, opens every link.
fn scanner() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn opening_a_mailed_link_changes_nothing(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    // The attacker registers the victim's address with their own password.
    register(&app.other_browser(), "Mallory", "victim@example.com").await;
    let link = link_in(
        &app.wait_for_mail_to("victim@example.com", 1).await,
        "/verify-email",
    );
    let opened = scanner().get(app.url(&link)).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let email = idp::domain::Email::parse("victim@example.com").unwrap();
    let user = app
        .state
        .store
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    assert!(!user.email_verified, "a GET verified the address");
    assert_eq!(count(&kinds(&app).await, "email.verified"), 0);

    // The owner of the mailbox presses the button: now it is verified.
    let page = app.page(&link).await;
    let (action, _) = page.button_form("Confirm my address").expect("a button");
    let done = app.submit_on(&page, &action, &[]).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let user = app.state.store.user_by_id(&user.id).await.unwrap().unwrap();
    assert!(user.email_verified);

    // The reset link: opening it leaves it usable.
    app.create_user(EMAIL, PW, "Jane").await;
    app.submit("/forgot-password", "/forgot-password", &[("email", EMAIL)])
        .await;
    let reset = link_in(&app.wait_for_mail_to(EMAIL, 1).await, "/reset-password");
    for _ in 0..2 {
        let opened = scanner().get(app.url(&reset)).send().await.unwrap();
        assert_eq!(opened.status(), StatusCode::OK);
    }
    let form = app.page(&reset).await;
    assert!(
        form.hidden_fields("/reset-password")
            .iter()
            .any(|(k, _)| k == "token")
    );

    // The change-of-address link: opening it changes nothing.
    let jane = app.other_browser();
    jane.signed_in(EMAIL, PW).await;
    jane.submit(
        "/account/profile",
        "/account/email",
        &[("new_email", "jane.new@example.com"), ("password", PW)],
    )
    .await;
    let change = link_in(
        &app.wait_for_mail_to("jane.new@example.com", 1).await,
        "/account/email/confirm",
    );
    let opened = scanner().get(app.url(&change)).send().await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    let still = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse(EMAIL).unwrap())
        .await
        .unwrap();
    assert!(still.is_some(), "a GET changed the address");
}

async fn registration_bursts_send_no_more_mail_than_the_limits(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| {
        c.server.trusted_proxy_hops = 1;
    })
    .await;
    app.create_user(EMAIL, PW, "Jane").await;
    let from = |ip: String, email: &'static str, name: &'static str| {
        let app = app.other_browser();
        async move {
            let form = app.page("/register").await;
            let values = form_values(
                &form,
                "/register",
                &[
                    ("name", name),
                    ("email", email),
                    ("password", PW),
                    ("password_confirm", PW),
                ],
            );
            let response = app
                .http
                .post(app.url("/register"))
                .header("x-forwarded-for", ip)
                .form(&values)
                .send()
                .await
                .unwrap();
            Page::from(response).await
        }
    };
    // Twenty registrations of Jane's address at once, from twenty IPs, and
    // twenty of a stranger's address carrying the attacker's text.
    let at_jane = join_all((0..20).map(|i| from(format!("203.0.113.{i}"), EMAIL, "Mallory"))).await;
    let at_stranger = join_all((0..20).map(|i| {
        from(
            format!("198.51.100.{i}"),
            "stranger@example.com",
            "Buy pills at evil.example",
        )
    }))
    .await;
    // Everyone got the same neutral answer.
    for answer in at_jane.iter().chain(&at_stranger) {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert!(answer.contains("Check your email"), "{}", answer.text());
    }
    // Twenty-five addresses from one IP.
    let one_ip = join_all((0..25).map(|i| {
        let email: &'static str = Box::leak(format!("user{i}@example.com").into_boxed_str());
        from("192.0.2.1".into(), email, "Someone")
    }))
    .await;
    assert!(one_ip.iter().all(|a| a.status == StatusCode::OK));

    // Wait for the background work of all 65 requests.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let k = kinds(&app).await;
        let done = count(&k, "registration.throttled")
            + count(&k, "registration.duplicate")
            + count(&k, "registration.created");
        if done >= 65 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(mails_about(&app, EMAIL, "already have an account").await, 3);
    assert_eq!(
        mails_about(&app, "stranger@example.com", "confirm").await,
        1
    );
    let to_users: usize = (0..25)
        .map(|i| app.mail_to(&format!("user{i}@example.com")).len())
        .sum();
    assert_eq!(to_users, 20, "per-IP limit");
}

/// A client holding nothing but a copy of `session`'s cookie.
fn thief_with(app: &TestApp, session: &str) -> reqwest::Client {
    let name = idp::web::session::cookie_name(app.state.config.server.dev_mode);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        format!("{name}={session}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn a_stolen_session_cannot_change_how_the_account_signs_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_client(&app, NewClient::portal("helix-portal", "helix")).await;
    app.create_user(EMAIL, PW, "Jane").await;
    let owner = app.other_browser();
    let session = owner.signed_in(EMAIL, PW).await;
    // Ten minutes later, someone has a copy of the cookie.
    app.clock.advance(Duration::minutes(10));
    let thief = thief_with(&app, &session);
    let setup = thief
        .get(app.url("/account/mfa/setup?client_id=helix-portal"))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), StatusCode::SEE_OTHER);
    let to = setup.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/account/reauth?"), "{to}");
    assert!(to.contains("client_id=helix-portal"), "{to}");
    let asked = Page::from(thief.get(app.url(&to)).send().await.unwrap()).await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.contains("Confirm it's you"), "{}", asked.text());
    assert!(asked.body.contains("/static/helix/"), "the portal's theme");
    // Posting the set-up form directly, with a valid CSRF token the thief's
    // own page view gave them, does not help either.
    let csrf_cookie = asked
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("csrf"))
        .and_then(|c| c.split(';').next())
        .expect("the page sets a CSRF cookie")
        .to_owned();
    let session_cookie = format!(
        "{}={session}",
        idp::web::session::cookie_name(app.state.config.server.dev_mode)
    );
    let direct = thief
        .post(app.url("/account/mfa/setup"))
        .header(
            reqwest::header::COOKIE,
            format!("{session_cookie}; {csrf_cookie}"),
        )
        .form(&[
            ("code", "123456"),
            ("csrf_token", asked.input("csrf_token").unwrap().as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::SEE_OTHER);
    assert!(
        direct.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/account/reauth"),
        "a stale session is sent to confirm first"
    );
    // Nor does a relying party that requires two-step sign-in, which would
    // set up an authenticator during sign-in: the password is asked first.
    // (`acr_values=2` is a preference and never sets one up: OIDC Core 3.1.2.1.)
    register_client(
        &app,
        NewClient {
            require_mfa: true,
            ..NewClient::portal("helix-bank", "helix")
        },
    )
    .await;
    let step_up = thief
        .get(app.url(
            "/authorize?response_type=code&client_id=helix-bank&redirect_uri=https%3A%2F%2Fportal.example.com%2Fcb&scope=openid&acr_values=2",
        ))
        .send()
        .await
        .unwrap();
    let to_login = step_up.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to_login.starts_with("/login?req="),
        "a stale session went to {to_login}"
    );
    assert_eq!(count(&kinds(&app).await, "mfa.enrolled"), 0);

    // The owner, who knows the password, confirms and is back on the set-up page.
    let page = owner.page(&to).await;
    let wrong = owner
        .submit_on(&page, "/account/reauth", &[("password", WRONG)])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let back = owner
        .submit_on(&page, "/account/reauth", &[("password", PW)])
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text());
    let back_to = back.location.clone().unwrap();
    assert_eq!(back_to, "/account/mfa/setup?client_id=helix-portal");
    let setup = owner.page(&back_to).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    let key = setup.manual_key_compact().expect("the key");
    let done = owner
        .submit_on(
            &setup,
            "/account/mfa/setup",
            &[("code", &totp::code_at(&key, app.clock_now()))],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let kinds = kinds(&app).await;
    assert_eq!(count(&kinds, "reauth.succeeded"), 1, "{kinds:?}");
    assert_eq!(count(&kinds, "mfa.enrolled"), 1);

    // Later again, new recovery codes and turning it off need a fresh proof too.
    app.clock.advance(Duration::minutes(10));
    let code = totp::code_at(&key, app.clock_now());
    for action in ["/account/mfa/recovery-codes", "/account/mfa/disable"] {
        let mfa = owner.page("/account/mfa").await;
        let answer = owner
            .submit_on(&mfa, action, &[("code", &code), ("password", PW)])
            .await;
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{action}: {}",
            answer.text()
        );
        assert!(
            answer.location.unwrap().starts_with("/account/reauth"),
            "{action}"
        );
    }
    // An account's code also confirms (what a passwordless account would use).
    let page = owner.page("/account/reauth").await;
    let back = owner
        .submit_on(&page, "/account/reauth", &[("code", &code)])
        .await;
    assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text());
}

/// Whoever holds a session asks for the same new address twenty times at
/// once, with the right password: the account's allowance of address
/// changes per hour (five) is counted before anything else, so fifteen are
/// refused; of the five, only the per-address mail limit (three) sends a
/// link, and the other two get the same "we sent a link" answer.
async fn a_burst_of_address_changes_sends_no_more_mail_than_the_limits(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane").await;
    app.signed_in(EMAIL, PW).await;
    let page = app.page("/account/profile").await;
    let to = "new-jane@example.com";
    let answers = join_all((0..20).map(|_| async {
        app.submit_on(
            &page,
            "/account/email",
            &[("new_email", to), ("password", PW)],
        )
        .await
    }))
    .await;
    let sent = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK && a.contains("We sent a link"))
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS && a.contains("several times"))
        .count();
    assert_eq!(
        (sent, refused),
        (5, 15),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    // The links go out after the answer: wait for the five accepted requests.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let k = kinds(&app).await;
        let done = count(&k, "email_change.requested") + count(&k, "email_change.throttled");
        if done >= 5 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(mails_about(&app, to, "confirm").await, 3);
    let kinds = kinds(&app).await;
    assert_eq!(count(&kinds, "email_change.requested"), 3, "{kinds:?}");
    assert_eq!(count(&kinds, "email_change.throttled"), 2, "{kinds:?}");
}
