//! Customers brought over from a portal signing in (issue 15, items 3 and
//! 4; docs/imported-signin.md): with their old password, through a relying
//! party's flow, after which their hash is the deployment's argon2id; a wrong
//! password, an unreadable stored value and an account without a password
//! look like an unknown address; and an account without a password sets one
//! by mail and reaches the relying party.
//!
//! The hashes are put on accounts through the store (`set_password_hash`),
//! as the import leaves them.

use reqwest::StatusCode;
use serde_json::json;
use tests::TestApp;
use tests::browser::{MailApp, NewClient, Page, link_in};
use tests::chromium::{Browser, save_screenshot, sign_in, wait_for_themed_sign_in};
use tests::rp::{SignedIn, TestRp};
use tests::signin::Person;

use crate::Backend;

on_both_backends!(
    every_imported_hash_signs_in_through_a_relying_party_and_becomes_argon2id,
    an_unreadable_stored_hash_is_a_wrong_password,
    an_imported_account_and_an_unknown_address_get_the_same_answer_and_count,
    the_node_learns_the_floor_from_the_stored_hashes_at_start_up,
    an_argon2id_hash_at_other_parameters_sets_the_floor_at_start_up,
    a_change_of_password_checks_and_replaces_an_imported_hash,
    an_account_without_a_password_sets_one_by_mail_and_reaches_the_relying_party,
);

in_chromium!(bcrypt_and_phpass_accounts_sign_in_at_the_relying_party_in_a_portal_theme);

/// Written by tests/fixtures/legacy-hashes/generate.py (passlib, bcrypt,
/// argon2-cffi and Python's standard library).
const FIXTURES: &str = include_str!("../../fixtures/legacy-hashes/hashes.jsonl");

const BAD_CREDENTIALS: &str = "Incorrect email or password.";
const SET_ONE: &str = "Set one by email";
const NEW_PW: &str = "Brand-New-Staple-42!";

struct Fixture {
    format: String,
    password: String,
    hash: String,
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| v[k].as_str().unwrap().to_owned();
            Fixture {
                format: field("format"),
                password: field("password"),
                hash: field("hash"),
            }
        })
        .collect()
}

/// The first fixture of `format`.
fn fixture(format: &str) -> Fixture {
    fixtures()
        .into_iter()
        .find(|f| f.format == format)
        .unwrap_or_else(|| panic!("no {format} fixture"))
}

