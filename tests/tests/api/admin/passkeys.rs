//! A user's passkeys through the admin API and the console (issue 16,
//! item 4): an administrator sees each passkey by name, never its
//! credential, and removes the one that was lost; the removal is audited
//! and the owner sees it on their recent activity.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::pages::{Admin, flash, signed_in};
use super::*;
use crate::{Backend, TestApp};
use tests::browser::Page;

on_both_backends!(
    administrator_lists_and_removes_passkeys_one_by_one,
    only_administrators_see_or_remove_passkeys,
    the_console_shows_a_users_passkeys_and_removes_one_after_asking,
    removing_a_passkey_from_the_console_needs_the_sessions_csrf_token,
);

/// Stands for the credential as webauthn-rs serialises it: it must never
/// leave the server.
const CREDENTIAL: &str = "{\"cred\":\"SECRET-PUBLIC-KEY-MATERIAL\"}";

/// Stores a passkey for `user` as a registration would; returns our id.
async fn passkey(app: &TestApp, user: &User, name: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let new = idp::store::NewPasskey {
        id: id.clone(),
        name: name.into(),
        credential_id: format!("CRED-ID-{id}"),
        credential: CREDENTIAL.into(),
    };
    app.state
        .store
        .add_passkey(&user.id, new, app.clock_now())
        .await
        .unwrap();
    id
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let r = call(app, reqwest::Method::DELETE, path, Some(token)).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn names(app: &TestApp, user: &User) -> Vec<String> {
    let stored = app.state.store.passkeys(&user.id).await.unwrap();
    stored.into_iter().map(|p| p.name).collect()
}

async fn administrator_lists_and_removes_passkeys_one_by_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let bob = app.create_user("bob@example.com", PW, "Bob").await;
    let list = format!("/admin/api/users/{}/passkeys", jane.id);

    let (status, page) = get(&app, &list, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], json!([]), "none yet");

    let laptop = passkey(&app, &jane, "Laptop").await;
    let phone = passkey(&app, &jane, "Phone").await;
    let bobs = passkey(&app, &bob, "Bob's key").await;

    let r = call(&app, reqwest::Method::GET, &list, Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let raw = r.text().await.unwrap();
    assert!(
        !raw.contains("SECRET-PUBLIC-KEY-MATERIAL") && !raw.contains("CRED-ID-"),
        "never the credential or its id: {raw}"
    );
    let page: Value = serde_json::from_str(&raw).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "Jane's only: {page}");
    assert_eq!(items[0]["id"], laptop.as_str());
    assert_eq!(items[0]["name"], "Laptop");
    assert_eq!(items[1]["id"], phone.as_str());
    assert!(items[0]["created_at"].as_str().unwrap().contains('T'));
    assert_eq!(items[0]["last_used_at"], Value::Null);
    let mut keys: Vec<&str> = items[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "id", "last_used_at", "name"]);

    // Another user's passkey, or an unknown one, is not Jane's: 404, nothing removed.
    for other in [bobs.as_str(), "no-such-passkey"] {
        let (status, body) = delete(&app, &format!("{list}/{other}"), &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{other}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    assert_eq!(names(&app, &bob).await, ["Bob's key"]);
    let (status, _) = get(&app, "/admin/api/users/no-such-user/passkeys", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = delete(&app, &format!("{list}/{laptop}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(names(&app, &jane).await, ["Phone"]);
    let event = latest_event(&app, &jane.id, "admin.passkey_removed").await;
    assert_eq!(event.actor, Some(format!("user:{}", admin.id)));
    assert_eq!(
        event.detail,
        json!({ "passkey_id": laptop, "name": "Laptop" })
    );
    // Gone: a second removal finds nothing.
    let (status, _) = delete(&app, &format!("{list}/{laptop}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Unlike the owner, an administrator may take the last passkey.
    let (status, body) = delete(&app, &format!("{list}/{phone}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(names(&app, &jane).await.is_empty());
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"], json!([]));

    // The owner sees it on their recent activity.
    app.signed_in("jane@example.com", PW).await;
    let activity = app.page("/account/activity").await.text();
    assert!(
        activity.contains("Passkey removed by an administrator"),
        "{activity}"
    );
}

async fn only_administrators_see_or_remove_passkeys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let id = passkey(&app, &jane, "Laptop").await;
    let list = format!("/admin/api/users/{}/passkeys", jane.id);
    // Jane herself, with a console token but no admin role.
    let token = user_token(
        &app,
        &jane,
        idp::admin_api::CONSOLE_CLIENT_ID,
        &["pwd", "otp"],
    );
    for (method, path) in [
        (reqwest::Method::GET, list.clone()),
        (reqwest::Method::DELETE, format!("{list}/{id}")),
    ] {
        let r = call(&app, method.clone(), &path, Some(&token)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("Laptop"), "{body}");
        let r = call(&app, method.clone(), &path, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    assert_eq!(names(&app, &jane).await, ["Laptop"]);
    assert_eq!(admin_events(&app).await, [], "nothing recorded");
}

// ---------------------------------------------------------------- the console

/// The passkeys table of a user's console page: name, added, last used.
fn passkey_rows(page: &Page) -> Vec<[String; 3]> {
    let row = scraper::Selector::parse("#passkeys tbody tr").unwrap();
    let cell = scraper::Selector::parse("td").unwrap();
    page.html()
        .select(&row)
        .map(|r| {
            let cells: Vec<String> = r
                .select(&cell)
                .map(|c| c.text().collect::<String>().trim().to_owned())
                .collect();
            [cells[0].clone(), cells[1].clone(), cells[2].clone()]
        })
        .collect()
}

/// Where the page's "Remove" buttons of passkeys post.
fn remove_actions(page: &Page) -> Vec<String> {
    let form = scraper::Selector::parse("#passkeys form").unwrap();
    page.html()
        .select(&form)
        .filter_map(|f| f.value().attr("action").map(str::to_owned))
        .collect()
}

/// A stored passkey's `created_at` as the console shows it (UTC here).
async fn added(app: &TestApp, user: &User, id: &str) -> String {
    let stored = app.state.store.passkeys(&user.id).await.unwrap();
    let at = stored.iter().find(|p| p.id == id).unwrap().created_at;
    format!(
        "{}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

async fn removals(app: &TestApp) -> usize {
    let events = admin_events(app).await;
    let removed = events.iter().filter(|e| e.0 == "admin.passkey_removed");
    removed.count()
}

async fn user_page(admin: &Admin, app: &TestApp, user: &User) -> Page {
    let path = format!("/admin/users/{}", user.id);
    let page = admin.browser.page_at(&app.admin_url(&path)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    page
}

async fn the_console_shows_a_users_passkeys_and_removes_one_after_asking(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, root, _) = signed_in(&app).await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let bob = app.create_user("bob@example.com", PW, "Bob").await;
    let page = user_page(&admin, &app, &jane).await;
    assert!(page.contains("No passkey."), "{}", page.text());
    assert!(page.contains("password only"), "{}", page.text());

    let laptop = passkey(&app, &jane, "Laptop").await;
    let phone = passkey(&app, &jane, "Phone").await;
    let bobs = passkey(&app, &bob, "Bob's key").await;

    // Jane's page: her two, by name, when added, never used; not Bob's.
    let page = user_page(&admin, &app, &jane).await;
    let never = "Never".to_owned();
    assert_eq!(
        passkey_rows(&page),
        [
            [
                "Laptop".into(),
                added(&app, &jane, &laptop).await,
                never.clone()
            ],
            [
                "Phone".into(),
                added(&app, &jane, &phone).await,
                never.clone()
            ],
        ]
    );
    assert!(!page.contains("Bob's key") && !page.contains("CRED-ID-"));
    // She signs in with more than a password now: the badge says so.
    assert!(!page.contains("password only"), "{}", page.text());
    let jane_path = format!("/admin/users/{}", jane.id);
    assert_eq!(
        remove_actions(&page),
        [
            format!("{jane_path}/passkeys/{laptop}/remove"),
            format!("{jane_path}/passkeys/{phone}/remove"),
        ]
    );
    let bob_page = user_page(&admin, &app, &bob).await;
    let rows = passkey_rows(&bob_page);
    assert_eq!(rows.len(), 1, "Bob's only: {rows:?}");
    assert_eq!(rows[0][0], "Bob's key");

    // Remove: first the question, naming the passkey and the account.
    let action = format!("{jane_path}/passkeys/{laptop}/remove");
    let ask = admin.post(&app, &page, &action, &[]).await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.text());
    assert!(
        ask.contains("Remove the passkey “Laptop” of jane@example.com?"),
        "{}",
        ask.text()
    );
    assert_eq!(names(&app, &jane).await, ["Laptop", "Phone"], "not yet");

    // Confirmed: that one only, said, audited with the administrator and
    // their browser.
    let done = admin
        .post(&app, &ask, &action, &[("confirmed", "yes")])
        .await;
    let after = admin.follow(&app, &done).await;
    assert_eq!(flash(&after), "The passkey was removed.");
    let rows = passkey_rows(&after);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "Phone");
    assert_eq!(names(&app, &jane).await, ["Phone"]);
    assert_eq!(names(&app, &bob).await, ["Bob's key"]);
    let event = latest_event(&app, &jane.id, "admin.passkey_removed").await;
    assert_eq!(event.actor, Some(format!("user:{}", root.id)));
    assert_eq!(
        event.detail,
        json!({ "passkey_id": laptop, "name": "Laptop" })
    );
    assert_eq!(event.user_agent.as_deref(), Some(tests::USER_AGENT));

    // Bob's passkey through Jane's page, an unknown or a removed one: the
    // console's "Not found" when asked, the API's refusal once confirmed;
    // nothing removed either way.
    for other in [bobs.as_str(), "no-such-passkey", laptop.as_str()] {
        let action = format!("{jane_path}/passkeys/{other}/remove");
        let ask = admin.post(&app, &after, &action, &[]).await;
        assert_eq!(ask.status, StatusCode::NOT_FOUND, "{other}: {}", ask.text());
        assert!(
            ask.contains("This user has no passkey with this id"),
            "{other}: {}",
            ask.text()
        );
        let refused = admin
            .post(&app, &after, &action, &[("confirmed", "yes")])
            .await;
        let back = admin.follow(&app, &refused).await;
        assert_eq!(back.status, StatusCode::OK, "{other}");
        assert_eq!(flash(&back), "This user has no passkey with this id");
    }
    let action = format!("/admin/users/no-such-user/passkeys/{phone}/remove");
    let ask = admin.post(&app, &after, &action, &[]).await;
    assert_eq!(ask.status, StatusCode::NOT_FOUND, "{}", ask.text());
    assert_eq!(names(&app, &jane).await, ["Phone"]);
    assert_eq!(names(&app, &bob).await, ["Bob's key"]);
    assert_eq!(removals(&app).await, 1, "the one removal only");
}

async fn removing_a_passkey_from_the_console_needs_the_sessions_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _, _) = signed_in(&app).await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let laptop = passkey(&app, &jane, "Laptop").await;
    let action = format!("/admin/users/{}/passkeys/{laptop}/remove", jane.id);

    // A second console session of the same administrator: a real token,
    // but not this session's.
    app.clock.advance(time::Duration::seconds(60));
    let mut other = Admin::new(&app);
    other.person.totp = admin.person.totp.clone();
    let elsewhere = other.open(&app, "/admin/", "root@example.com").await;
    let foreign = elsewhere.input("csrf").expect("a CSRF token");
    let own = user_page(&admin, &app, &jane).await.input("csrf").unwrap();
    assert_ne!(foreign, own);

    let confirmed = ("confirmed".to_owned(), "yes".to_owned());
    for (case, values) in [
        ("no token", vec![confirmed.clone()]),
        (
            "a forged token",
            vec![("csrf".to_owned(), "x".repeat(43)), confirmed.clone()],
        ),
        (
            "another session's token",
            vec![("csrf".to_owned(), foreign.clone()), confirmed.clone()],
        ),
    ] {
        let refused = admin.post_raw(&app, &action, &values).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{case}");
        assert!(refused.contains("The form is out of date"), "{case}");
        assert_eq!(names(&app, &jane).await, ["Laptop"], "{case}");
    }
    assert_eq!(removals(&app).await, 0, "nothing recorded");

    // The session's own token works.
    let values = [("csrf".to_owned(), own), confirmed];
    let done = admin.post_raw(&app, &action, &values).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text());
    assert!(names(&app, &jane).await.is_empty());
}
