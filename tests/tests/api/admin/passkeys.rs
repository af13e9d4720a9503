//! A user's passkeys through the admin API (issue 16, item 4): an
//! administrator sees each passkey by name, never its credential, and
//! removes the one that was lost; the removal is audited and the owner sees
//! it on their recent activity.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    administrator_lists_and_removes_passkeys_one_by_one,
    only_administrators_see_or_remove_passkeys,
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
