//! The account's signed-in devices (`/account/sessions`): a person sees
//! where they are signed in, signs out a device they no longer use, or
//! every device but the one in hand; a form cannot name anyone else's
//! session, and a forged one (no CSRF token) changes nothing. The account's
//! recent activity (`/account/activity`) shows what happened to it.

use reqwest::StatusCode;
use tests::browser::Page;

use crate::{Backend, TestApp};

on_both_backends!(
    a_person_signs_out_a_device_they_no_longer_use,
    signing_out_every_other_device_keeps_this_one,
    the_owner_sees_what_happened_to_the_account,
);

const PW: &str = "Correct-Horse-Battery-9";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0";
const EDGE_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0";
const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36";

/// Whether `browser` is still signed in (the account page opens).
async fn signed_in(browser: &TestApp) -> bool {
    browser.page("/account").await.status == StatusCode::OK
}

/// Clicks the button reading `text` on `page`, as `browser`.
async fn press(browser: &TestApp, page: &Page, text: &str) -> Page {
    let (action, fields) = page
        .button_form(text)
        .unwrap_or_else(|| panic!("no button {text:?}: {}", page.text()));
    browser.post(&action, &fields).await
}

async fn a_person_signs_out_a_device_they_no_longer_use(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    app.create_user("bob@example.com", PW, "Bob").await;
    let laptop = app.browser_as(FIREFOX_LINUX);
    let library = app.browser_as(EDGE_WINDOWS);
    let bobs = app.browser_as(CHROME_ANDROID);
    let laptop_cookie = laptop.signed_in("jane@example.com", PW).await;
    let library_cookie = library.signed_in("jane@example.com", PW).await;
    let bobs_cookie = bobs.signed_in("bob@example.com", PW).await;

    let account = laptop.page("/account").await;
    let link = account
        .link("Signed-in devices")
        .expect("linked from the account page");
    let page = laptop.page(&link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let text = page.text();
    assert!(text.contains("Firefox on Linux This device"), "{text}");
    assert!(text.contains("Edge on Windows"), "{text}");
    assert!(
        text.contains("127.0.0.1"),
        "where it signed in from: {text}"
    );
    assert!(
        !text.contains("Chrome on Android"),
        "Bob's device is not Jane's: {text}"
    );
    assert!(
        !page.body.contains(&library_cookie),
        "a session's id never reaches a page"
    );
    assert!(
        page.button_form("Sign out Firefox on Linux").is_none(),
        "this device signs out with Sign out"
    );

    // A form without its CSRF token changes nothing.
    let (action, mut fields) = page.button_form("Sign out Edge on Windows").unwrap();
    fields.retain(|(k, _)| k != "csrf_token");
    let forged = laptop.post(&action, &fields).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(signed_in(&library).await);

    let done = press(&laptop, &page, "Sign out Edge on Windows").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert!(
        done.contains("That device is signed out"),
        "{}",
        done.text()
    );
    assert!(!done.contains("Edge on Windows"), "{}", done.text());
    assert!(
        !signed_in(&library).await,
        "the library computer is signed out"
    );
    assert!(signed_in(&laptop).await, "the laptop is not");
    assert!(signed_in(&bobs).await, "nor is Bob");

    // The same button again (a second tab): nothing left to end.
    let again = press(&laptop, &page, "Sign out Edge on Windows").await;
    assert!(
        again.contains("That device is no longer signed in here"),
        "{}",
        again.text()
    );
    // Nor can a form name Bob's session or this one.
    let (action, mut fields) = page.button_form("Sign out Edge on Windows").unwrap();
    for cookie in [&bobs_cookie, &laptop_cookie] {
        let target = idp::web::session::handle(cookie);
        fields.retain(|(k, _)| k != "end");
        fields.push(("end".into(), target));
        let refused = laptop.post(&action, &fields).await;
        assert!(
            refused.contains("no longer signed in here"),
            "{}",
            refused.text()
        );
    }
    assert!(signed_in(&bobs).await);
    assert!(signed_in(&laptop).await);

    let events = app
        .state
        .store
        .audit_events(Some(&jane.id), 50)
        .await
        .unwrap();
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == "session.ended")
        .collect();
    assert_eq!(ended.len(), 1, "{events:#?}");
    assert_eq!(
        ended[0].event.user_agent.as_deref(),
        Some(FIREFOX_LINUX),
        "recorded with the device that did it"
    );
}

async fn signing_out_every_other_device_keeps_this_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    let devices = [FIREFOX_LINUX, EDGE_WINDOWS, CHROME_ANDROID].map(|ua| app.browser_as(ua));
    for d in &devices {
        d.signed_in("jane@example.com", PW).await;
    }
    let [laptop, library, phone] = &devices;
    let page = phone.page("/account/sessions").await;
    assert!(
        page.contains("Chrome on Android This device"),
        "{}",
        page.text()
    );
    let done = press(phone, &page, "Sign out every other device").await;
    assert!(
        done.contains("Every other device is signed out"),
        "{}",
        done.text()
    );
    assert!(!signed_in(laptop).await);
    assert!(!signed_in(library).await);
    assert!(signed_in(phone).await, "the phone stays signed in");
    assert!(
        done.button_form("Sign out every other device").is_none(),
        "nothing else to sign out: {}",
        done.text()
    );
    let events = app.state.store.audit_events(None, 50).await.unwrap();
    let ended = events
        .iter()
        .find(|e| e.event.kind == "session.others_ended")
        .expect("audited");
    assert_eq!(ended.event.detail["count"], 2);
}

async fn the_owner_sees_what_happened_to_the_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane").await;
    app.create_user("bob@example.com", PW, "Bob").await;
    // Someone tries Jane's password from a phone; Bob signs in.
    let stranger = app.browser_as(CHROME_ANDROID);
    stranger
        .sign_in("jane@example.com", "Guess-Number-1234")
        .await;
    app.browser_as(EDGE_WINDOWS)
        .signed_in("bob@example.com", PW)
        .await;
    let laptop = app.browser_as(FIREFOX_LINUX);
    app.clock.advance(time::Duration::minutes(5));
    laptop.signed_in("jane@example.com", PW).await;
    let account = laptop.page("/account").await;
    let link = account
        .link("Recent activity")
        .expect("linked from the account page");
    let activity = laptop.page(&link).await;
    assert_eq!(activity.status, StatusCode::OK, "{}", activity.text());
    let entries: Vec<String> = activity
        .html()
        .select(&scraper::Selector::parse("#activity li").unwrap())
        .map(|li| {
            li.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    assert!(entries.len() >= 2, "{entries:#?}");
    assert!(
        entries[0].starts_with("Signed in") && entries[0].contains("Firefox on Linux"),
        "newest first, with the device: {entries:#?}"
    );
    assert!(
        entries[1].starts_with("Wrong password entered at sign-in")
            && entries[1].contains("Chrome on Android")
            && entries[1].contains("127.0.0.1"),
        "the stranger's attempt, with where it came from: {entries:#?}"
    );
    assert!(
        !entries.iter().any(|e| e.contains("Edge on Windows")),
        "Bob's sign-in is not Jane's: {entries:#?}"
    );
}
