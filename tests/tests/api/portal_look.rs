//! The portal's look, throughout: a customer who arrives from a portal
//! meets that portal's theme on every page and in every mail until they
//! sign out (the account page and everything linked from it, "confirm it's
//! you", error and expired-link pages, sign-out), and bad markers in links
//! get a clear page in the right look, never a 500.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use scraper::Selector;
use tests::browser::{MailApp, NewClient, Page, link_in, register_client};
use tests::smtp::ReceivedMail;
use tests::totp;
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    every_page_and_mail_of_a_portal_wears_its_look,
    bad_markers_get_a_clear_page_in_the_right_look,
);

const PW: &str = "Correct-Horse-9-battery!";

/// The shipped themes, with the display name their pages show.
const THEMES: &[(&str, &str)] = &[
    ("hosting", "Nimbus Hosting Account Portal"),
    ("customer", "Brightdesk Customer Portal"),
    ("helix", "Helix Telecom Support"),
    ("default", "Account Center"),
];

fn portal_id(theme: &str) -> String {
    format!("{theme}-portal")
}

/// The page wears `theme`: its stylesheets and its portal's name.
fn assert_look(page: &Page, theme: &str, display: &str, what: &str) {
    assert!(
        !page.status.is_server_error(),
        "{what}: answered {} ({})",
        page.status,
        page.url
    );
    assert!(
        page.body.contains(&format!("/static/{theme}/")),
        "{what} ({}) is not in the {theme} look:\n{}",
        page.url,
        page.body
    );
    assert!(
        page.body.contains(display),
        "{what} ({}) does not name {display}",
        page.url
    );
}

/// The mail is in the portal's look, and its links stay in the portal.
fn assert_mail_look(mail: &ReceivedMail, theme: &str, display: &str, what: &str) {
    let subject = mail.subject();
    assert!(
        subject.contains(display),
        "{what} mail in the {theme} look: {subject}"
    );
    let text = mail.text_body();
    let portal = format!("client_id={}", portal_id(theme));
    for link in text.split_whitespace().filter(|w| w.starts_with("http")) {
        assert!(
            link.contains(&portal),
            "{what} mail: link {link} keeps the portal"
        );
    }
}

/// GET, following redirects on this server (at most five).
async fn follow(b: &TestApp, path: &str) -> Page {
    let mut page = b.page(path).await;
    for _ in 0..5 {
        let Some(to) = page
            .location
            .clone()
            .filter(|_| page.status.is_redirection())
        else {
            break;
        };
        let to = tests::signin::resolve(&page.url, &to);
        page = b.page_at(&to).await;
    }
    page
}

/// The account's own links on a page (`/account...`), as written.
fn account_links(page: &Page) -> Vec<String> {
    let sel = Selector::parse("a[href]").unwrap();
    page.html()
        .select(&sel)
        .filter_map(|a| a.value().attr("href"))
        .filter(|h| h.starts_with("/account"))
        .map(str::to_owned)
        .collect()
}

/// `link` without its `client_id` (a link as the old pages wrote it).
fn without_marker(link: &str) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("client_id="))
        .collect();
    if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

