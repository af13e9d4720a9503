//! A sign-in flood past the password hashing queue: refused at once with a
//! themed "try again in a few seconds" (503, `Retry-After`), not a pile of
//! waiting requests, and a refusal changes nothing: no failure counted, no
//! lock, no audit of a failed sign-in, no account made.

use futures::future::join_all;
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde_json::{Value, json};

use crate::{Backend, TestApp};
use tests::browser::{NewClient, Page, form_values};
use tests::chromium::{Browser, sign_in, wait_for_themed_sign_in};
use tests::rp::TestRp;

on_both_backends!(
    a_sign_in_flood_past_the_queue_is_asked_to_try_again,
    a_registration_refused_as_busy_creates_no_account,
    registrations_past_the_mail_limit_take_no_place_in_the_queue,
    a_burst_of_registrations_refused_as_busy_gives_back_exactly_what_it_took,
    the_admin_api_answers_busy_in_json,
);

in_chromium!(a_browser_asked_to_try_again_signs_in_at_the_relying_party_after);

const PW: &str = "Correct-Horse-Battery-9";
const BUSY: &str = "try again in a few seconds";

/// One hashing thread and one place in its queue, with a dear hash (64 MiB,
/// `iterations` passes), so a burst finds both taken; a lockout that locks
/// at the first failure.
async fn narrow(backend: Backend, iterations: u32) -> TestApp {
    TestApp::spawn_with(backend, move |c| {
        c.server.trusted_proxy_hops = 1;
        c.password_hashing.memory_kib = 65536;
        c.password_hashing.iterations = iterations;
        c.password_hashing.max_concurrent = 1;
        c.password_hashing.max_queued = Some(1);
        c.lockout.max_failures = 1;
        c.lockout.ip_max_failures = 1;
    })
    .await
}

