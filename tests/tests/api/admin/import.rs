//! `POST /admin/api/users/import` (issue 15, item 1): a batch of portal
//! accounts over HTTP, as `idp user import` takes them from a file.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    a_batch_is_imported_once_and_a_dry_run_writes_nothing,
    bad_records_are_refused_by_position_and_the_rest_go_in,
    batches_are_bounded_and_malformed_bodies_are_400s,
    only_administrators_import,
);

const IMPORT: &str = "/admin/api/users/import";
/// From tests/fixtures/legacy-hashes/hashes.jsonl (Python's bcrypt).
const BCRYPT: &str = "$2a$04$ULmAQR.Ni.sjyklaGtgEDu6DkjG0sdlg5qZUeItKXmPnzvwYQcx6u";

async fn import(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    send_json(app, reqwest::Method::POST, IMPORT, token, body).await
}

async fn user(app: &TestApp, email: &str) -> Option<User> {
    app.state
        .store
        .user_by_email(&idp::domain::Email::parse(email).unwrap())
        .await
        .unwrap()
}

/// Every account's address, sorted.
async fn addresses(app: &TestApp) -> Vec<String> {
    let mut all: Vec<String> = app
        .state
        .store
        .list_users(1000, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.email.as_str().to_owned())
        .collect();
    all.sort();
    all
}

async fn events_of_kind(app: &TestApp, kind: &str) -> Vec<idp::store::AuditEvent> {
    app.state
        .store
        .audit_events(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event)
        .filter(|e| e.kind == kind)
        .collect()
}

async fn a_batch_is_imported_once_and_a_dry_run_writes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    // An argon2id hash of this deployment's era: usable at once.
    let argon2id = app
        .state
        .hasher
        .hash(&idp::domain::PlainPassword::parse(PW).unwrap())
        .await
        .unwrap();
    let batch = json!({ "records": [
        { "email": "Ann@Example.com", "name": "Ann", "email_verified": true,
          "password_hash": argon2id, "external_id": "C-1", "portal": "helix",
          "created_at": "2019-04-01T10:00:00Z" },
        { "email": "bob@example.com", "name": "Bob", "email_verified": true, "password_hash": BCRYPT },
        { "email": "cy@example.com", "name": "Cy" },
    ]});
    let before = addresses(&app).await;

    let mut dry = batch.clone();
    dry["dry_run"] = json!(true);
    let (status, summary) = import(&app, &token, &dry).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        summary,
        json!({ "imported": 3, "updated": 0, "linked": 0, "skipped": 0, "refused": [], "written": false })
    );
    assert_eq!(addresses(&app).await, before, "a dry run writes nothing");
    assert!(
        events_of_kind(&app, "admin.users_imported")
            .await
            .is_empty()
    );

    let (status, summary) = import(&app, &token, &batch).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(
        summary,
        json!({ "imported": 3, "updated": 0, "linked": 0, "skipped": 0, "refused": [], "written": true })
    );
    let ann = user(&app, "ann@example.com").await.expect("Ann imported");
    assert_eq!(ann.name, "Ann");
    assert_eq!(ann.created_at.year(), 2019);
    let ids = app.state.store.external_ids(&ann.id).await.unwrap();
    assert_eq!(
        ids.iter()
            .map(|i| (i.portal.as_str(), i.external_id.as_str()))
            .collect::<Vec<_>>(),
        [("helix", "C-1")]
    );
    let bob = user(&app, "bob@example.com").await.expect("Bob imported");
    assert_eq!(
        bob.password_hash.as_deref(),
        Some(BCRYPT),
        "stored as it came"
    );
    let cy = user(&app, "cy@example.com").await.expect("Cy imported");
    assert_eq!(cy.password_hash, None, "no usable password yet");
    // Ann's argon2id hash signs her in through the sign-in page.
    let page = app.sign_in("ann@example.com", PW).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());

    // Audited: the run as an administrator's action, and each account.
    let runs = events_of_kind(&app, "admin.users_imported").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].actor.as_deref(), Some("client:automation"));
    assert_eq!(runs[0].detail["imported"], 3);
    let imported = events_of_kind(&app, "user.imported").await;
    assert_eq!(imported.len(), 3);
    assert!(
        imported
            .iter()
            .all(|e| e.actor.as_deref() == Some("client:automation")),
        "{imported:?}"
    );
    assert!(
        !format!("{imported:?}").contains(BCRYPT),
        "never the hash in the trail"
    );

    // Again: nothing new, nothing changed, and a person administrator too.
    let (_, root_token) = console_admin(&app, "root@example.com").await;
    let (status, summary) = import(&app, &root_token, &batch).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["skipped"], 3, "{summary}");
    assert_eq!(summary["imported"], 0, "{summary}");
    assert_eq!(user(&app, "bob@example.com").await.unwrap(), bob);
}

