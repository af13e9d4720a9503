//! Sign-in, sign-out, the account page, lockout, CSRF and security headers,
//! as a browser without JavaScript sees them.

use reqwest::StatusCode;
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    sign_in_opens_the_account_page_and_sign_out_ends_it,
    unknown_email_and_wrong_password_get_the_same_answer,
    sign_in_rehashes_when_parameters_change,
    five_failures_lock_until_the_next_day,
    unknown_addresses_lock_the_same_way,
    lock_survives_the_ephemeral_store_in_the_durable_one,
    failures_are_also_counted_per_ip,
    a_password_check_that_fails_counts_no_failure,
    forms_without_a_valid_csrf_token_change_nothing,
    pages_carry_security_headers,
    malformed_input_gets_a_page_not_a_500,
);

const PW: &str = "Correct-Horse-Battery-9";

async fn sign_in_opens_the_account_page_and_sign_out_ends_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane Doe").await;
    let login = app.page("/login").await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(login.link("Forgot password?").is_some(), "{}", login.body);
    assert!(login.link("Create an account").is_some());

    let answer = app.sign_in("JANE@example.com ", PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(answer.location.as_deref(), Some("/account"));
    let cookie = answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("idp_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    let account = app.page("/account").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.contains("Jane Doe"), "{}", account.text());
    assert!(account.contains("jane@example.com"));
    assert!(account.link("Change password").is_some());

    let out = app.submit("/account", "/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = app.page("/account").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "signed out: sent to sign in"
    );
    assert_eq!(after.location.as_deref(), Some("/login"));

    // Replaying the old cookie does not bring the session back.
    let session_id = cookie.split(';').next().unwrap().to_owned();
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/account"))
        .header("cookie", session_id)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);

    let events = app.state.store.audit_events(None, 50).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert!(kinds.contains(&"login.succeeded"), "{kinds:?}");
    assert!(kinds.contains(&"logout"), "{kinds:?}");
    let login_event = events
        .iter()
        .find(|e| e.event.kind == "login.succeeded")
        .unwrap();
    assert_eq!(login_event.event.ip.as_deref(), Some("127.0.0.1"));
}

async fn unknown_email_and_wrong_password_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let wrong = app.sign_in("jane@example.com", "not-her-password").await;
    let unknown = app.sign_in("nobody@example.com", "not-her-password").await;
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    let strip = |p: &tests::browser::Page| {
        p.text()
            .replace("jane@example.com", "X")
            .replace("nobody@example.com", "X")
    };
    assert_eq!(strip(&wrong), strip(&unknown));
    assert!(
        wrong.contains("Incorrect email or password."),
        "{}",
        wrong.text()
    );
    let events = app.state.store.audit_events(None, 10).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event.kind == "login.failed")
            .count(),
        2
    );
}

async fn sign_in_rehashes_when_parameters_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A hash made with older, weaker parameters than the server's.
    let old = idp::credentials::PasswordHasher::new(&idp::config::PasswordHashingConfig {
        memory_kib: 8192,
        iterations: 2,
        parallelism: 1,
        max_concurrent: 1,
        max_queued: None,
    })
    .unwrap();
    let hash = old
        .hash(&idp::domain::PlainPassword::parse(PW).unwrap())
        .await
        .unwrap();
    let user = app
        .state
        .store
        .create_user(
            idp::store::NewUser {
                email: idp::domain::Email::parse("old@example.com").unwrap(),
                name: "Old".into(),
                email_verified: true,
                password_hash: Some(hash.clone()),
                is_admin: false,
            },
            app.clock_now(),
        )
        .await
        .unwrap();
    assert_eq!(
        app.sign_in("old@example.com", PW).await.status,
        StatusCode::SEE_OTHER
    );
    let stored = app.state.store.user_by_id(&user.id).await.unwrap().unwrap();
    let new_hash = stored.password_hash.unwrap();
    assert_ne!(new_hash, hash);
    assert!(new_hash.contains("m=8192,t=1,p=1"), "{new_hash}");
    // ...and the new hash still opens the account.
    assert_eq!(
        app.other_browser()
            .sign_in("old@example.com", PW)
            .await
            .status,
        StatusCode::SEE_OTHER
    );
}

