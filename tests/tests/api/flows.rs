//! The account flows of the three portals, end to end over HTTP, with mail
//! received by a real SMTP server and time moved by the test clock.

use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use tests::browser::{MailApp, NewClient, Page, link_in, register_client};
use time::Duration;

use crate::Backend;

on_both_backends!(
    registration_sends_a_link_that_confirms_the_address,
    registering_a_taken_address_reveals_nothing_and_tells_the_owner,
    registration_explains_blocked_domains_and_every_broken_rule,
    forgot_password_answers_the_same_for_unknown_addresses,
    reset_link_opens_a_form_and_works_once,
    reset_link_expires_after_60_minutes,
    hosting_portal_links_last_two_hours,
    a_reset_voids_other_links_ends_sessions_and_clears_the_lock,
    reset_requests_are_rate_limited_per_address,
    changing_the_password_needs_the_current_one_and_ends_other_sessions,
    guessing_the_current_password_from_a_session_is_limited,
    reset_mail_survives_an_smtp_outage,
    the_owner_is_mailed_when_the_account_locks,
    each_portal_signs_in_wearing_its_own_theme,
    the_hosting_portal_asks_for_a_captcha,
);

const PW: &str = "Correct-Horse-Battery-9";
const NEW_PW: &str = "Brand-New-Staple-42!";

async fn register(app: &MailApp, path: &str, name: &str, email: &str, password: &str) -> Page {
    app.submit(
        path,
        "/register",
        &[
            ("name", name),
            ("email", email),
            ("password", password),
            ("password_confirm", password),
        ],
    )
    .await
}