/// An account brought over by the import (`idp::migration`, what `idp user
/// import` and the admin API run) from its portal's record: `hash` as the
/// portal stored it (`None`: no password at all).
async fn imported(app: &TestApp, email: &str, hash: Option<&str>) -> idp::store::User {
    let mut record = serde_json::json!({
        "email": email,
        "name": "Imported Customer",
        "email_verified": true,
    });
    if let Some(hash) = hash {
        record["password_hash"] = hash.into();
    }
    let store = app.state.store.as_ref();
    let portals = idp::migration::Portals::load(store, app.state.themes.names())
        .await
        .unwrap();
    let target = idp::migration::Target {
        store,
        kek: app.state.kek.as_deref(),
        portals: &portals,
        now: app.clock_now(),
        actor: "cli",
    };
    let line = record.to_string();
    let summary = idp::migration::import(
        &target,
        [(1, idp::migration::parse_line(line.as_bytes()))],
        &idp::migration::ImportOptions::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(summary.imported, 1, "{email}: {summary:?}");
    let user = store
        .user_by_email(&idp::domain::Email::parse(email).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.password_hash.as_deref(), hash, "stored as it came");
    user
}

/// An account whose stored hash is `value` as it is: the import refuses
/// such values, so this is a database written by something else.
async fn stored_as_is(app: &TestApp, email: &str, value: &str) -> idp::store::User {
    let user = imported(app, email, None).await;
    app.state
        .store
        .set_password_hash(&user.id, value, app.clock_now())
        .await
        .unwrap();
    user
}

async fn stored_hash(app: &TestApp, user: &idp::store::User) -> Option<String> {
    app.state
        .store
        .user_by_id(&user.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
}

/// Signs in as `email` with `password` in a browser of its own, from the
/// relying party's sign-in link through the provider's pages to its
/// callback, which redeems the code and verifies the ID token.
async fn sign_in_at(app: &TestApp, rp: &TestRp, email: &str, password: &str) -> SignedIn {
    let browser = app.other_browser();
    let mut person = Person::new(email).password(password);
    let callback = rp.url("/cb");
    let arrived = person
        .walk(&browser, &rp.url("/login"), |u| u.starts_with(&callback))
        .await;
    let page = browser.page_at(&arrived).await;
    assert_eq!(page.status, StatusCode::OK, "{email}: {}", page.text());
    assert!(person.asked_password(), "{:?}", person.pages);
    rp.last_sign_in()
}

/// The page's text with `email` taken out: what tells two answers apart.
fn without(page: &Page, email: &str) -> String {
    page.text().replace(email, "EMAIL")
}

async fn every_imported_hash_signs_in_through_a_relying_party_and_becomes_argon2id(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| {
        // Two wrong passwords lock an address; more than 100 fixtures come
        // from one IP.
        c.lockout.max_failures = 2;
        c.lockout.ip_max_failures = 100_000;
    })
    .await;
    let rp = TestRp::start(&app, NewClient::portal("customer-portal", "customer")).await;
    let all = fixtures();
    assert!(all.len() > 100, "{}", all.len());
    for (i, f) in all.iter().enumerate() {
        let email = format!("customer{i}@example.com");
        let what = format!("{} ({email})", f.format);
        let user = imported(&app, &email, Some(&f.hash)).await;

        // The original password, through the relying party's flow: tokens.
        let first = sign_in_at(&app, &rp, &email, &f.password).await;
        assert_eq!(first.sub, user.id.as_str(), "{what}");
        assert_eq!(first.email.as_deref(), Some(email.as_str()), "{what}");
        assert_eq!(first.amr, vec!["pwd".to_owned()], "{what}");

        // The old hash is gone: the deployment's argon2id instead.
        let upgraded = stored_hash(&app, &user).await.unwrap();
        assert!(upgraded.starts_with("$argon2id$"), "{what}: {upgraded}");
        assert_ne!(upgraded, f.hash, "{what}");

        // The same password still works, now against argon2id.
        let second = sign_in_at(&app, &rp, &email, &f.password).await;
        assert_eq!(second.sub, user.id.as_str(), "{what}");
        assert_eq!(stored_hash(&app, &user).await.unwrap(), upgraded, "{what}");

        // A wrong one fails, and counts: the second locks the address.
        let wrong = format!("{}x", f.password);
        let browser = app.other_browser();
        let failed = browser.sign_in(&email, &wrong).await;
        assert_eq!(
            failed.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            failed.text()
        );
        assert!(
            failed.contains(BAD_CREDENTIALS),
            "{what}: {}",
            failed.text()
        );
        let locked = browser.sign_in(&email, &wrong).await;
        assert_eq!(
            locked.status,
            StatusCode::FORBIDDEN,
            "{what}: {}",
            locked.text()
        );
        let user_now = app.state.store.user_by_id(&user.id).await.unwrap().unwrap();
        assert!(user_now.locked_until.is_some(), "{what}");
    }
    assert_eq!(rp.sign_ins().len(), 2 * all.len());
}

async fn an_unreadable_stored_hash_is_a_wrong_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unknown = app
        .other_browser()
        .sign_in("nobody@example.com", "whatever-1")
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text()
    );
    let absurd = [
        "not a hash at all",
        "$2a$31$ULmAQR.Ni.sjyklaGtgEDu6DkjG0sdlg5qZUeItKXmPnzvwYQcx6u",
        "$argon2id$v=19$m=8192,t=1,p=1$garbage",
        "$argon2i$v=19$m=99999999,t=99,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        "pbkdf2_sha256$4000000000$salt$AAAA",
        "{SSHA}!!!!",
        "$P$",
        "AQAAAAEAACcQAAAAE",
        "   ",
    ];
    let long = "$6$".to_owned() + &"x".repeat(5000);
    for (i, value) in absurd.iter().copied().chain([long.as_str()]).enumerate() {
        let email = format!("odd{i}@example.com");
        let user = stored_as_is(&app, &email, value).await;
        let page = app.other_browser().sign_in(&email, "whatever-1").await;
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{value}: {}",
            page.text()
        );
        assert_eq!(
            without(&page, &email),
            without(&unknown, "nobody@example.com"),
            "{value}"
        );
        // Nothing is written over it.
        assert_eq!(stored_hash(&app, &user).await.as_deref(), Some(value));
    }
}