async fn fail(app: &TestApp, email: &str, times: usize) -> tests::browser::Page {
    let mut last = None;
    for _ in 0..times {
        last = Some(app.sign_in(email, "wrong-password-123").await);
    }
    last.unwrap()
}

async fn five_failures_lock_until_the_next_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("jane@example.com", PW, "Jane").await;
    let fourth = fail(&app, "jane@example.com", 4).await;
    assert_eq!(
        fourth.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "not yet locked"
    );
    let fifth = fail(&app, "jane@example.com", 1).await;
    assert_eq!(fifth.status, StatusCode::FORBIDDEN);
    assert!(
        fifth.contains("blocked") || fifth.contains("locked"),
        "{}",
        fifth.text()
    );

    // Even the right password is refused now.
    let right = app.sign_in("jane@example.com", PW).await;
    assert_eq!(right.status, StatusCode::FORBIDDEN, "{}", right.text());

    let stored = app.state.store.user_by_id(&user.id).await.unwrap().unwrap();
    let until = stored
        .locked_until
        .expect("lock written to the durable store");
    let now = app.clock_now();
    assert!(until > now && until - now <= Duration::days(1));
    assert_eq!(
        until.time(),
        time::Time::MIDNIGHT,
        "until the start of the next day (UTC)"
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
    assert!(kinds.contains(&"account.locked".to_string()), "{kinds:?}");

    // The next day, the right password works again.
    app.clock.set(until + Duration::seconds(1));
    assert_eq!(
        app.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER
    );
}