async fn every_page_and_mail_of_a_portal_wears_its_look(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    for (theme, _) in THEMES {
        register_client(&app, NewClient::portal(&portal_id(theme), theme)).await;
    }
    for (theme, display) in THEMES {
        let portal = portal_id(theme);
        let email = format!("jane.{theme}@example.com");
        app.create_user(&email, PW, "Jane Doe").await;
        let b = app.other_browser();

        // Signed in on the portal's own sign-in page.
        let login = b.page(&format!("/login?client_id={portal}")).await;
        assert_look(&login, theme, display, "sign-in");
        let done = b
            .submit_on(&login, "/login", &[("email", &email), ("password", PW)])
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());

        // The account page, also by a link without the marker (the header's
        // ACCOUNT link used to drop it), and every page linked from it, as
        // linked and without the marker.
        let account = b.page("/account").await;
        assert_look(&account, theme, display, "account page without a marker");
        let mut seen = BTreeSet::new();
        let mut to_visit = account_links(&account);
        while let Some(link) = to_visit.pop() {
            let plain = without_marker(&link);
            if !seen.insert(plain.clone()) || seen.len() > 40 {
                continue;
            }
            let page = follow(&b, &link).await;
            assert_look(&page, theme, display, &link);
            assert_look(&follow(&b, &plain).await, theme, display, &plain);
            to_visit.extend(account_links(&page));
        }
        for must in [
            "/account/password",
            "/account/mfa",
            "/account/profile",
            "/account/sessions",
            "/account/activity",
            "/account/grants",
            "/account/mfa/setup",
        ] {
            assert!(
                seen.contains(must),
                "{theme}: {must} is reachable: {seen:?}"
            );
        }

        // "Confirm it's you", then two-step set-up and its recovery codes.
        app.clock.advance(Duration::minutes(10));
        let reauth = follow(&b, "/account/mfa/setup").await;
        assert!(reauth.url.contains("/account/reauth"), "{}", reauth.url);
        assert_look(&reauth, theme, display, "confirm it's you");
        let back = b
            .submit_on(&reauth, "/account/reauth", &[("password", PW)])
            .await;
        assert_eq!(back.status, StatusCode::SEE_OTHER, "{}", back.text());
        let setup = follow(&b, "/account/mfa/setup").await;
        assert_look(&setup, theme, display, "two-step set-up");
        let key = setup.manual_key_compact().expect("the key to type");
        let code = totp::code_at(&key, b.clock_now());
        let codes = b
            .submit_on(&setup, "/account/mfa/setup", &[("code", &code)])
            .await;
        assert_look(&codes, theme, display, "recovery codes");
        let mail = app.wait_for_mail_to(&email, 1).await;
        assert_mail_look(&mail, theme, display, "two-step on");

        // Password changed, from a form reached without the marker.
        let change = b.page("/account/password").await;
        let changed = b
            .submit_on(
                &change,
                "/account/password",
                &[
                    ("current_password", PW),
                    ("password", "Another-Horse-7-staple!"),
                    ("password_confirm", "Another-Horse-7-staple!"),
                ],
            )
            .await;
        assert_look(&changed, theme, display, "password changed");
        let mail = app.wait_for_mail_to(&email, 2).await;
        assert_mail_look(&mail, theme, display, "password changed");

        // Error pages.
        let missing = b.page("/no-such-page").await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_look(&missing, theme, display, "not found");
        let expired = b.page("/authorize/continue?req=nope").await;
        assert_look(&expired, theme, display, "expired sign-in");

        // Sign-out: the confirmation, then the account page's own button.
        let confirm = b.page("/logout").await;
        assert_look(&confirm, theme, display, "sign-out confirmation");
        let account = b.page("/account").await;
        let out = b.submit_on(&account, "/logout", &[]).await;
        let out = match out.location.clone() {
            Some(to) if out.status.is_redirection() => follow(&b, &to).await,
            _ => out,
        };
        assert_look(&out, theme, display, "signed out");

        // Mail from the portal's doors, opened in another browser.
        let stranger = app.other_browser();
        let newcomer = format!("newcomer.{theme}@example.com");
        let register = stranger
            .page(&format!("/register?client_id={portal}"))
            .await;
        stranger
            .submit_on(
                &register,
                "/register",
                &[
                    ("name", "New Comer"),
                    ("email", &newcomer),
                    ("password", PW),
                    ("password_confirm", PW),
                ],
            )
            .await;
        let mail = app.wait_for_mail_to(&newcomer, 1).await;
        assert_mail_look(&mail, theme, display, "verification");
        let verify = app
            .other_browser()
            .page(&link_in(&mail, "/verify-email"))
            .await;
        assert_look(
            &verify,
            theme,
            display,
            "verification link in another browser",
        );

        let forgot = stranger
            .page(&format!("/forgot-password?client_id={portal}"))
            .await;
        stranger
            .submit_on(&forgot, "/forgot-password", &[("email", &email)])
            .await;
        let mail = app.wait_for_mail_to(&email, 3).await;
        assert_mail_look(&mail, theme, display, "reset");
        let link = link_in(&mail, "/reset-password");
        let reset = app.other_browser().page(&link).await;
        assert_look(&reset, theme, display, "reset link in another browser");
        app.clock.advance(Duration::hours(3));
        let stale = app.other_browser().page(&link).await;
        assert_look(&stale, theme, display, "expired reset link");
        assert!(
            stale.body.contains("/forgot-password"),
            "the expired link asks for a new one"
        );
    }
}