async fn registration_sends_a_link_that_confirms_the_address(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let answer = register(&app, "/register", "Ada Lovelace", "ada@example.com", PW).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(answer.contains("ada@example.com"), "{}", answer.text());

    let mail = app.wait_for_mail_to("ada@example.com", 1).await;
    let link = link_in(&mail, "/verify-email");
    let user = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .expect("the account exists");
    assert!(!user.email_verified);
    assert_eq!(user.name, "Ada Lovelace");

    let tampered = format!("{}x", &link[..link.len() - 1]);
    assert_eq!(app.page(&tampered).await.status, StatusCode::BAD_REQUEST);
    // Opening the link asks; the button confirms (mail scanners open links).
    let asked = app.page(&link).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    let unchanged = app.state.store.user_by_id(&user.id).await.unwrap().unwrap();
    assert!(
        !unchanged.email_verified,
        "opening the link changes nothing"
    );
    let (action, _) = asked.button_form("Confirm my address").expect("a button");
    let confirmed = app.submit_on(&asked, &action, &[]).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.text());
    let user = app.state.store.user_by_id(&user.id).await.unwrap().unwrap();
    assert!(user.email_verified);
    // Opened again (a bookmark, a second click): still reads as confirmed.
    assert_eq!(app.page(&link).await.status, StatusCode::OK);
    // An expired link is refused.
    let kinds: Vec<_> = app
        .state
        .store
        .audit_events(Some(&user.id), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert!(
        kinds.contains(&"registration.created".into()) && kinds.contains(&"email.verified".into()),
        "{kinds:?}"
    );
    assert_eq!(
        app.sign_in("ada@example.com", PW).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn registering_a_taken_address_reveals_nothing_and_tells_the_owner(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let owner = app.create_user("jane@example.com", PW, "Jane").await;
    let fresh = register(&app, "/register", "Somebody", "fresh@example.com", NEW_PW).await;
    let taken = register(&app, "/register", "Somebody", "JANE@example.com", NEW_PW).await;
    assert_eq!(fresh.status, taken.status);
    let normalise = |p: &Page| {
        p.text()
            .replace("fresh@example.com", "E")
            .replace("JANE@example.com", "E")
            .replace("jane@example.com", "E")
    };
    assert_eq!(normalise(&fresh), normalise(&taken));

    let notice = app.wait_for_mail_to("jane@example.com", 1).await;
    assert!(
        notice.text_body().contains("/forgot-password"),
        "{}",
        notice.text_body()
    );
    app.wait_for_mail_to("fresh@example.com", 1).await;
    assert_eq!(
        app.state.store.list_users(10, 0).await.unwrap().len(),
        2,
        "no second account for jane"
    );
    // Her password is untouched.
    let still = app
        .state
        .store
        .user_by_id(&owner.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.password_hash, owner.password_hash);
}

async fn registration_explains_blocked_domains_and_every_broken_rule(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| {
        c.account.blocked_email_domains = vec!["blocked.example".into()];
        // Seed 002: at least 8, one upper, one digit, one special, nothing easy, not your name.
        c.password_policy.require_uppercase = true;
        c.password_policy.require_digit = true;
        c.password_policy.require_symbol = true;
    })
    .await;
    let form = app.page("/register").await;
    assert!(
        form.contains("blocked.example"),
        "the list of domains we cannot reach is shown"
    );
    assert!(
        form.contains("uppercase"),
        "the rules are shown up front: {}",
        form.text()
    );

    let blocked = register(
        &app,
        "/register",
        "Bob",
        "bob@blocked.example",
        "Xy7#qwerty-long-enough",
    )
    .await;
    assert_eq!(blocked.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        blocked.field_errors("email").contains("blocked.example"),
        "{}",
        blocked.text()
    );

    let weak = app
        .submit(
            "/register",
            "/register",
            &[
                ("name", "Bob Stone"),
                ("email", "bob@example.com"),
                ("password", "password123"),
                ("password_confirm", "password123"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::UNPROCESSABLE_ENTITY);
    let errors = weak.field_errors("password");
    for rule in ["uppercase", "symbol", "guess"] {
        assert!(
            errors.to_lowercase().contains(rule),
            "no {rule:?} message in {errors:?}"
        );
    }
    let named = app
        .submit(
            "/register",
            "/register",
            &[
                ("name", "Bob Stone"),
                ("email", "bob@example.com"),
                ("password", "Stone#2024xyzQ"),
                ("password_confirm", "Stone#2024xyzQ"),
            ],
        )
        .await;
    assert!(
        named
            .field_errors("password")
            .to_lowercase()
            .contains("name"),
        "{}",
        named.field_errors("password")
    );
    let mismatch = app
        .submit(
            "/register",
            "/register",
            &[
                ("name", "Bob"),
                ("email", "bob@example.com"),
                ("password", NEW_PW),
                ("password_confirm", "something-else"),
            ],
        )
        .await;
    assert!(!mismatch.field_errors("password_confirm").is_empty());
    assert_eq!(
        mismatch.input("email").as_deref(),
        Some("bob@example.com"),
        "typed values are kept"
    );

    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(
        app.state.store.list_users(10, 0).await.unwrap().is_empty(),
        "nothing was created"
    );
    assert!(app.sink.messages().is_empty());
}

async fn forgot(app: &MailApp, path: &str, email: &str) -> Page {
    app.submit(path, "/forgot-password", &[("email", email)])
        .await
}

async fn forgot_password_answers_the_same_for_unknown_addresses(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let unknown = forgot(&app, "/forgot-password", "nobody@example.com").await;
    let known = forgot(&app, "/forgot-password", "jane@example.com").await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.status, known.status);
    assert_eq!(unknown.text(), known.text());
    assert!(
        known.contains("If that email matches an account"),
        "{}",
        known.text()
    );
    assert!(
        known.contains("1 hour") || known.contains("60 minutes"),
        "{}",
        known.text()
    );
    let mail = app.wait_for_mail_to("jane@example.com", 1).await;
    let body = mail.text_body();
    assert!(
        body.contains("1 hour") || body.contains("60 minutes"),
        "{body}"
    );
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert!(app.mail_to("nobody@example.com").is_empty());
}

async fn reset_link_opens_a_form_and_works_once(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let user = app.create_user("jane@example.com", PW, "Jane").await;
    forgot(&app, "/forgot-password", "jane@example.com").await;
    let mail = app.wait_for_mail_to("jane@example.com", 1).await;
    let link = link_in(&mail, "/reset-password");
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let hashed = app
        .state
        .store
        .password_reset_user(&idp::crypto::sha256_hex(&token), app.clock_now())
        .await
        .unwrap();
    assert_eq!(
        hashed.map(|u| u.id),
        Some(user.id.clone()),
        "only the hash is stored, and it finds the user"
    );

    // Opening the link (twice: a scanner, then the person) does not use it.
    assert_eq!(app.page(&link).await.status, StatusCode::OK);
    let form = app.page(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    let weak = app
        .submit_on(
            &form,
            "/reset-password",
            &[("password", "short"), ("password_confirm", "short")],
        )
        .await;
    assert_eq!(
        weak.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a refused password does not use the link"
    );
    let done = app
        .submit(
            &link,
            "/reset-password",
            &[("password", NEW_PW), ("password_confirm", NEW_PW)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());

    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", NEW_PW)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let again = app.page(&link).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(
        again
            .link("")
            .is_some_and(|_| again.body.contains("/forgot-password")),
        "offers a new link"
    );
    let replay = app
        .submit_on(
            &form,
            "/reset-password",
            &[
                ("password", "Another-Pass-77!"),
                ("password_confirm", "Another-Pass-77!"),
            ],
        )
        .await;
    assert_eq!(replay.status, StatusCode::GONE);

    let changed = app.wait_for_mail_to("jane@example.com", 2).await;
    assert_ne!(
        changed.subject(),
        mail.subject(),
        "a 'password changed' notice"
    );
    let kinds: Vec<_> = app
        .state
        .store
        .audit_events(Some(&user.id), 20)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event.kind)
        .collect();
    assert!(
        kinds.contains(&"password_reset.requested".into())
            && kinds.contains(&"password_reset.completed".into()),
        "{kinds:?}"
    );
}

async fn reset_link_expires_after_60_minutes(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    forgot(&app, "/forgot-password", "jane@example.com").await;
    let link = link_in(
        &app.wait_for_mail_to("jane@example.com", 1).await,
        "/reset-password",
    );
    app.clock.advance(Duration::minutes(59));
    let form = app.page(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(2));
    let expired = app.page(&link).await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(
        expired.body.contains("/forgot-password"),
        "asks for a new link"
    );
    let late = app
        .submit_on(
            &form,
            "/reset-password",
            &[("password", NEW_PW), ("password_confirm", NEW_PW)],
        )
        .await;
    assert_eq!(late.status, StatusCode::GONE);
    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status,
        StatusCode::SEE_OTHER,
        "unchanged"
    );
}

/// Seed 001's 2 hours are the hosting portal's promise to its customers:
/// they get it when forgot-password is part of its flow (the server's
/// record), not when a link merely names the portal (see portal_rules.rs).
async fn hosting_portal_links_last_two_hours(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    register_client(&app, NewClient::portal("hosting-portal", "hosting")).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let start = app
        .page(
            "/authorize?response_type=code&client_id=hosting-portal&redirect_uri=https%3A%2F%2Fportal.example.com%2Fcb&scope=openid&state=s1&nonce=n1",
        )
        .await;
    let login = app.page(start.location.as_deref().unwrap()).await;
    let forgot_link = login.link("Forgot?").expect("the hosting portal's link");
    let sent = forgot(&app, &forgot_link, "jane@example.com").await;
    assert!(
        sent.contains("2 hours") || sent.contains("120 minutes"),
        "{}",
        sent.text()
    );
    let mail = app.wait_for_mail_to("jane@example.com", 1).await;
    let link = link_in(&mail, "/reset-password");
    assert!(
        link.contains("client_id=hosting-portal"),
        "the flow keeps its portal: {link}"
    );
    app.clock.advance(Duration::minutes(119));
    assert_eq!(app.page(&link).await.status, StatusCode::OK);
    app.clock.advance(Duration::minutes(2));
    assert_eq!(app.page(&link).await.status, StatusCode::GONE);
}

async fn a_reset_voids_other_links_ends_sessions_and_clears_the_lock(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let user = app.create_user("jane@example.com", PW, "Jane").await;
    let elsewhere = app.other_browser();
    assert_eq!(
        elsewhere.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(elsewhere.page("/account").await.status, StatusCode::OK);

    forgot(&app, "/forgot-password", "jane@example.com").await;
    forgot(&app, "/forgot-password", "jane@example.com").await;
    let first = link_in(
        &app.wait_for_mail_to("jane@example.com", 1).await,
        "/reset-password",
    );
    let second = link_in(
        &app.wait_for_mail_to("jane@example.com", 2).await,
        "/reset-password",
    );
    for _ in 0..5 {
        app.sign_in("jane@example.com", "wrong-password-1").await;
    }
    assert!(
        app.state
            .store
            .user_by_id(&user.id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_some()
    );

    let done = app
        .submit(
            &first,
            "/reset-password",
            &[("password", NEW_PW), ("password_confirm", NEW_PW)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(
        app.page(&second).await.status,
        StatusCode::GONE,
        "the other link is void"
    );
    assert_eq!(
        elsewhere.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "the other session ended"
    );
    assert!(
        app.state
            .store
            .user_by_id(&user.id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_none()
    );
    assert_eq!(
        app.sign_in("jane@example.com", NEW_PW).await.status,
        StatusCode::SEE_OTHER,
        "lock cleared"
    );
}

async fn reset_requests_are_rate_limited_per_address(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    for _ in 0..7 {
        let page = forgot(&app, "/forgot-password", "jane@example.com").await;
        assert_eq!(page.status, StatusCode::OK, "the answer never changes");
    }
    app.wait_for_mail_to("jane@example.com", 5).await;
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    assert_eq!(app.mail_to("jane@example.com").len(), 5, "5 per hour");
    app.clock.advance(Duration::minutes(61));
    forgot(&app, "/forgot-password", "jane@example.com").await;
    app.wait_for_mail_to("jane@example.com", 6).await;
}

async fn changing_the_password_needs_the_current_one_and_ends_other_sessions(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let elsewhere = app.other_browser();
    elsewhere.sign_in("jane@example.com", PW).await;
    app.sign_in("jane@example.com", PW).await;

    let form = app.page("/account/password").await;
    assert_eq!(form.status, StatusCode::OK);
    let boxes = form
        .html()
        .select(&scraper::Selector::parse("input[type=password]").unwrap())
        .count();
    assert_eq!(boxes, 3, "current password and the new one twice");

    let wrong = app
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", "not-it"),
                ("password", NEW_PW),
                ("password_confirm", NEW_PW),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !wrong.field_errors("current_password").is_empty(),
        "{}",
        wrong.text()
    );
    let mismatch = app
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PW),
                ("password", NEW_PW),
                ("password_confirm", "Other-One-42!"),
            ],
        )
        .await;
    assert!(!mismatch.field_errors("password_confirm").is_empty());

    let done = app
        .submit(
            "/account/password",
            "/account/password",
            &[
                ("current_password", PW),
                ("password", NEW_PW),
                ("password_confirm", NEW_PW),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let status = done
        .html()
        .select(&scraper::Selector::parse("[role=status]").unwrap())
        .map(|e| e.text().collect::<String>())
        .collect::<String>();
    assert!(
        status.contains("password was changed"),
        "a confirmation: {}",
        done.text()
    );

    assert_eq!(
        app.page("/account").await.status,
        StatusCode::OK,
        "this session goes on"
    );
    assert_eq!(
        elsewhere.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "the other one ended"
    );
    let notice = app.wait_for_mail_to("jane@example.com", 1).await;
    assert!(
        notice.text_body().contains("/forgot-password"),
        "{}",
        notice.text_body()
    );
    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", NEW_PW)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

async fn reset_mail_survives_an_smtp_outage(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let people = ["a@example.com", "b@example.com", "c@example.com"];
    for p in people {
        app.create_user(p, PW, "Someone").await;
    }
    app.sink.stop().await;
    for p in people {
        forgot(&app, "/forgot-password", p).await;
    }
    // Every message was tried and is still waiting.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(10);
    loop {
        let pending = app
            .state
            .store
            .list_mail(Some(idp::store::MailStatus::Pending), 10)
            .await
            .unwrap();
        if pending.len() == 3 && pending.iter().all(|m| m.attempts >= 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "messages not attempted: {pending:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(app.sink.messages().is_empty());
    app.sink.restart().await;
    app.clock.advance(Duration::minutes(5));
    app.sink.wait_for(3, StdDuration::from_secs(10)).await;
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let received = app.sink.messages();
    assert_eq!(received.len(), 3, "each exactly once");
    for p in people {
        assert_eq!(app.mail_to(p).len(), 1, "{p}");
    }
}

async fn the_owner_is_mailed_when_the_account_locks(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    for _ in 0..5 {
        app.sign_in("jane@example.com", "wrong-password-1").await;
    }
    let mail = app.wait_for_mail_to("jane@example.com", 1).await;
    assert!(
        mail.text_body().contains("/forgot-password"),
        "{}",
        mail.text_body()
    );
    // Unknown addresses lock too, but nobody is mailed.
    for _ in 0..5 {
        app.sign_in("ghost@example.com", "wrong-password-1").await;
    }
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert!(app.mail_to("ghost@example.com").is_empty());
}

async fn each_portal_signs_in_wearing_its_own_theme(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let default = app.page("/login").await;
    let mut seen = vec![default.body.clone()];
    for (client, theme) in [
        ("helix-support", "helix"),
        ("hosting-portal", "hosting"),
        ("customer-portal", "customer"),
    ] {
        register_client(&app, NewClient::portal(client, theme)).await;
        let page = app.page(&format!("/login?client_id={client}")).await;
        assert_eq!(page.status, StatusCode::OK);
        let css = page
            .html()
            .select(&scraper::Selector::parse("link[rel=stylesheet]").unwrap())
            .filter_map(|l| l.value().attr("href").map(str::to_owned))
            .collect::<Vec<_>>();
        assert!(
            css.iter()
                .all(|h| h.starts_with(&format!("/static/{theme}/"))),
            "{css:?}"
        );
        for href in &css {
            let r = app.get(href).await;
            assert_eq!(r.status(), StatusCode::OK, "{href}");
            assert!(
                r.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("immutable")
            );
        }
        // Links between flow pages carry the portal along (each portal's
        // help page names its own forgot-password link).
        let forgot = &app.state.themes.get(Some(theme)).labels["forgot_password_link"];
        assert!(page.link(forgot).unwrap().contains(client));
        assert!(page.link("Create an account").unwrap().contains(client));
        assert!(!seen.contains(&page.body));
        seen.push(page.body);
    }
    let unknown = app.page("/login?client_id=nope").await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(
        unknown.link("Forgot password?").as_deref(),
        Some("/forgot-password"),
        "unknown clients are not carried"
    );
}

async fn the_hosting_portal_asks_for_a_captcha(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    register_client(&app, NewClient::portal("hosting-portal", "hosting")).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let form = app.page("/login?client_id=hosting-portal").await;
    assert!(
        form.body.contains("<noscript"),
        "without JavaScript the form says why"
    );
    assert!(form.input("captcha_challenge").is_some());
    // Without solving it: refused, nothing else checked.
    let mut values = form.hidden_fields("/login");
    values.push(("email".into(), "jane@example.com".into()));
    values.push(("password".into(), PW.into()));
    let unsolved = app.post("/login", &values).await;
    assert_eq!(unsolved.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !unsolved.field_errors("captcha").is_empty() || unsolved.text().contains("robot"),
        "{}",
        unsolved.text()
    );
    // Solved: signed in. The same answer again: refused.
    let form = app.page("/login?client_id=hosting-portal").await;
    let signed_in = app
        .submit_on(
            &form,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(
        signed_in.status,
        StatusCode::SEE_OTHER,
        "{}",
        signed_in.text()
    );
    let replay = app
        .submit_on(
            &form,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Forgot-password is guarded too.
    let forgot_form = app.page("/forgot-password?client_id=hosting-portal").await;
    assert!(forgot_form.input("captcha_challenge").is_some());
}

/// Whoever holds a session (a borrowed laptop) must not be able to try
/// passwords on the change forms at will: ten tries an hour, then none
/// is checked, the right one neither, on any form asking for it.
async fn guessing_the_current_password_from_a_session_is_limited(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    app.sign_in("jane@example.com", PW).await;
    let change = |current: &'static str| {
        let fields = [
            ("current_password", current),
            ("password", NEW_PW),
            ("password_confirm", NEW_PW),
        ];
        let app = &app;
        async move {
            app.submit("/account/password", "/account/password", &fields)
                .await
        }
    };
    for i in 0..10 {
        let wrong = change("Guess-Number-1234").await;
        assert!(
            wrong
                .field_errors("current_password")
                .contains("not your current password"),
            "guess {i}: {}",
            wrong.text()
        );
    }
    let right = change(PW).await;
    assert_eq!(right.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        right
            .field_errors("current_password")
            .contains("Too many tries"),
        "{}",
        right.text()
    );
    let address = app
        .submit(
            "/account/profile",
            "/account/email",
            &[("new_email", "jane.new@example.com"), ("password", PW)],
        )
        .await;
    assert!(
        address.field_errors("password").contains("Too many tries"),
        "the other forms too: {}",
        address.text()
    );
    assert!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status
            .is_redirection(),
        "the password did not change, and the account is not locked"
    );

    app.clock.advance(Duration::minutes(61));
    let later = change(PW).await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text());
    assert!(
        app.other_browser()
            .sign_in("jane@example.com", NEW_PW)
            .await
            .status
            .is_redirection()
    );
}