async fn unknown_addresses_lock_the_same_way(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let known = fail(&app, "jane@example.com", 5).await;
    let unknown = fail(&app, "ghost@example.com", 5).await;
    assert_eq!(known.status, unknown.status);
    assert_eq!(
        known.text(),
        unknown.text(),
        "a locked page tells nothing about existence"
    );
    // A sixth attempt on the unknown address stays locked too.
    assert_eq!(
        app.sign_in("ghost@example.com", "x-anything-1")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

async fn lock_survives_the_ephemeral_store_in_the_durable_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("jane@example.com", PW, "Jane").await;
    fail(&app, "jane@example.com", 5).await;
    // Forget the ephemeral lock (as a Redis restart would).
    app.state
        .ephemeral
        .delete(&idp::ephemeral::keys::lock(
            &idp::domain::Email::parse("jane@example.com").unwrap().key(),
        ))
        .await
        .unwrap();
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
    assert_eq!(
        app.sign_in("jane@example.com", PW).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn failures_are_also_counted_per_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.server.trusted_proxy_hops = 1;
        c.lockout.ip_max_failures = 6;
    })
    .await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let from = |ip: &'static str, email: &'static str, password: &'static str| {
        let app = app.clone();
        async move {
            let form = app.page("/login").await;
            let mut values = form.hidden_fields("/login");
            values.push(("email".into(), email.into()));
            values.push(("password".into(), password.into()));
            let response = app
                .http
                .post(app.url("/login"))
                .header("x-forwarded-for", ip)
                .form(&values)
                .send()
                .await
                .unwrap();
            response.status()
        }
    };
    // Six different addresses, one failure each, from one IP.
    for i in 0..6 {
        let email: &'static str = Box::leak(format!("user{i}@example.com").into_boxed_str());
        from("203.0.113.7", email, "wrong-password-1").await;
    }
    assert_eq!(
        from("203.0.113.7", "jane@example.com", PW).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A throttled network's tries add nothing to an address's count: more
    // than the lockout allows, refused before any address is counted.
    for _ in 0..8 {
        assert_eq!(
            from("203.0.113.7", "jane@example.com", "wrong-password-1").await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // Another IP is not affected, and the account is not locked.
    assert_eq!(
        from("198.51.100.1", "jane@example.com", PW).await,
        StatusCode::SEE_OTHER
    );
}

/// A check that cannot be made (here: a stored argon2id asking for 4 TiB,
/// which the machine refuses to map) found no password wrong: the person
/// gets an error page, and no failure is counted, so retrying never locks
/// the account.
async fn a_password_check_that_fails_counts_no_failure(backend: Backend) {
    // With overcommit always on (1), the kernel would grant the mapping and
    // the process would be killed when argon2 filled it.
    let overcommit = std::fs::read_to_string("/proc/sys/vm/overcommit_memory").unwrap_or_default();
    if overcommit.trim() == "1" {
        return;
    }
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let email = idp::domain::Email::parse("jane@example.com").unwrap();
    let jane = app
        .state
        .store
        .user_by_email(&email)
        .await
        .unwrap()
        .unwrap();
    let good = jane.password_hash.clone().unwrap();
    let huge = "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$\
                YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXphYmNkZWY";
    app.state
        .store
        .set_password_hash(&jane.id, huge, app.clock_now())
        .await
        .unwrap();
    for _ in 0..8 {
        let answer = app.sign_in("jane@example.com", PW).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!answer.text().contains("4294967295"), "{}", answer.text());
    }
    app.state
        .store
        .set_password_hash(&jane.id, &good, app.clock_now())
        .await
        .unwrap();
    let answer = app.sign_in("jane@example.com", PW).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    assert_eq!(answer.location.as_deref(), Some("/account"));
}

async fn forms_without_a_valid_csrf_token_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let form = app.page("/login").await;
    let good = form.input("csrf_token").unwrap();
    for token in ["", "forged-token", &"A".repeat(43)] {
        let page = app
            .post(
                "/login",
                &[
                    ("csrf_token".into(), token.into()),
                    ("email".into(), "jane@example.com".into()),
                    ("password".into(), PW.into()),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "token {token:?}");
        assert!(page.contains("expired"), "{}", page.text());
    }
    // The right token from another site is refused too.
    let cross = app
        .http
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[
            ("csrf_token", good.as_str()),
            ("email", "jane@example.com"),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    // A body that is not a form at all: the same page, not a 4xx text.
    let junk = app
        .http
        .post(app.url("/login"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "not signed in"
    );
    assert!(
        app.state
            .store
            .audit_events(None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing happened"
    );
}

async fn pages_carry_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = app.page("/login").await;
    let h = |name: &str| {
        page.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert!(!h("content-security-policy").contains("unsafe-inline"));
    assert_eq!(h("x-content-type-options"), "nosniff");
    assert_eq!(h("referrer-policy"), "no-referrer");
    assert_eq!(h("cache-control"), "no-store");
    assert!(
        h("strict-transport-security").is_empty(),
        "no HSTS in dev mode over http"
    );
    // No inline script or style anywhere in the page (CSP would block it).
    assert!(
        !page.body.contains("<script>") && !page.body.contains("style="),
        "inline code in {}",
        page.body
    );
}

async fn malformed_input_gets_a_page_not_a_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = format!("{}@example.com", "a".repeat(5000));
    for email in [
        "",
        "no-at-sign",
        long.as_str(),
        "ｊａｎｅ@ＥＸＡＭＰＬＥ.com\u{0}",
        "\u{202e}evil@example.com",
    ] {
        let page = app.sign_in(email, "whatever-pass").await;
        assert!(page.status.is_client_error(), "{email:?}: {}", page.status);
        assert!(!page.text().is_empty());
    }
    for path in [
        "/reset-password?token=%00%ff",
        "/reset-password?token=' or 1=1 --",
        "/verify-email?token=abc",
        "/reset-password",
    ] {
        let page = app.page(path).await;
        assert!(page.status.is_client_error(), "{path}: {}", page.status);
    }
}

/// Browsers send `Origin: null` for our own forms (we send
/// `Referrer-Policy: no-referrer`); with `Sec-Fetch-Site: same-origin` that is
/// accepted, from anywhere else it is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_origin_is_accepted_only_from_the_same_site() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let post = |site: &'static str| {
        let app = app.clone();
        async move {
            let form = app.page("/login").await;
            let mut values = form.hidden_fields("/login");
            values.push(("email".into(), "jane@example.com".into()));
            values.push(("password".into(), PW.into()));
            app.http
                .post(app.url("/login"))
                .header("origin", "null")
                .header("sec-fetch-site", site)
                .form(&values)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post("cross-site").await, StatusCode::FORBIDDEN);
    assert_eq!(post("same-origin").await, StatusCode::SEE_OTHER);
}
