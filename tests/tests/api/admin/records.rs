//! The audit trail, the mail outbox and the signing keys through the admin API.

use reqwest::StatusCode;
use serde_json::Value;
use time::Duration;

use super::*;
use crate::{Backend, TestApp};
use time::format_description::well_known::Rfc3339;

on_both_backends!(
    audit_events_filter_by_user_type_and_time,
    outbox_and_signing_keys
);

// ---------------------------------------------------------------- audit trail

async fn audit_events_filter_by_user_type_and_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let john = app.create_user("john@example.com", PW, "John").await;

    // An hour apart, each with a token fresh at the time.
    let start = app.clock_now();
    for (i, (user, action)) in [(&jane, "disable"), (&jane, "enable"), (&john, "disable")]
        .into_iter()
        .enumerate()
    {
        app.clock.set(start + Duration::hours(i as i64));
        let token = user_token(&app, &admin, idp::admin_api::CONSOLE_CLIENT_ID, &["otp"]);
        let path = format!("/admin/api/users/{}/{action}", user.id);
        let (status, body) = post(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let token = user_token(&app, &admin, idp::admin_api::CONSOLE_CLIENT_ID, &["otp"]);

    let kinds = |page: &Value| -> Vec<(String, String)> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["type"].as_str().unwrap().to_owned(),
                    e["user_id"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    };
    let jane_id = jane.id.to_string();
    let john_id = john.id.to_string();
    let at = |t: time::OffsetDateTime| t.format(&Rfc3339).unwrap().replace('+', "%2B");

    let (status, page) = get(
        &app,
        &format!("/admin/api/audit-events?user_id={jane_id}"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        kinds(&page),
        [
            ("admin.user_enabled".into(), jane_id.clone()),
            ("admin.user_disabled".into(), jane_id.clone()),
        ],
        "most recent first"
    );
    assert_eq!(
        page["items"][0]["actor"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("user")
    );
    // Who, by address: the account concerned and the acting administrator.
    assert_eq!(page["items"][0]["user_email"], "jane@example.com");
    assert_eq!(page["items"][0]["actor_email"], "root@example.com");
    assert_eq!(page["next_cursor"], Value::Null);

    let (_, page) = get(
        &app,
        "/admin/api/audit-events?type=admin.user_disabled",
        &token,
    )
    .await;
    assert_eq!(
        kinds(&page),
        [
            ("admin.user_disabled".into(), john_id.clone()),
            ("admin.user_disabled".into(), jane_id.clone()),
        ]
    );

    // A time range: [since, until).
    let since = at(start + Duration::minutes(30));
    let until = at(start + Duration::minutes(90));
    let (_, page) = get(
        &app,
        &format!("/admin/api/audit-events?type=admin.user_enabled&since={since}&until={until}"),
        &token,
    )
    .await;
    assert_eq!(
        kinds(&page),
        [("admin.user_enabled".into(), jane_id.clone())]
    );
    let (_, page) = get(
        &app,
        &format!("/admin/api/audit-events?since={since}&until={until}&user_id={john_id}"),
        &token,
    )
    .await;
    assert_eq!(kinds(&page), Vec::<(String, String)>::new());

    // Pages of one, following the cursor, cover the same events.
    let mut seen = Vec::new();
    let mut path = "/admin/api/audit-events?type=admin.user_disabled&limit=1".to_string();
    loop {
        let (status, page) = get(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(kinds(&page));
        match page["next_cursor"].as_str() {
            Some(c) => {
                path =
                    format!("/admin/api/audit-events?type=admin.user_disabled&limit=1&cursor={c}")
            }
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            ("admin.user_disabled".into(), john_id),
            ("admin.user_disabled".into(), jane_id),
        ]
    );

    for path in [
        "/admin/api/audit-events?since=yesterday",
        "/admin/api/audit-events?until=2026-13-01T00:00:00Z",
        "/admin/api/audit-events?user_id=nobody",
        "/admin/api/audit-events?cursor=abc",
        "/admin/api/audit-events?limit=-1",
    ] {
        let (status, body) = get(&app, path, &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"], "bad_request", "{path}");
    }
}

// ---------------------------------------------------------------- outbox and keys

async fn outbox_and_signing_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let actor = Some(format!("client:{AUTOMATION}"));
    let store = &app.state.store;

    // A message that failed for good; due in an hour, so this node's worker
    // leaves it alone while the test claims it.
    let later = app.clock_now() + Duration::hours(1);
    let id = store
        .enqueue_mail(
            idp::store::OutgoingMail {
                recipient: "jane@example.com".into(),
                subject: "Reset your password".into(),
                body_text: "https://id.example.com/reset-password?token=secret".into(),
                body_html: None,
                sender: None,
            },
            later,
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due_mail(later, Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    store
        .mark_mail_attempt_failed(&id, "550 no such user", None)
        .await
        .unwrap();

    let (status, list) = get(&app, "/admin/api/mail?status=failed", &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["recipient"], "jane@example.com");
    assert_eq!(items[0]["subject"], "Reset your password");
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["last_error"], "550 no such user");
    assert!(
        !list.to_string().contains("token=secret"),
        "bodies (reset links) are never shown"
    );
    let (status, _) = get(&app, "/admin/api/mail?status=sent", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = get(&app, "/admin/api/mail?status=lost", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = post(&app, &format!("/admin/api/mail/{id}/retry"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");
    // Due now: the worker, woken, delivers it (to a file in these tests).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.list_mail(None, 10).await.unwrap()[0].status != idp::store::MailStatus::Sent {
        assert!(
            std::time::Instant::now() < deadline,
            "the retried message is sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Only a failed message can be retried.
    let (status, body) = post(&app, &format!("/admin/api/mail/{id}/retry"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Keys: one active per algorithm; a rotation publishes the next ones.
    let (status, keys) = get(&app, "/admin/api/keys", &token).await;
    assert_eq!(status, StatusCode::OK);
    let states = |keys: &Value| -> Vec<(String, String)> {
        let mut v: Vec<_> = keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                (
                    k["alg"].as_str().unwrap().to_owned(),
                    k["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect()
    };
    assert_eq!(
        states(&keys),
        pairs(&[
            ("ES256", "active"),
            ("EdDSA", "active"),
            ("RS256", "active")
        ])
    );
    let (status, rotated) = post(&app, "/admin/api/keys/rotate", &token).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let kids: Vec<String> = rotated["kids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kids.len(), 3);
    let (_, keys) = get(&app, "/admin/api/keys", &token).await;
    assert_eq!(
        states(&keys),
        pairs(&[
            ("ES256", "active"),
            ("ES256", "next"),
            ("EdDSA", "active"),
            ("EdDSA", "next"),
            ("RS256", "active"),
            ("RS256", "next"),
        ])
    );
    for k in keys["items"].as_array().unwrap() {
        assert_eq!(
            k["state"] == "next",
            kids.contains(&k["kid"].as_str().unwrap().to_owned()),
            "{k}"
        );
        assert!(k.get("private_key").is_none());
    }

    assert_eq!(
        admin_events(&app).await,
        [
            ("admin.mail_retried".into(), actor.clone(), None),
            ("admin.keys_rotated".into(), actor, None),
        ]
    );
}
