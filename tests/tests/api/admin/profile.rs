//! Correcting an account (`PATCH /admin/api/users/{id}`) and the dashboard
//! counts (`GET /admin/api/summary`).

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    administrator_corrects_a_name_and_an_email,
    summary_counts_follow_what_happens,
);

async fn patch(app: &TestApp, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
    let r = app
        .http
        .patch(app.admin_url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `detail.changed` of every `admin.user_updated` event, oldest first.
async fn changes(app: &TestApp) -> Vec<Value> {
    let mut events: Vec<Value> = app
        .state
        .store
        .audit_events(None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == "admin.user_updated")
        .map(|e| e.event.detail["changed"].clone())
        .collect();
    events.reverse();
    events
}

async fn administrator_corrects_a_name_and_an_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    app.create_user("bob@example.com", PW, "Bob").await;
    let path = format!("/admin/api/users/{}", jane.id);

    // The name alone: the address stays verified.
    let (status, user) = patch(&app, &path, &token, r#"{"name": "Jane Doe"}"#).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["name"], "Jane Doe");
    assert_eq!(user["email"], "jane@example.com");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["mfa_enabled"], false, "the same body as GET");
    let (_, shown) = get(&app, &path, &token).await;
    assert_eq!(shown, user);

    // A new address is unverified, and the owner signs in with it.
    let reset = post(&app, &format!("{path}/send-password-reset"), &token).await;
    assert_eq!(reset.0, StatusCode::OK);
    let mail = app.state.store.list_mail(None, 10).await.unwrap();
    let body = &mail
        .iter()
        .find(|m| m.mail.recipient == "jane@example.com")
        .unwrap()
        .mail
        .body_text;
    let start = body.find("/reset-password?token=").unwrap();
    let old_link: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert_eq!(app.page(&old_link).await.status, StatusCode::OK);
    let (status, user) = patch(&app, &path, &token, r#"{"email": "Jane.Doe@EXAMPLE.com"}"#).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "Jane.Doe@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(
        app.other_browser()
            .sign_in("jane.doe@example.com", PW)
            .await
            .status,
        StatusCode::SEE_OTHER,
        "signs in with the new address"
    );
    assert_ne!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status,
        StatusCode::SEE_OTHER,
        "not with the old one"
    );
    assert_eq!(
        app.page(&old_link).await.status,
        StatusCode::GONE,
        "a reset link mailed to the old address no longer works"
    );

    // Both at once; then only the case of the address: still verified.
    let (status, user) = patch(
        &app,
        &path,
        &token,
        r#"{"email": "jd@example.com", "email_verified": true}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email_verified"], true);
    let (status, user) = patch(&app, &path, &token, r#"{"email": "JD@example.com"}"#).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email"], "JD@example.com");
    assert_eq!(user["email_verified"], true);
    let (status, user) = patch(&app, &path, &token, r#"{"email_verified": false}"#).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["email_verified"], false);

    // Refused: nothing changes, nothing is recorded.
    let before = app.state.store.user_by_id(&jane.id).await.unwrap().unwrap();
    let long_name = format!(r#"{{"name": "{}"}}"#, "x".repeat(201));
    for (body, status, error) in [
        (
            r#"{"email": "BOB@example.com"}"#,
            StatusCode::CONFLICT,
            "conflict",
        ),
        (
            r#"{"email": "not-an-email"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (r#"{"role": "god"}"#, StatusCode::BAD_REQUEST, "bad_request"),
        (
            r#"{"name": "Eve", "is_admin": true}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            r#"{"email_verified": "yes"}"#,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (long_name.as_str(), StatusCode::BAD_REQUEST, "bad_request"),
        ("not json", StatusCode::BAD_REQUEST, "bad_request"),
    ] {
        let (got, answer) = patch(&app, &path, &token, body).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert_eq!(answer["error"], error, "{body} -> {answer}");
        assert!(answer["message"].is_string(), "{body} -> {answer}");
    }
    let nobody = "/admin/api/users/0190a5a4-0000-7000-8000-000000000000";
    let (status, _) = patch(&app, nobody, &token, r#"{"name": "Ghost"}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let after = app.state.store.user_by_id(&jane.id).await.unwrap().unwrap();
    assert_eq!(after, before, "refusals change nothing");

    assert_eq!(
        changes(&app).await,
        [
            json!(["name"]),
            json!(["email", "email_verified"]),
            json!(["email", "email_verified"]),
            json!(["email"]),
            json!(["email_verified"]),
        ]
    );
    let updated: Vec<_> = admin_events(&app)
        .await
        .into_iter()
        .filter(|e| e.0 == "admin.user_updated")
        .map(|e| (e.1, e.2))
        .collect();
    assert!(
        updated.iter().all(|e| *e
            == (
                Some(format!("user:{}", admin.id)),
                Some(jane.id.to_string())
            )),
        "{updated:?}"
    );
}

async fn summary_counts_follow_what_happens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = register_client(&app, AUTOMATION, &["admin"]).await;
    let token = client_token(&app, AUTOMATION, &secret).await;
    let summary = |token: String| {
        let app = app.clone();
        async move {
            let (status, body) = get(&app, "/admin/api/summary", &token).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    assert_eq!(
        summary(token.clone()).await,
        json!({
            "users": { "total": 0, "admins": 0, "disabled": 0, "locked": 0 },
            // The automation client and the console's own.
            "clients": 2,
            "mail": { "pending": 0, "failed": 0, "sent": 0 },
        })
    );

    // Mail (before any sign-in failure mails a lock notice): one due later
    // (pending), one that failed for good, one delivered.
    let store = &app.state.store;
    let later = app.clock_now() + Duration::hours(1);
    let message = |to: &str| idp::store::OutgoingMail {
        recipient: to.into(),
        subject: "Hello".into(),
        body_text: "Hello".into(),
        body_html: None,
        sender: None,
    };
    store
        .enqueue_mail(message("a@example.com"), later)
        .await
        .unwrap();
    let failed = store
        .enqueue_mail(message("b@example.com"), later)
        .await
        .unwrap();
    let claimed = store
        .claim_due_mail(later, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for m in &claimed {
        let retry = (m.id != failed).then_some(later);
        store
            .mark_mail_attempt_failed(&m.id, "550 no such user", retry)
            .await
            .unwrap();
    }
    app.state
        .mail
        .enqueue(message("c@example.com"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mail = loop {
        let mail = summary(token.clone()).await["mail"].clone();
        if mail["sent"] == 1 || std::time::Instant::now() > deadline {
            break mail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(mail, json!({ "pending": 1, "failed": 1, "sent": 1 }));

    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let bob = app.create_user("bob@example.com", PW, "Bob").await;
    post(
        &app,
        &format!("/admin/api/users/{}/disable", bob.id),
        &token,
    )
    .await;
    post(
        &app,
        &format!("/admin/api/users/{}/grant-admin", jane.id),
        &token,
    )
    .await;
    register_client(&app, "reporting", &["openid"]).await;
    let browser = app.other_browser();
    for _ in 0..5 {
        browser
            .sign_in("jane@example.com", "wrong-password-123")
            .await;
    }
    let now = summary(token.clone()).await;
    assert_eq!(
        now["users"],
        json!({ "total": 2, "admins": 1, "disabled": 1, "locked": 1 }),
        "{now}"
    );
    assert_eq!(now["clients"], 3);

    // A lock ends with its time (the next day by default) or an administrator.
    let unlocked = post(
        &app,
        &format!("/admin/api/users/{}/unlock", jane.id),
        &token,
    )
    .await;
    assert_eq!(unlocked.0, StatusCode::OK);
    assert_eq!(summary(token.clone()).await["users"]["locked"], 0);
    for _ in 0..5 {
        browser
            .sign_in("jane@example.com", "wrong-password-123")
            .await;
    }
    assert_eq!(summary(token.clone()).await["users"]["locked"], 1);
    app.clock.advance(Duration::hours(25));
    let token = client_token(&app, AUTOMATION, &secret).await;
    assert_eq!(summary(token).await["users"]["locked"], 0);
}
