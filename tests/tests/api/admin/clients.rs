//! Relying parties through the admin API.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    clients_are_registered_edited_and_their_secrets_rotated,
    clients_are_removed_and_their_secret_dies,
    automation_cannot_lock_itself_out,
);

// ---------------------------------------------------------------- clients

async fn clients_are_registered_edited_and_their_secrets_rotated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let actor = Some(format!("client:{AUTOMATION}"));
    let post_json = |path: &'static str, body: Value| {
        let app = app.clone();
        let token = token.clone();
        async move { send_json(&app, reqwest::Method::POST, path, &token, &body).await }
    };

    let (status, created) = post_json(
        "/admin/api/clients",
        json!({
            "client_id": "billing",
            "name": "Billing",
            "redirect_uris": ["https://billing.example.com/cb"],
            "theme": "helix",
            "id_token_alg": "ES256",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 random bits, base64url");
    let client = &created["client"];
    assert_eq!(client["client_id"], "billing");
    assert_eq!(client["kind"], "confidential");
    assert_eq!(client["theme"], "helix");
    assert_eq!(client["id_token_alg"], "ES256");
    assert_eq!(
        client["scopes"],
        json!(["openid", "profile", "email", "offline_access"]),
        "admin is never a default"
    );
    assert!(client.get("secret_hash").is_none());

    let (status, public) = post_json(
        "/admin/api/clients",
        json!({
            "client_id": "spa",
            "name": "Single-page app",
            "public": true,
            "redirect_uris": ["http://127.0.0.1:3000/cb"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{public}");
    assert_eq!(public["client_secret"], Value::Null);

    // Refused registrations say why.
    for (body, status, reason) in [
        (
            json!({ "client_id": "billing", "name": "Again", "redirect_uris": ["https://b.example.com/cb"] }),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            json!({ "client_id": "x", "name": "X", "redirect_uris": ["ftp://x.example.com"] }),
            StatusCode::BAD_REQUEST,
            "redirect_uris",
        ),
        (
            json!({ "client_id": "x", "name": "X", "public": true, "grant_types": ["client_credentials"] }),
            StatusCode::BAD_REQUEST,
            "public client",
        ),
        (
            json!({ "client_id": "x", "name": "X", "grant_types": ["client_credentials"], "scopes": ["root"] }),
            StatusCode::BAD_REQUEST,
            "unknown scope root",
        ),
        (
            json!({ "client_id": "x", "name": "X", "grant_types": ["password"] }),
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            json!({ "client_id": "x", "name": "X", "colour": "red" }),
            StatusCode::BAD_REQUEST,
            "colour",
        ),
        (
            json!({ "name": "no id" }),
            StatusCode::BAD_REQUEST,
            "client_id",
        ),
    ] {
        let (got, answer) = post_json("/admin/api/clients", body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(reason),
            "{body} -> {answer}"
        );
    }
    assert_eq!(
        app.state.store.list_clients().await.unwrap().len(),
        4,
        "none of them registered (the automation client, the console's, two made here)"
    );

    let (status, list) = get(&app, "/admin/api/clients", &token).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["admin-console", AUTOMATION, "billing", "spa"]);

    // Edits: new redirect URI, theme taken away, MFA required.
    let (status, edited) = send_json(
        &app,
        reqwest::Method::PATCH,
        "/admin/api/clients/billing",
        &token,
        &json!({
            "redirect_uris": ["https://billing.example.com/callback"],
            "theme": null,
            "require_mfa": true,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(
        edited["redirect_uris"],
        json!(["https://billing.example.com/callback"])
    );
    assert_eq!(edited["theme"], Value::Null);
    assert_eq!(edited["require_mfa"], true);
    assert_eq!(edited["name"], "Billing", "untouched");
    let (_, shown) = get(&app, "/admin/api/clients/billing", &token).await;
    assert_eq!(shown, edited);
    for (path, body, status) in [
        (
            "/admin/api/clients/billing",
            json!({ "grant_types": [] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/api/clients/billing",
            json!({ "redirect_uris": [] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/api/clients/billing",
            json!({ "kind": "public" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/api/clients/nobody",
            json!({ "name": "N" }),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, answer) = send_json(&app, reqwest::Method::PATCH, path, &token, &body).await;
        assert_eq!(got, status, "{body} -> {answer}");
    }

    // A new secret: the old one stops working at once.
    let worker_secret = register_client(&app, "worker", &["openid"]).await;
    client_token(&app, "worker", &worker_secret).await;
    let (status, rotated) = post_json("/admin/api/clients/worker/rotate-secret", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, worker_secret);
    let old = app
        .http
        .post(app.url("/token"))
        .basic_auth("worker", Some(&worker_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    client_token(&app, "worker", &new_secret).await;
    let (status, _) = post_json("/admin/api/clients/spa/rotate-secret", json!({})).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a public client has no secret"
    );

    let events: Vec<(String, Option<String>, Option<String>)> = app
        .state
        .store
        .audit_events(None, 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .filter(|e| e.event.kind.starts_with("admin.client"))
        .map(|e| {
            (
                e.event.kind,
                e.event.actor,
                e.event.client_id.map(|c| c.to_string()),
            )
        })
        .collect();
    let event =
        |kind: &str, client: &str| (kind.to_owned(), actor.clone(), Some(client.to_owned()));
    assert_eq!(
        events,
        [
            event("admin.client_created", "billing"),
            event("admin.client_created", "spa"),
            event("admin.client_updated", "billing"),
            event("admin.client_secret_rotated", "worker"),
        ]
    );
}

async fn clients_are_removed_and_their_secret_dies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let delete = |path: &'static str| {
        let app = app.clone();
        let token = token.clone();
        async move { send_json(&app, reqwest::Method::DELETE, path, &token, &Value::Null).await }
    };
    let secret = register_client(&app, "worker", &["openid"]).await;
    client_token(&app, "worker", &secret).await;

    let (status, _) = delete("/admin/api/clients/worker").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send_json(
        &app,
        reqwest::Method::GET,
        "/admin/api/clients/worker",
        &token,
        &Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let refused = app
        .http
        .post(app.url("/token"))
        .basic_auth("worker", Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status(),
        StatusCode::UNAUTHORIZED,
        "its secret is dead"
    );

    let (status, _) = delete("/admin/api/clients/worker").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "already gone");
    let (status, answer) = delete("/admin/api/clients/admin-console").await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(
        app.state
            .store
            .client_by_id(&ClientId::parse("admin-console").unwrap())
            .await
            .unwrap()
            .is_some()
    );

    let events = app.state.store.audit_events(None, 50).await.unwrap();
    let deleted: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind == "admin.client_deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "one removal, audited once");
    assert_eq!(deleted[0].event.actor.as_deref(), Some("client:automation"));
    assert_eq!(
        deleted[0].event.client_id.as_ref().map(|c| c.as_str()),
        Some("worker")
    );
}

async fn automation_cannot_lock_itself_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let path = "/admin/api/clients/automation";
    for body in [
        json!({ "scopes": ["openid"] }),
        json!({ "grant_types": ["authorization_code"] }),
    ] {
        let (status, answer) = send_json(&app, reqwest::Method::PATCH, path, &token, &body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body} -> {answer}");
    }
    let (status, answer) =
        send_json(&app, reqwest::Method::DELETE, path, &token, &Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    // Still itself: a harmless change to itself goes through, and it still administers.
    let (status, answer) = send_json(
        &app,
        reqwest::Method::PATCH,
        path,
        &token,
        &json!({ "name": "Nightly automation" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (status, _) = send_json(
        &app,
        reqwest::Method::GET,
        "/admin/api/users",
        &token,
        &Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
