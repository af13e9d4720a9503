//! Just-in-time migration (issue 15, item 7): a sign-in for an address with
//! no account asks the legacy portal's hook; a yes makes the account and
//! signs in, anything else is "incorrect email or password". The legacy
//! portal here is a small server on loopback that checks each call's
//! signature (with its own HMAC, not the server's) and counts the calls.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use hmac::{Hmac, KeyInit as _, Mac as _};
use idp::config::{Config, PortalHook, Secret};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use tests::browser::{NewClient, Page};
use tests::rp::TestRp;
use tests::signin::Person;

use crate::{Backend, TestApp};

on_both_backends!(
    a_yes_makes_the_account_and_signs_in_at_the_relying_party,
    a_no_is_a_wrong_password_and_makes_no_account,
    a_hook_that_fails_is_a_no_and_answers_promptly,
    a_burst_of_unknown_addresses_calls_the_hook_at_most_per_minute,
    one_address_is_asked_about_at_most_per_address_per_hour,
    a_flood_that_spent_the_minute_does_not_spend_a_customers_allowance,
    a_race_for_one_new_address_makes_one_account,
    the_hook_is_chosen_by_the_flow_not_by_the_form,
    off_by_default_the_hook_is_never_called,
);

const SECRET: &str = "legacy-portal-shared-secret-0123";
const PW: &str = "Old-Portal-Password-7";
const ANN: &str = "ann@legacy.example";

/// The legacy portal: its customers (address → password, name, verified)
/// and what it saw.
struct Inner {
    secret: String,
    customers: HashMap<String, (String, String, bool)>,
    calls: AtomicUsize,
    bad_signatures: AtomicUsize,
    /// Requests to where its redirect points: a redirect must not be followed.
    followed: AtomicUsize,
    /// Delay before each answer, so parallel calls overlap.
    delay: Duration,
}

#[derive(Clone)]
struct Legacy {
    base_url: String,
    inner: Arc<Inner>,
}

impl Legacy {
    /// Serves a legacy portal on a free loopback port. Its customers are Ann,
    /// and one address per way of failing (`slow@`, `garbage@`, `broken@`,
    /// `moved@`, `huge@`), all with [`PW`]: only the failure makes those a no.
    async fn start(delay: Duration) -> Self {
        let mut customers = HashMap::new();
        customers.insert(ANN.to_owned(), (PW.to_owned(), "Ann Lee".to_owned(), true));
        for mode in ["slow", "garbage", "broken", "moved", "huge", "race"] {
            let email = format!("{mode}@legacy.example");
            customers.insert(email, (PW.to_owned(), format!("{mode} customer"), false));
        }
        let inner = Arc::new(Inner {
            secret: SECRET.to_owned(),
            customers,
            calls: AtomicUsize::new(0),
            bad_signatures: AtomicUsize::new(0),
            followed: AtomicUsize::new(0),
            delay,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let router = Router::new()
            .route("/check", post(check))
            .route("/followed", any(followed))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base_url, inner }
    }

    fn url(&self) -> String {
        format!("{}/check", self.base_url)
    }

    fn calls(&self) -> usize {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// Points `config`'s deployment hook here.
    fn hook(&self, config: &mut Config) {
        config.migration_hook.url = Some(self.url());
        config.migration_hook.secret = Some(Secret::new(SECRET));
    }

    /// What every test checks at its end: each call was signed right and no
    /// redirect was followed.
    fn assert_clean(&self) {
        assert_eq!(self.inner.bad_signatures.load(Ordering::SeqCst), 0);
        assert_eq!(self.inner.followed.load(Ordering::SeqCst), 0);
    }
}

/// The portal's side as docs/jit-migration.md tells a shim to write it.
fn signed_right(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("x-idp-signature").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = Some(value.to_owned()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    // Fresh: the test server's clock starts at the real time.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if (now - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn check(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    if !signed_right(&inner.secret, &headers, &body) {
        inner.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return AxumStatus::UNAUTHORIZED.into_response();
    }
    tokio::time::sleep(inner.delay).await;
    let asked: Value = serde_json::from_slice(&body).unwrap();
    let email = asked["email"].as_str().unwrap().to_owned();
    let password = asked["password"].as_str().unwrap();
    let yes = |name: &str, verified: bool| {
        axum::Json(json!({ "valid": true, "name": name, "email_verified": verified }))
    };
    let Some((right, name, verified)) = inner.customers.get(&email) else {
        return axum::Json(json!({ "valid": false })).into_response();
    };
    if password != right {
        return axum::Json(json!({ "valid": false })).into_response();
    }
    match email.split('@').next().unwrap_or("") {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            yes(name, *verified).into_response()
        }
        "garbage" => "<html>valid: true</html>".into_response(),
        "broken" => (AxumStatus::INTERNAL_SERVER_ERROR, yes(name, *verified)).into_response(),
        "moved" => (
            AxumStatus::TEMPORARY_REDIRECT,
            [("location", "/followed")],
            "moved",
        )
            .into_response(),
        "huge" => yes(&"x".repeat(10_000), *verified).into_response(),
        _ => yes(name, *verified).into_response(),
    }
}

async fn followed(State(inner): State<Arc<Inner>>) -> Response {
    inner.followed.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({ "valid": true, "name": "Followed", "email_verified": true })).into_response()
}