async fn an_imported_account_and_an_unknown_address_get_the_same_answer_and_count(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let bcrypt = fixture("bcrypt-2y");
    let phpass = fixture("phpass-P");
    imported(&app, "bcrypt@example.com", Some(&bcrypt.hash)).await;
    imported(&app, "phpass@example.com", Some(&phpass.hash)).await;
    imported(&app, "nopassword@example.com", None).await;
    app.create_user("own@example.com", "Own-Password-123", "Own")
        .await;
    let addresses = [
        "bcrypt@example.com",
        "phpass@example.com",
        "nopassword@example.com",
        "own@example.com",
        "unknown@example.com",
    ];
    let max = app.state.config.lockout.max_failures;
    let mut answers: Vec<Vec<(StatusCode, String)>> = Vec::new();
    for email in addresses {
        // One browser per address: the IP's count is shared, and well
        // under its limit.
        let browser = app.other_browser();
        let mut seen = Vec::new();
        for _ in 0..=max {
            let page = browser.sign_in(email, "Wrong-Password-1").await;
            seen.push((page.status, without(&page, email)));
        }
        answers.push(seen);
    }
    // Each address: the wrong-password page, until the last failure the
    // limit allows locks it.
    let first = &answers[0];
    let (before, locked) = first.split_at(usize::try_from(max - 1).unwrap());
    assert!(
        before
            .iter()
            .all(|(status, text)| *status == StatusCode::UNPROCESSABLE_ENTITY
                && text.contains(BAD_CREDENTIALS)),
        "{first:?}"
    );
    assert!(
        locked
            .iter()
            .all(|(status, _)| *status == StatusCode::FORBIDDEN),
        "{first:?}"
    );
    for (email, seen) in addresses.iter().zip(&answers) {
        assert_eq!(seen, first, "{email} is told apart from {}", addresses[0]);
    }
    // The legacy checks made taught the node a floor.
    assert!(app.state.hasher.legacy_floor() > std::time::Duration::ZERO);
}

/// A Django-style hash of 200,000 PBKDF2-SHA256 rounds (its digest is of no
/// password: only its cost matters here).
fn dear_hash() -> String {
    use base64::Engine as _;
    let digest = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    format!("pbkdf2_sha256$200000$saltsaltsalt${digest}")
}

