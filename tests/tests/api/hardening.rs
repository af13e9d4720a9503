//! Rules that hold across the account flows: sessions renewed at sign-in,
//! expiring verification links, per-IP limits, counters shared by nodes,
//! production cookies and headers, the audit trail's who and where.

use reqwest::StatusCode;
use tests::browser::{MailApp, link_in};
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    sign_in_always_starts_a_new_session,
    verification_links_expire,
    reset_requests_are_rate_limited_per_ip,
    the_audit_trail_records_ip_and_user_agent,
    production_mode_sends_hsts_and_host_only_secure_cookies,
);

const PW: &str = "Correct-Horse-Battery-9";

fn session_cookie(page: &tests::browser::Page) -> Option<String> {
    page.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("idp_session=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

async fn sign_in_always_starts_a_new_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let first = session_cookie(&app.sign_in("jane@example.com", PW).await).unwrap();
    // Signing in again from the same browser (another portal, a step-up) gets a new id.
    let second = session_cookie(&app.sign_in("jane@example.com", PW).await).unwrap();
    assert_ne!(
        first, second,
        "no session fixation: the id changes at sign-in"
    );
    assert_eq!(app.page("/account").await.status, StatusCode::OK);
    // The replaced session is over, not merely forgotten by the browser.
    let old = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/account"))
        .header("cookie", first)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::SEE_OTHER);
}

async fn verification_links_expire(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    app.submit(
        "/register",
        "/register",
        &[
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", PW),
            ("password_confirm", PW),
        ],
    )
    .await;
    let link = link_in(
        &app.wait_for_mail_to("ada@example.com", 1).await,
        "/verify-email",
    );
    app.clock
        .advance(Duration::hours(48) + Duration::minutes(1));
    let page = app.page(&link).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    let user = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("ada@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(!user.email_verified);
}

async fn reset_requests_are_rate_limited_per_ip(backend: Backend) {
    let app = MailApp::spawn_with(backend, |c| {
        c.server.trusted_proxy_hops = 1;
        c.account.reset_requests_per_ip_per_hour = 3;
    })
    .await;
    for i in 0..5 {
        app.create_user(&format!("u{i}@example.com"), PW, "U").await;
    }
    let request = |ip: &'static str, email: String| {
        let app = &app;
        async move {
            let form = app.page("/forgot-password").await;
            let mut values = form.hidden_fields("/forgot-password");
            values.push(("email".into(), email));
            app.http
                .post(app.url("/forgot-password"))
                .header("x-forwarded-for", ip)
                .form(&values)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for i in 0..5 {
        assert_eq!(
            request("203.0.113.9", format!("u{i}@example.com")).await,
            StatusCode::OK
        );
    }
    app.sink
        .wait_for(3, std::time::Duration::from_secs(10))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(app.sink.messages().len(), 3, "3 per hour from one address");
    // Another network is not held back.
    request("198.51.100.20", "u4@example.com".into()).await;
    app.sink
        .wait_for(4, std::time::Duration::from_secs(10))
        .await;
}

async fn the_audit_trail_records_ip_and_user_agent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.create_user("jane@example.com", PW, "Jane").await;
    app.sign_in("jane@example.com", "wrong-password-1").await;
    app.sign_in("jane@example.com", PW).await;
    let events = app
        .state
        .store
        .audit_events(Some(&user.id), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    for e in &events {
        assert_eq!(e.event.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(e.event.user_agent.as_deref(), Some(tests::USER_AGENT));
        assert!((app.clock_now() - e.occurred_at).abs() < Duration::seconds(5));
    }
    assert_eq!(events[0].event.kind, "login.succeeded");
    assert_eq!(events[1].event.kind, "login.failed");
}

async fn production_mode_sends_hsts_and_host_only_secure_cookies(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.server.dev_mode = false;
        c.server.issuer = "https://id.example.test".parse().unwrap();
    })
    .await;
    let page = app.page("/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let csrf = page
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains("csrf"))
        .unwrap()
        .to_owned();
    assert!(csrf.starts_with("__Host-"), "{csrf}");
    assert!(
        csrf.contains("Secure") && csrf.contains("HttpOnly") && csrf.contains("Path=/"),
        "{csrf}"
    );
}

/// Failure counters live in the shared ephemeral store: failures spread over
/// two nodes lock the account on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_counts_failures_across_nodes() {
    let first = TestApp::spawn(Backend::Postgres).await;
    let second = first.spawn_beside(|_| {}).await;
    first.create_user("jane@example.com", PW, "Jane").await;
    for i in 0..5 {
        let node = if i % 2 == 0 { &first } else { &second };
        node.sign_in("jane@example.com", "wrong-password-1").await;
    }
    assert_eq!(
        first.sign_in("jane@example.com", PW).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        second.sign_in("jane@example.com", PW).await.status,
        StatusCode::FORBIDDEN
    );
}