/// The sign-in answer a wrong password gets.
fn assert_wrong_password(page: &Page) {
    assert_eq!(
        page.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        page.text()
    );
    assert!(
        page.contains("Incorrect email or password."),
        "{}",
        page.text()
    );
}

async fn account(app: &TestApp, email: &str) -> Option<idp::store::User> {
    let email = idp::domain::Email::parse(email).unwrap();
    app.state.store.user_by_email(&email).await.unwrap()
}

async fn migrated_events(app: &TestApp) -> Vec<idp::store::RecordedAuditEvent> {
    let events = app.state.store.audit_events(None, 200).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event.kind == "user.migrated")
        .collect()
}

/// Signs in through `rp` in `browser` as `email` with [`PW`]; returns the
/// address of the relying party's callback the browser arrived at.
async fn through(browser: &TestApp, rp: &TestRp, email: &str) -> Page {
    let mut person = Person::new(email).password(PW);
    let callback = rp.url("/cb?");
    let arrived = person
        .walk(browser, &rp.url("/login"), |u| u.starts_with(&callback))
        .await;
    browser.page_at(&arrived).await
}

async fn a_yes_makes_the_account_and_signs_in_at_the_relying_party(backend: Backend) {
    let legacy = Legacy::start(Duration::ZERO).await;
    // A portal's own hook, keyed by its client id.
    let app = TestApp::spawn_with(backend, |c| {
        c.migration_hook.portals.insert(
            "shop".into(),
            PortalHook {
                url: legacy.url(),
                secret: Secret::new(SECRET),
            },
        );
    })
    .await;
    let rp = TestRp::start(&app, NewClient::portal("shop", "default")).await;
    assert!(account(&app, ANN).await.is_none());

    let back = through(&app, &rp, ANN).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    let signed_in = rp.last_sign_in();
    assert_eq!(signed_in.email.as_deref(), Some(ANN));
    assert_eq!(signed_in.amr, vec!["pwd".to_owned()]);
    assert_eq!(legacy.calls(), 1);

    let ann = account(&app, ANN).await.expect("the account was made");
    assert_eq!(signed_in.sub, ann.id.as_str());
    assert_eq!(ann.name, "Ann Lee");
    assert!(ann.email_verified);
    let hash = ann.password_hash.as_deref().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let events = migrated_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.user_id.as_ref(), Some(&ann.id));
    assert_eq!(events[0].event.detail["hook"], json!("shop"));

    // Never asked again: the password is checked here now, in a flow or not.
    let again = through(&app.other_browser(), &rp, ANN).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    assert_eq!(rp.last_sign_in().sub, ann.id.as_str());
    let browser = app.other_browser();
    let direct = browser.sign_in(ANN, PW).await;
    assert_eq!(direct.status, StatusCode::SEE_OTHER, "{}", direct.text());
    // Her own activity page says how the account came to be.
    let activity = browser.page("/account/activity").await;
    assert!(
        activity
            .text()
            .contains("Account moved over at its first sign-in here"),
        "{}",
        activity.text()
    );
    assert_wrong_password(&app.other_browser().sign_in(ANN, "Not-Her-Password-1").await);
    assert_eq!(legacy.calls(), 1);
    assert_eq!(migrated_events(&app).await.len(), 1);
    legacy.assert_clean();
}