async fn bad_markers_get_a_clear_page_in_the_right_look(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    register_client(&app, NewClient::portal("hosting-portal", "hosting")).await;
    register_client(&app, NewClient::portal("customer-portal", "customer")).await;
    app.create_user("jane@example.com", PW, "Jane Doe").await;
    let login = app.page("/login?client_id=hosting-portal").await;
    let done = app
        .submit_on(
            &login,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    let hosting = "Nimbus Hosting Account Portal";

    // A marker naming no client, or nothing well-formed: the session's portal.
    for marker in ["no-such-portal", "%00%FF", "", "..%2F..%2Fetc"] {
        let page = app
            .page(&format!("/account/password?client_id={marker}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{marker}");
        assert_look(&page, "hosting", hosting, marker);
    }
    // A marker naming another portal changes the look only...
    let other = app.page("/account?client_id=customer-portal").await;
    assert_eq!(other.status, StatusCode::OK);
    assert_look(
        &other,
        "customer",
        "Brightdesk Customer Portal",
        "other marker",
    );
    // ... and the rules are not chosen by a marker at all: this session
    // began on a themed page, not in a flow, so the deployment's rules apply.
    let rules = rules_portal_of(&app, &done).await;
    assert_eq!(rules.as_deref(), None);

    // Without a session, a bad marker is the default look, never a 500.
    let stranger = app.other_browser();
    for path in [
        "/login?client_id=no-such-portal",
        "/reset-password?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&client_id=nope",
        "/verify-email?token=bad&client_id=%E2%80%AE",
        "/no-such-page?client_id=no-such-portal",
    ] {
        let page = stranger.page(path).await;
        assert!(!page.status.is_server_error(), "{path}: {}", page.status);
        assert_look(&page, "default", "Account Center", path);
    }
    // A mailed link opened in another browser keeps its portal's look.
    let page = stranger
        .page("/reset-password?token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&client_id=hosting-portal")
        .await;
    assert_look(&page, "hosting", hosting, "reset link in another browser");
}

/// What `idp::signin::portal::rules_portal` answers for the browser whose
/// sign-in answered `signed_in`, asked with a marker for another portal.
async fn rules_portal_of(app: &TestApp, signed_in: &Page) -> Option<String> {
    let cookie = signed_in
        .headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| {
            c.split('=')
                .next()
                .is_some_and(|n| n.ends_with("idp_session"))
        })
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_owned();
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::COOKIE, cookie.parse().unwrap());
    let jar = axum_extra::extract::cookie::CookieJar::from_headers(&headers);
    idp::signin::portal::rules_portal(&app.state, &jar, None)
        .await
        .unwrap()
        .map(|c| c.id.as_str().to_owned())
}

/// A store that cannot answer: browsers get a themed "temporarily
/// unavailable" page (503) in the portal of the link, API callers their
/// JSON errors. Only the PostgreSQL + Redis pair can lose its ephemeral
/// store; the embedded one lives in the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_gets_a_themed_page_for_browsers_and_json_for_apis() {
    let mut redis = crate::server::OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.redis.url = Some(idp::config::ConnectionUrl::new(url));
    })
    .await;
    crate::server::wait_for_status(&app, StatusCode::OK).await;
    register_client(&app, NewClient::portal("hosting-portal", "hosting")).await;
    app.create_user("jane@example.com", PW, "Jane Doe").await;
    let login = app.page("/login?client_id=hosting-portal").await;
    let done = app
        .submit_on(
            &login,
            "/login",
            &[("email", "jane@example.com"), ("password", PW)],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());

    redis.stop();
    crate::server::wait_for_status(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    for path in [
        "/account?client_id=hosting-portal",
        "/account/password?client_id=hosting-portal",
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header(reqwest::header::ACCEPT, html)
            .send()
            .await
            .unwrap();
        let page = Page::from(response).await;
        assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(
            page.headers
                .get(reqwest::header::CONTENT_TYPE)
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html")),
            "{path}: a page"
        );
        assert_eq!(
            page.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            page.body
        );
        assert!(
            page.body.contains("/static/hosting/")
                && page.body.contains("Nimbus Hosting Account Portal")
                && page.body.contains("Temporarily unavailable"),
            "{path}: themed:\n{}",
            page.body
        );
        assert!(page.headers.get(reqwest::header::RETRY_AFTER).is_some());
    }
    // Without a portal in the link: the default look, still a page.
    let response = app
        .http
        .get(app.url("/account"))
        .header(reqwest::header::ACCEPT, html)
        .send()
        .await
        .unwrap();
    let page = Page::from(response).await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.body.contains("/static/default/"), "{}", page.body);

    // Scripts and API callers keep what they had: no HTML.
    let plain = app.get("/account").await;
    assert_eq!(plain.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(!plain.text().await.unwrap().contains("<html"));
    let token = app
        .http
        .post(app.url("/token"))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "hosting-portal"),
        ])
        .send()
        .await
        .unwrap();
    let status = token.status();
    let body = token.text().await.unwrap();
    assert!(!body.contains("<html"), "{status}: {body}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_ok(),
        "/token answers JSON: {status} {body}"
    );
}