/// Keeps the hashing thread and the queue's place taken with dear hashes
/// of the test's own (a new one offered every millisecond, so a freed place
/// is taken again at once) until the answer is dropped: anything hashed
/// meanwhile is refused, however long a request takes to reach its hash.
async fn fill_the_queue(app: &TestApp) -> Occupied {
    let hasher = app.state.hasher.clone();
    let task = tokio::spawn(async move {
        let mut hashes = tokio::task::JoinSet::new();
        loop {
            let hasher = hasher.clone();
            hashes.spawn(async move {
                let password = idp::domain::PlainPassword::parse("occupying the queue").unwrap();
                let _ = hasher.hash(&password).await;
            });
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    });
    let started = std::time::Instant::now();
    while app.state.hasher.load().queued.get() < 1 {
        assert!(started.elapsed().as_secs() < 10, "the queue never filled");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    Occupied(task)
}

/// The account of `email`, if one was made.
async fn account(app: &TestApp, email: &str) -> Option<idp::store::User> {
    let email = idp::domain::Email::parse(email).unwrap();
    app.state.store.user_by_email(&email).await.unwrap()
}

struct Occupied(tokio::task::JoinHandle<()>);

impl Occupied {
    /// Stops offering hashes; those taken finish on their own.
    async fn release(self, app: &TestApp) {
        self.0.abort();
        let started = std::time::Instant::now();
        while app
            .state
            .hasher
            .hash(&idp::domain::PlainPassword::parse("free?").unwrap())
            .await
            .is_err()
        {
            assert!(started.elapsed().as_secs() < 30, "the queue never drained");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

fn assert_busy(page: &Page) {
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.text()
    );
    assert!(page.contains(BUSY), "{}", page.text());
    assert!(page.headers.get(RETRY_AFTER).is_some(), "no Retry-After");
}

async fn a_sign_in_flood_past_the_queue_is_asked_to_try_again(backend: Backend) {
    let app = narrow(backend, 2).await;
    let people: Vec<String> = (0..8).map(|i| format!("p{i}@example.com")).collect();
    for email in &people {
        app.create_user(email, PW, "P").await;
    }
    // Each from their own browser and address, all at once.
    let forms = join_all(people.iter().map(|email| {
        let browser = app.other_browser();
        async move {
            let form = browser.page("/login").await;
            let values = form_values(&form, "/login", &[("email", email), ("password", PW)]);
            (browser, values)
        }
    }))
    .await;
    let answers = join_all(
        forms
            .iter()
            .enumerate()
            .map(|(i, (browser, values))| async move {
                let response = browser
                    .http
                    .post(browser.url("/login"))
                    .header("x-forwarded-for", format!("203.0.113.{i}"))
                    .form(values)
                    .send()
                    .await
                    .unwrap();
                Page::from(response).await
            }),
    )
    .await;
    let mut refused = Vec::new();
    for (i, answer) in answers.iter().enumerate() {
        match answer.status {
            StatusCode::SEE_OTHER => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_busy(answer);
                // In the portal's look: the themed page, not a bare text.
                assert!(answer.contains("Busy right now"), "{}", answer.text());
                refused.push(i);
            }
            other => panic!("{other}: {}", answer.text()),
        }
    }
    assert!(
        !refused.is_empty(),
        "one thread and one place for 8 at once"
    );
    assert!(refused.len() < people.len(), "nobody signed in");

    // A refusal counted nothing: with a lock at the first failure, the
    // refused sign in now, from the same address, and nothing recorded a
    // failed sign-in.
    for &i in &refused {
        let (browser, _) = &forms[i];
        let form = browser.page("/login").await;
        let values = form_values(&form, "/login", &[("email", &people[i]), ("password", PW)]);
        let again = Page::from(
            browser
                .http
                .post(browser.url("/login"))
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .form(&values)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.text());
    }
    let events = app.state.store.audit_events(None, 100).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert!(
        !kinds
            .iter()
            .any(|k| k.starts_with("login.") && k != &"login.succeeded"),
        "{kinds:?}"
    );
}

async fn a_registration_refused_as_busy_creates_no_account(backend: Backend) {
    let app = narrow(backend, 10).await;
    let form = app.page("/register").await;
    let values = form_values(
        &form,
        "/register",
        &[
            ("name", "Ada"),
            ("email", "ada@example.com"),
            ("password", PW),
            ("password_confirm", PW),
        ],
    );
    let busy = fill_the_queue(&app).await;
    let answer = app.post("/register", &values).await;
    assert_busy(&answer);
    busy.release(&app).await;
    assert!(account(&app, "ada@example.com").await.is_none());
    // Once the queue has room, the same form goes through.
    let answer = app.post("/register", &values).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

/// Past the mail limit a registration hashes nothing: a requester cannot
/// keep the queue full with registrations (everyone else would be asked to
/// try again); and a registration refused as busy gives back what the mail
/// limit counted.
async fn registrations_past_the_mail_limit_take_no_place_in_the_queue(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.password_hashing.memory_kib = 65536;
        c.password_hashing.iterations = 10;
        c.password_hashing.max_concurrent = 1;
        c.password_hashing.max_queued = Some(1);
        c.account.mail_requests_per_ip_per_hour = 1;
    })
    .await;
    let form = app.page("/register").await;
    let register = |email: &'static str| {
        form_values(
            &form,
            "/register",
            &[
                ("name", "Ada"),
                ("email", email),
                ("password", PW),
                ("password_confirm", PW),
            ],
        )
    };
    // Refused as busy: the one mail this address may ask for is not used up.
    let busy = fill_the_queue(&app).await;
    assert_busy(&app.post("/register", &register("ada@example.com")).await);
    busy.release(&app).await;
    let answer = app.post("/register", &register("ada@example.com")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let started = std::time::Instant::now();
    while account(&app, "ada@example.com").await.is_none() {
        assert!(
            started.elapsed().as_secs() < 10,
            "the registration after a busy refusal was throttled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The limit is used now: with the queue full, the next registration
    // still gets the usual answer at once, because it hashes nothing.
    let busy = fill_the_queue(&app).await;
    let answer = app.post("/register", &register("bob@example.com")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert!(!answer.text().contains(BUSY), "{}", answer.text());
    busy.release(&app).await;
    assert!(account(&app, "bob@example.com").await.is_none());
}

/// Twelve registrations at once from one address while the queue is full:
/// those within the mail limit (3) are refused as busy, the rest get the
/// usual answer without hashing, and all give their counts back (nothing
/// was sent). Afterwards exactly the limit is left, however the burst
/// interleaved: three registrations go through, the fourth does not.
async fn a_burst_of_registrations_refused_as_busy_gives_back_exactly_what_it_took(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| {
        c.password_hashing.memory_kib = 65536;
        c.password_hashing.iterations = 10;
        c.password_hashing.max_concurrent = 1;
        c.password_hashing.max_queued = Some(1);
        c.account.mail_requests_per_ip_per_hour = 3;
    })
    .await;
    let form = app.page("/register").await;
    let register = |email: &str| {
        form_values(
            &form,
            "/register",
            &[
                ("name", "Ada"),
                ("email", email),
                ("password", PW),
                ("password_confirm", PW),
            ],
        )
    };
    let busy = fill_the_queue(&app).await;
    let burst: Vec<String> = (0..12).map(|i| format!("burst{i}@example.com")).collect();
    let forms: Vec<_> = burst.iter().map(|email| register(email)).collect();
    let answers = join_all(forms.iter().map(|values| app.post("/register", values))).await;
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    for answer in &answers {
        if answer.status == StatusCode::SERVICE_UNAVAILABLE {
            assert_busy(answer);
        } else {
            assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        }
    }
    assert!(
        refused >= 3,
        "the three within the limit reach the queue: {refused}"
    );
    busy.release(&app).await;
    for email in &burst {
        assert!(account(&app, email).await.is_none(), "{email}");
    }

    for email in [
        "after0@example.com",
        "after1@example.com",
        "after2@example.com",
    ] {
        let answer = app.post("/register", &register(email)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let started = std::time::Instant::now();
        while account(&app, email).await.is_none() {
            assert!(
                started.elapsed().as_secs() < 10,
                "{email}: the limit was not given back"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    let answer = app.post("/register", &register("after3@example.com")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        account(&app, "after3@example.com").await.is_none(),
        "more than the limit was given back"
    );
}

async fn the_admin_api_answers_busy_in_json(backend: Backend) {
    let app = narrow(backend, 10).await;
    let token = crate::admin::automation_token(&app).await;
    let create = || async {
        let r = app
            .http
            .post(app.admin_url("/admin/api/users"))
            .bearer_auth(&token)
            .json(&json!({ "email": "jane@example.com", "name": "Jane", "password": PW }))
            .send()
            .await
            .unwrap();
        let retry_after = r.headers().get(RETRY_AFTER).cloned();
        (r.status(), retry_after, r.json::<Value>().await.unwrap())
    };
    let busy = fill_the_queue(&app).await;
    let (status, retry_after, body) = create().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(retry_after.is_some());
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    busy.release(&app).await;
    assert!(account(&app, "jane@example.com").await.is_none());
    let (status, _, body) = create().await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// What a person meets: a portal's sign-in refused as busy shows the themed
/// page with its way back; after the flood that way leads through the same
/// sign-in to the relying party's page on its own origin (the refusal
/// counted nothing: the lockout locks at the first failure).
async fn a_browser_asked_to_try_again_signs_in_at_the_relying_party_after(backend: Backend) {
    let app = narrow(backend, 2).await;
    let email = "jane@example.com";
    let jane = app.create_user(email, PW, "Jane Doe").await;
    let rp = TestRp::start(&app, NewClient::portal("helix-portal", "helix")).await;
    let browser = Browser::start().await;
    browser.open(&rp.url("/login")).await;
    wait_for_themed_sign_in(&browser, "helix").await;

    let busy = fill_the_queue(&app).await;
    sign_in(&browser, email, PW).await;
    browser.see(BUSY).await;
    browser.see("Busy right now").await;
    browser
        .wait_until(
            "the busy page in the portal's theme",
            "return document.body.classList.contains('theme-helix');",
            vec![],
        )
        .await;
    // The one console line allowed: Chromium reports the page's 503.
    browser
        .assert_clean_console_but("the busy page", &["503"])
        .await;
    busy.release(&app).await;

    // The helix theme sets its buttons in capitals.
    browser.follow_link("GO TO THE SIGN-IN PAGE").await;
    wait_for_themed_sign_in(&browser, "helix").await;
    sign_in(&browser, email, PW).await;
    browser.wait_for_address(&rp.url("/cb")).await;
    assert_eq!(rp.last_sign_in().sub, jane.id.as_str());
    browser
        .assert_clean_console("the sign-in and the relying party after the busy page")
        .await;
    browser.quit().await;
}