async fn a_no_is_a_wrong_password_and_makes_no_account(backend: Backend) {
    let legacy = Legacy::start(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| legacy.hook(c)).await;
    // A customer there with the wrong password, and nobody there at all.
    let wrong = app.sign_in(ANN, "Not-Her-Password-1").await;
    let nobody = app
        .other_browser()
        .sign_in("nobody@legacy.example", PW)
        .await;
    assert_wrong_password(&wrong);
    assert_wrong_password(&nobody);
    assert_eq!(legacy.calls(), 2);
    assert!(account(&app, ANN).await.is_none());
    assert!(account(&app, "nobody@legacy.example").await.is_none());
    assert!(migrated_events(&app).await.is_empty());
    // Counted like any failed sign-in.
    let events = app.state.store.audit_events(None, 50).await.unwrap();
    let failed = events.iter().filter(|e| e.event.kind == "login.failed");
    assert_eq!(failed.count(), 2);
    // The right password later still works: a no made nothing stick.
    let right = app.other_browser().sign_in(ANN, PW).await;
    assert_eq!(right.status, StatusCode::SEE_OTHER, "{}", right.text());
    legacy.assert_clean();
}

async fn a_hook_that_fails_is_a_no_and_answers_promptly(backend: Backend) {
    let legacy = Legacy::start(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| {
        legacy.hook(c);
        c.migration_hook.timeout_ms = 500;
    })
    .await;
    for mode in ["slow", "garbage", "broken", "moved", "huge"] {
        let email = format!("{mode}@legacy.example");
        let started = Instant::now();
        let page = app.other_browser().sign_in(&email, PW).await;
        assert_wrong_password(&page);
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{mode}: {:?}",
            started.elapsed()
        );
        assert!(account(&app, &email).await.is_none(), "{mode}");
        assert!(!page.text().contains("legacy"), "{mode}: {}", page.text());
    }
    assert_eq!(legacy.calls(), 5);
    // An unreachable hook is a no as well.
    let closed = tests::free_port();
    let app = TestApp::spawn_with(backend, |c| {
        c.migration_hook.url = Some(format!("http://127.0.0.1:{closed}/check"));
        c.migration_hook.secret = Some(Secret::new(SECRET));
    })
    .await;
    assert_wrong_password(&app.sign_in(ANN, PW).await);
    assert!(account(&app, ANN).await.is_none());
    legacy.assert_clean();
}