async fn bad_records_are_refused_by_position_and_the_rest_go_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let records = json!([
        { "email": "one@example.com", "name": "One" },
        { "email": "not an address" },
        { "email": "hash@example.com", "password_hash": "$unknown$abc" },
        42,
        { "email": "typo@example.com", "pasword_hash": BCRYPT },
        { "email": "two@example.com", "name": "Two", "password_hash": BCRYPT },
        { "email": "ONE@example.com", "name": "One again" },
        { "email": "where@example.com", "portal": "no-such-portal", "external_id": "9" },
    ]);
    let before = addresses(&app).await;

    // All or nothing: one bad record, nothing written.
    let (status, summary) = import(
        &app,
        &token,
        &json!({ "records": records, "all_or_nothing": true }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["written"], false, "{summary}");
    assert_eq!(addresses(&app).await, before, "all or nothing: nothing");

    let (status, summary) = import(&app, &token, &json!({ "records": records })).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["imported"], 2, "{summary}");
    let refused: Vec<(u64, String)> = summary["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lines: Vec<u64> = refused.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [2, 3, 4, 5, 7, 8], "{summary}");
    for (line, reason) in &refused {
        assert!(!reason.is_empty(), "line {line} says why");
        assert!(
            !reason.contains("RecordInput")
                && !reason.contains("idp::")
                && !reason.contains("sqlx"),
            "line {line}: {reason}"
        );
        assert!(!reason.contains(BCRYPT), "never the hash: {reason}");
    }
    assert!(refused[4].1.contains("line 1"), "{:?}", refused[4]);
    assert!(refused[5].1.contains("no-such-portal"), "{:?}", refused[5]);
    let mut expected = before.clone();
    expected.extend(["one@example.com".to_owned(), "two@example.com".to_owned()]);
    expected.sort();
    assert_eq!(addresses(&app).await, expected);
    assert_eq!(user(&app, "one@example.com").await.unwrap().name, "One");
}

async fn batches_are_bounded_and_malformed_bodies_are_400s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let before = addresses(&app).await;

    let too_many: Vec<Value> = (0..=idp::admin_api::IMPORT_MAX_RECORDS)
        .map(|i| json!({ "email": format!("u{i}@example.com") }))
        .collect();
    let (status, answer) = import(&app, &token, &json!({ "records": too_many })).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"], "too_large");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("10000 records"),
        "{answer}"
    );

    let huge = "x".repeat(idp::admin_api::IMPORT_MAX_BODY_BYTES);
    let (status, answer) = import(
        &app,
        &token,
        &json!({ "records": [{ "email": "big@example.com", "name": huge }] }),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"], "too_large");

    for body in [
        "{",
        "[]",
        "{}",
        r#"{"records": {}}"#,
        r#"{"records": [], "dry_run": "yes"}"#,
        r#"{"records": [], "colour": "red"}"#,
        "5",
        r#""records""#,
    ] {
        let r = app
            .http
            .post(app.admin_url(IMPORT))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["error"], "bad_request", "{body}: {answer}");
        // Says what is wrong in words, never the server's type names.
        let message = answer["message"].as_str().unwrap();
        assert!(
            !message.contains("struct") && !message.contains("Body"),
            "{body}: {message}"
        );
    }
    let r = app
        .http
        .post(app.admin_url(IMPORT))
        .bearer_auth(&token)
        .body(r#"{"records": []}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "no JSON content type");
    assert_eq!(addresses(&app).await, before, "nothing written");
    assert!(
        events_of_kind(&app, "admin.users_imported")
            .await
            .is_empty()
    );
}

async fn only_administrators_import(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let plain = app.create_user("plain@example.com", PW, "Plain").await;
    let console = idp::admin_api::CONSOLE_CLIENT_ID;
    let not_admin = user_token(&app, &plain, console, &["pwd", "otp"]);
    let secret = register_client(&app, "reporting", &["openid"]).await;
    let no_scope = client_token(&app, "reporting", &secret).await;
    let batch = json!({ "records": [{ "email": "mallory@example.com" }] });
    for (token, status) in [
        (Some(not_admin.as_str()), StatusCode::FORBIDDEN),
        (Some(no_scope.as_str()), StatusCode::FORBIDDEN),
        (Some("not.a.jwt"), StatusCode::UNAUTHORIZED),
        (None, StatusCode::UNAUTHORIZED),
    ] {
        let mut request = app.http.post(app.admin_url(IMPORT)).json(&batch);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), status);
    }
    assert!(user(&app, "mallory@example.com").await.is_none());
    assert!(events_of_kind(&app, "user.imported").await.is_empty());
}