async fn the_node_learns_the_floor_from_the_stored_hashes_at_start_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Nothing imported: no floor, no added time.
    assert_eq!(app.state.hasher.legacy_floor(), std::time::Duration::ZERO);
    imported(&app, "cheap@example.com", Some(&fixture("md5-crypt").hash)).await;
    imported(&app, "dear@example.com", Some(&dear_hash())).await;
    // A node starting on this store (a restart, another node) learns it in
    // the background.
    let node = app.spawn_beside(|_| {}).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while node.state.hasher.legacy_floor().is_zero() {
        assert!(
            std::time::Instant::now() < deadline,
            "no floor learned from the stored hashes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let floor = node.state.hasher.legacy_floor();
    // From the costliest (PBKDF2 at 200,000 rounds), not the MD5-crypt one:
    // a check of that costs a few hundred microseconds.
    let started = std::time::Instant::now();
    let md5 = idp::credentials::legacy::LegacyHash::parse(&fixture("md5-crypt").hash).unwrap();
    assert!(!md5.verify("wrong"));
    assert!(floor > started.elapsed(), "{floor:?}");
    // An unknown address on that node waits at least the floor (a lower
    // bound: a loaded machine is only slower).
    let browser = node.other_browser();
    let form = browser.page("/login").await;
    let started = std::time::Instant::now();
    let page = browser
        .submit_on(
            &form,
            "/login",
            &[("email", "unknown@example.com"), ("password", "Wrong-1")],
        )
        .await;
    assert!(
        started.elapsed() >= floor,
        "{:?} < {floor:?}",
        started.elapsed()
    );
    assert!(page.contains(BAD_CREDENTIALS), "{}", page.text());
}

/// An argon2id hash at other parameters than the deployment's (the
/// fixture's m=64 against the tests' m=8192) is sampled and timed like any
/// imported hash, while the deployment's own hashes are not.
async fn an_argon2id_hash_at_other_parameters_sets_the_floor_at_start_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("own@example.com", "Own-Password-123", "Own")
        .await;
    imported(&app, "argon@example.com", Some(&fixture("argon2id").hash)).await;
    assert_eq!(app.state.hasher.legacy_floor(), std::time::Duration::ZERO);
    let node = app.spawn_beside(|_| {}).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while node.state.hasher.legacy_floor().is_zero() {
        assert!(
            std::time::Instant::now() < deadline,
            "no floor learned from the argon2id hash at other parameters"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let floor = node.state.hasher.legacy_floor();
    // An unknown address and a wrong password for the deployment's own
    // account each wait at least that floor (lower bounds only).
    for email in ["unknown@example.com", "own@example.com"] {
        let browser = node.other_browser();
        let form = browser.page("/login").await;
        let started = std::time::Instant::now();
        let page = browser
            .submit_on(
                &form,
                "/login",
                &[("email", email), ("password", "Wrong-1")],
            )
            .await;
        assert!(
            started.elapsed() >= floor,
            "{email}: {:?} < {floor:?}",
            started.elapsed()
        );
        assert!(page.contains(BAD_CREDENTIALS), "{}", page.text());
    }
}

async fn a_change_of_password_checks_and_replaces_an_imported_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "jane@example.com";
    let user = app.create_user(email, "Own-Password-123", "Jane").await;
    app.signed_in(email, "Own-Password-123").await;
    // The hash an import would have left (put back after signing in, since
    // the sign-in would have replaced it).
    let old = fixture("django-pbkdf2-sha256");
    app.state
        .store
        .set_password_hash(&user.id, &old.hash, app.clock_now())
        .await
        .unwrap();
    let change = |current: String| {
        let app = app.clone();
        async move {
            app.submit(
                "/account/password",
                "/account/password",
                &[
                    ("current_password", &current),
                    ("password", NEW_PW),
                    ("password_confirm", NEW_PW),
                ],
            )
            .await
        }
    };
    let wrong = change(format!("{}x", old.password)).await;
    assert!(
        wrong.contains("That is not your current password."),
        "{}",
        wrong.text()
    );
    assert_eq!(stored_hash(&app, &user).await.unwrap(), old.hash);
    let right = change(old.password.clone()).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.text());
    assert!(
        right.contains("Your password was changed"),
        "{}",
        right.text()
    );
    let new = stored_hash(&app, &user).await.unwrap();
    assert!(new.starts_with("$argon2id$"), "{new}");
    let page = app.other_browser().sign_in(email, NEW_PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    let page = app.other_browser().sign_in(email, &old.password).await;
    assert!(page.contains(BAD_CREDENTIALS), "{}", page.text());
}

/// `rp`'s sign-in page in `browser`: the provider's `/login?…req=…`.
async fn flow_sign_in_page(browser: &TestApp, rp: &TestRp) -> Page {
    let mut next = rp.url("/login");
    for _ in 0..6 {
        let page = browser.page_at(&next).await;
        if !page.status.is_redirection() {
            assert_eq!(page.status, StatusCode::OK, "{next}: {}", page.text());
            assert!(page.url.contains("/login?"), "{}", page.url);
            return page;
        }
        next = tests::signin::resolve(&page.url, page.location.as_deref().unwrap());
    }
    panic!("no sign-in page from {}", rp.url("/login"));
}

async fn an_account_without_a_password_sets_one_by_mail_and_reaches_the_relying_party(
    backend: Backend,
) {
    let app = MailApp::spawn_with(backend, |c| c.captcha.difficulty = 8).await;
    let email = "imported@example.com";
    let user = imported(&app, email, None).await;
    let mut portals = Vec::new();
    for (id, theme) in [
        ("helix-support", "helix"),
        ("hosting-portal", "hosting"),
        ("customer-portal", "customer"),
    ] {
        portals.push((
            theme,
            TestRp::start(&app, NewClient::portal(id, theme)).await,
        ));
    }

    // In each portal's flow: the same answer as an unknown address, in the
    // portal's look, with the way to set a password that keeps the flow.
    for (theme, rp) in &portals {
        let browser = app.other_browser();
        let form = flow_sign_in_page(&browser, rp).await;
        let req = form.input("req").expect("the flow's request");
        let answer = browser
            .submit_on(
                &form,
                "/login",
                &[("email", email), ("password", "Guess-123")],
            )
            .await;
        let form = flow_sign_in_page(&browser, rp).await;
        let unknown = browser
            .submit_on(
                &form,
                "/login",
                &[("email", "nobody@example.com"), ("password", "Guess-123")],
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text()
        );
        assert_eq!(answer.status, unknown.status);
        let req2 = unknown.input("req").unwrap();
        assert_eq!(
            without(&answer, email).replace(&req, "REQ"),
            without(&unknown, "nobody@example.com").replace(&req2, "REQ"),
            "{theme}"
        );
        assert!(answer.contains(BAD_CREDENTIALS), "{}", answer.text());
        assert!(
            answer.body.contains(&format!("class=\"theme-{theme} ")),
            "{theme}"
        );
        let link = answer.link(SET_ONE).expect("a link to set a password");
        assert!(link.starts_with("/forgot-password?"), "{link}");
        assert!(link.contains(&format!("req={req}")), "{link}");
    }

    // Through the customer portal: the link, the mail, a new password, and
    // on to the relying party.
    let (theme, rp) = &portals[2];
    let browser = app.other_browser();
    let form = flow_sign_in_page(&browser, rp).await;
    let answer = browser
        .submit_on(
            &form,
            "/login",
            &[("email", email), ("password", "Guess-123")],
        )
        .await;
    let forgot = browser.page(&answer.link(SET_ONE).unwrap()).await;
    assert_eq!(forgot.status, StatusCode::OK, "{}", forgot.text());
    assert!(forgot.body.contains(&format!("class=\"theme-{theme} ")));
    let sent = browser
        .submit_on(&forgot, "/forgot-password", &[("email", email)])
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    let link = link_in(&app.wait_for_mail_to(email, 1).await, "/reset-password");
    let reset = browser.page(&link).await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
    let done = browser
        .submit_on(
            &reset,
            "/reset-password",
            &[("password", NEW_PW), ("password_confirm", NEW_PW)],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    let hash = stored_hash(&app, &user).await.expect("a password now");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    let sign_in_again = done.link("Sign in").expect("a way to sign in");
    assert!(
        sign_in_again.contains("req="),
        "the flow goes on: {sign_in_again}"
    );
    let mut person = Person::new(email).password(NEW_PW);
    let callback = rp.url("/cb");
    let arrived = person
        .walk(&browser, &sign_in_again, |u| u.starts_with(&callback))
        .await;
    let page = browser.page_at(&arrived).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let signed_in = rp.last_sign_in();
    assert_eq!(signed_in.sub, user.id.as_str());
    assert_eq!(signed_in.email.as_deref(), Some(email));
}

/// In Chromium, from the helix portal's themed sign-in page to the relying
/// party's page on its own origin: a bcrypt (PHP) and a phpass (older
/// WordPress) customer, each with their old password; the console holds no
/// Content-Security-Policy violation.
async fn bcrypt_and_phpass_accounts_sign_in_at_the_relying_party_in_a_portal_theme(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let rp = TestRp::start(&app, NewClient::portal("helix-support", "helix")).await;
    for format in ["bcrypt-2y", "phpass-P"] {
        let f = fixture(format);
        let email = format!("{format}@example.com");
        let user = imported(&app, &email, Some(&f.hash)).await;
        let browser = Browser::start().await;
        browser.open(&rp.url("/login")).await;
        wait_for_themed_sign_in(&browser, "helix").await;
        browser.assert_clean_console("the sign-in page").await;
        sign_in(&browser, &email, &f.password).await;
        browser.wait_for_address(&rp.url("/cb")).await;
        let shown = browser
            .wait_until(
                "the claims on the relying party's page",
                "const e = document.getElementById('sub'); return e ? e.innerText.trim() : null;",
                vec![],
            )
            .await;
        assert_eq!(shown, json!(user.id.as_str()), "{format}");
        assert_eq!(rp.last_sign_in().sub, user.id.as_str());
        let hash = stored_hash(&app, &user).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{format}: {hash}");
        browser
            .assert_clean_console(&format!("the {format} sign-in and the relying party"))
            .await;
        save_screenshot(&browser, &format!("imported-{format}-signed-in")).await;
        browser.quit().await;
    }
}