async fn a_burst_of_unknown_addresses_calls_the_hook_at_most_per_minute(backend: Backend) {
    let legacy = Legacy::start(Duration::from_millis(50)).await;
    let app = TestApp::spawn_with(backend, |c| {
        legacy.hook(c);
        c.migration_hook.per_minute = 5;
        // One IP sends the whole burst: not what this test is about.
        c.lockout.ip_max_failures = 1000;
    })
    .await;
    let burst = (0..30).map(|i| {
        let browser = app.other_browser();
        async move {
            browser
                .sign_in(&format!("guess{i}@legacy.example"), PW)
                .await
        }
    });
    for page in futures::future::join_all(burst).await {
        assert_wrong_password(&page);
    }
    assert_eq!(legacy.calls(), 5);
    // A minute later the hook may be asked again.
    app.clock.advance(time::Duration::seconds(61));
    let page = app.other_browser().sign_in(ANN, PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    assert_eq!(legacy.calls(), 6);
    legacy.assert_clean();
}

async fn one_address_is_asked_about_at_most_per_address_per_hour(backend: Backend) {
    let legacy = Legacy::start(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| {
        legacy.hook(c);
        c.migration_hook.per_address_per_hour = 2;
        c.migration_hook.per_minute = 4;
    })
    .await;
    // Three tries (the lockout's fifth failure would lock the address).
    for _ in 0..3 {
        assert_wrong_password(&app.other_browser().sign_in(ANN, "Not-Her-Password-1").await);
    }
    assert_eq!(legacy.calls(), 2);
    // Not asked, so even the right password is a no until the hour is over.
    assert_wrong_password(&app.other_browser().sign_in(ANN, PW).await);
    assert_eq!(legacy.calls(), 2);
    assert!(account(&app, ANN).await.is_none());
    // Her refused tries did not spend the deployment's minute: another
    // customer is still asked about (4 a minute, 2 spent on calls).
    let other = "bob@legacy.example";
    let _ = app.other_browser().sign_in(other, PW).await;
    assert_eq!(legacy.calls(), 3, "another address is still asked about");
    legacy.assert_clean();
}

async fn a_flood_that_spent_the_minute_does_not_spend_a_customers_allowance(backend: Backend) {
    let legacy = Legacy::start(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| {
        legacy.hook(c);
        c.migration_hook.per_minute = 2;
        c.migration_hook.per_address_per_hour = 2;
    })
    .await;
    // Others' guesses spend the minute's calls.
    for i in 0..2 {
        let page = app
            .other_browser()
            .sign_in(&format!("guess{i}@legacy.example"), PW)
            .await;
        assert_wrong_password(&page);
    }
    assert_eq!(legacy.calls(), 2);
    // Ann tries as often as her address is allowed: the hook is not asked.
    for _ in 0..2 {
        assert_wrong_password(&app.other_browser().sign_in(ANN, PW).await);
    }
    assert_eq!(legacy.calls(), 2);
    // Once the minute is over, her address still has its allowance.
    app.clock.advance(time::Duration::seconds(61));
    let page = app.other_browser().sign_in(ANN, PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    assert_eq!(legacy.calls(), 3);
    assert!(account(&app, ANN).await.is_some());
    legacy.assert_clean();
}

async fn a_race_for_one_new_address_makes_one_account(backend: Backend) {
    // Answers take a while, so the four calls are all out at once.
    let legacy = Legacy::start(Duration::from_millis(300)).await;
    let app = TestApp::spawn_with(backend, |c| legacy.hook(c)).await;
    let email = "race@legacy.example";
    let race = (0..4).map(|_| {
        let browser = app.other_browser();
        async move { browser.sign_in(email, PW).await }
    });
    for page in futures::future::join_all(race).await {
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    }
    assert_eq!(legacy.calls(), 4);
    let user = account(&app, email).await.expect("one account");
    let events = migrated_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event.user_id.as_ref(), Some(&user.id));
    legacy.assert_clean();
}

async fn the_hook_is_chosen_by_the_flow_not_by_the_form(backend: Backend) {
    let everyone = Legacy::start(Duration::ZERO).await;
    let shop = Legacy::start(Duration::ZERO).await;
    let app = TestApp::spawn_with(backend, |c| {
        everyone.hook(c);
        c.migration_hook.portals.insert(
            "shop".into(),
            PortalHook {
                url: shop.url(),
                secret: Secret::new(SECRET),
            },
        );
    })
    .await;
    let rp = TestRp::start(&app, NewClient::portal("shop", "default")).await;
    // A form naming the shop outside its flow chooses only the look.
    let page = app
        .submit(
            "/login?client_id=shop",
            "/login",
            &[("email", "nobody@legacy.example"), ("password", PW)],
        )
        .await;
    assert_wrong_password(&page);
    assert_eq!((everyone.calls(), shop.calls()), (1, 0));
    // The shop's flow asks the shop's portal.
    let back = through(&app.other_browser(), &rp, ANN).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.text());
    assert_eq!((everyone.calls(), shop.calls()), (1, 1));
    everyone.assert_clean();
    shop.assert_clean();
}

async fn off_by_default_the_hook_is_never_called(backend: Backend) {
    let legacy = Legacy::start(Duration::ZERO).await;
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.state.config.migration_hook.url, None);
    assert!(app.state.config.migration_hook.portals.is_empty());
    assert_wrong_password(&app.sign_in(ANN, PW).await);
    assert_eq!(legacy.calls(), 0);
    assert!(account(&app, ANN).await.is_none());
}
