//! A user's sessions and refresh tokens one by one through the admin API:
//! an administrator sees each browser and each application a user stays
//! signed in to, and ends exactly the one they pick.

use reqwest::StatusCode;
use serde_json::Value;
use time::Duration;

use super::console::{CALLBACK, sign_in};
use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    administrator_lists_and_ends_browser_sessions_one_by_one,
    administrator_lists_and_revokes_refresh_tokens_one_by_one,
);

/// The administrator's console token, minted again after the clock moved.
fn fresh_token(app: &TestApp, admin: &User) -> String {
    user_token(
        app,
        admin,
        idp::admin_api::CONSOLE_CLIENT_ID,
        &["pwd", "otp"],
    )
}

async fn delete(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let r = call(app, reqwest::Method::DELETE, path, Some(token)).await;
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The `detail` of each admin event of `kind`, oldest first.
async fn details(app: &TestApp, kind: &str) -> Vec<Value> {
    let mut events: Vec<Value> = app
        .state
        .store
        .audit_events(None, 500)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == kind)
        .map(|e| e.event.detail)
        .collect();
    events.reverse();
    events
}

async fn administrator_lists_and_ends_browser_sessions_one_by_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let bob = app.create_user("bob@example.com", PW, "Bob").await;
    let list = format!("/admin/api/users/{}/sessions", jane.id);

    let (status, page) = get(&app, &list, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], serde_json::json!([]), "none yet");

    let laptop = app.browser_as("Firefox/128 (laptop)");
    let phone = app.browser_as("Safari/17 (phone)");
    let laptop_cookie = laptop.signed_in("jane@example.com", PW).await;
    app.clock.advance(Duration::minutes(2));
    let phone_cookie = phone.signed_in("jane@example.com", PW).await;
    let bobs = app.browser_as("Bob's browser");
    bobs.signed_in("bob@example.com", PW).await;

    let r = call(&app, reqwest::Method::GET, &list, Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let raw = r.text().await.unwrap();
    for cookie in [&laptop_cookie, &phone_cookie] {
        assert!(!raw.contains(cookie.as_str()), "never a session id: {raw}");
    }
    let page: Value = serde_json::from_str(&raw).unwrap();
    let items = page["items"].as_array().unwrap();
    let agents: Vec<&str> = items
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    assert_eq!(
        agents,
        ["Safari/17 (phone)", "Firefox/128 (laptop)"],
        "jane's two browsers, newest first: {page}"
    );
    for s in items {
        let handle = s["id"].as_str().unwrap();
        assert!(
            handle.len() == 16 && handle.chars().all(|c| c.is_ascii_hexdigit()),
            "{s}"
        );
        assert_eq!(s["ip"], "127.0.0.1");
        assert_eq!(s["amr"], serde_json::json!(["pwd"]));
        for at in ["created_at", "last_seen_at", "auth_time"] {
            let t = s[at].as_str().unwrap();
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("{at} {t}: {e}"));
        }
    }
    let phone_handle = items[0]["id"].as_str().unwrap().to_owned();
    let (_, bob_page) = get(
        &app,
        &format!("/admin/api/users/{}/sessions", bob.id),
        &token,
    )
    .await;
    let bob_handle = bob_page["items"][0]["id"].as_str().unwrap().to_owned();

    // Ending the phone's session signs out the phone, and only it. With
    // PostgreSQL + Redis the call goes to another node of the deployment.
    let node = match backend {
        Backend::Postgres => app.spawn_beside(|_| {}).await,
        Backend::Sqlite => app.clone(),
    };
    assert_eq!(phone.page("/account").await.status, StatusCode::OK);
    let (status, body) = delete(&node, &format!("{list}/{phone_handle}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        phone.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "the phone is sent to sign in"
    );
    assert_eq!(
        laptop.page("/account").await.status,
        StatusCode::OK,
        "the laptop goes on"
    );
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["user_agent"], "Firefox/128 (laptop)");
    assert_eq!(
        page["items"][0]["browser"], "Firefox",
        "named as people name it"
    );

    // Unknown handles, the ended one, and another user's: 404, nothing ends.
    for handle in [
        phone_handle.as_str(),
        "0123456789abcdef",
        "x",
        bob_handle.as_str(),
    ] {
        let (status, body) = delete(&app, &format!("{list}/{handle}"), &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{handle}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    assert_eq!(bobs.page("/account").await.status, StatusCode::OK);
    let nobody = "/admin/api/users/0190a5a4-0000-7000-8000-000000000000/sessions";
    assert_eq!(get(&app, nobody, &token).await.0, StatusCode::NOT_FOUND);
    let (status, _) = delete(&app, &format!("{nobody}/{bob_handle}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Signing out in the browser, and "sign out everywhere", leave the list too.
    assert_eq!(
        laptop.submit("/account", "/logout", &[]).await.status,
        StatusCode::SEE_OTHER
    );
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
    laptop.signed_in("jane@example.com", PW).await;
    phone.signed_in("jane@example.com", PW).await;
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    post(
        &app,
        &format!("/admin/api/users/{}/sign-out", jane.id),
        &token,
    )
    .await;
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"], serde_json::json!([]), "{page}");

    // ...and so do sessions that ran out.
    let tablet = app.browser_as("Tablet");
    tablet.signed_in("jane@example.com", PW).await;
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"][0]["user_agent"], "Tablet");
    let idle = app.state.config.session.idle_minutes as i64;
    app.clock.advance(Duration::minutes(idle + 1));
    let token = fresh_token(&app, &admin);
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"], serde_json::json!([]), "{page}");
    assert_eq!(tablet.page("/account").await.status, StatusCode::SEE_OTHER);

    let actor = Some(format!("user:{}", admin.id));
    let revoked: Vec<_> = admin_events(&app)
        .await
        .into_iter()
        .filter(|e| e.0 == "admin.session_revoked")
        .collect();
    assert_eq!(
        revoked,
        [(
            "admin.session_revoked".into(),
            actor,
            Some(jane.id.to_string())
        )]
    );
    assert_eq!(
        details(&app, "admin.session_revoked").await,
        [serde_json::json!({ "session": phone_handle })]
    );
}

const NOTES: &str = "notes";

/// A public first-party app that asks for `offline_access`: its `/token` answer.
async fn notes_sign_in(app: &TestApp, email: &str) -> Value {
    sign_in(app, NOTES, "openid offline_access", email).await
}

/// The refresh grant as the public `notes` app sends it.
async fn refresh(app: &TestApp, refresh_token: &str) -> (StatusCode, Value) {
    let r = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", NOTES),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn administrator_lists_and_revokes_refresh_tokens_one_by_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    app.create_user("bob@example.com", PW, "Bob").await;
    idp::oidc::register_client(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: ClientId::parse(NOTES).unwrap(),
            name: "Notes".into(),
            kind: ClientKind::Public,
            redirect_uris: vec![idp::domain::RedirectUri::parse(CALLBACK).unwrap()],
            post_logout_redirect_uris: vec![],
            first_party: true,
            theme: None,
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            id_token_alg: IdTokenAlg::RS256,
            require_mfa: false,
            require_pkce: false,
            external_id_claim: None,
        },
    )
    .await
    .unwrap();
    let list = format!("/admin/api/users/{}/refresh-tokens", jane.id);
    let (status, page) = get(&app, &list, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["items"], serde_json::json!([]));

    let first = notes_sign_in(&app, "jane@example.com").await;
    let first_token = first["refresh_token"].as_str().expect("a refresh token");
    app.clock.advance(Duration::minutes(5));
    // Used once: the family keeps its id and shows when it was last used.
    let (status, rotated) = refresh(&app, first_token).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let first_token = rotated["refresh_token"].as_str().unwrap().to_owned();
    app.clock.advance(Duration::minutes(5));
    let second = notes_sign_in(&app, "jane@example.com").await;
    let token = fresh_token(&app, &admin);
    let second_token = second["refresh_token"].as_str().unwrap().to_owned();
    let bobs = notes_sign_in(&app, "bob@example.com").await;
    let bob_token = bobs["refresh_token"].as_str().unwrap().to_owned();

    let r = call(&app, reqwest::Method::GET, &list, Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let raw = r.text().await.unwrap();
    for secret in [first_token.as_str(), second_token.as_str()] {
        assert!(!raw.contains(secret), "never a token: {raw}");
    }
    let page: Value = serde_json::from_str(&raw).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "one per sign-in, not per rotation: {page}");
    for item in items {
        assert_eq!(item["client_id"], NOTES);
        assert!(
            item["scopes"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("offline_access")),
            "{item}"
        );
        for at in ["created_at", "expires_at", "family_expires_at"] {
            assert!(item[at].is_string(), "{at}: {item}");
        }
        assert!(item.get("token_hash").is_none(), "{item}");
    }
    // Newest first: the second sign-in, never refreshed, then the first.
    assert_eq!(items[0]["last_used_at"], Value::Null, "{page}");
    assert!(items[1]["last_used_at"].is_string(), "{page}");
    assert!(items[0]["created_at"].as_str() > items[1]["created_at"].as_str());
    let first_family = items[1]["id"].as_str().unwrap().to_owned();
    let second_family = items[0]["id"].as_str().unwrap().to_owned();

    // Revoked: that family's token no longer refreshes, the other still does.
    let (status, body) = delete(&app, &format!("{list}/{first_family}"), &token).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = refresh(&app, &first_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = refresh(&app, &second_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, page) = get(&app, &list, &token).await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second_family.as_str()]);

    // Revoked already, unknown, or another user's family: 404, nothing revoked.
    let bob = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("bob@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, bob_page) = get(
        &app,
        &format!("/admin/api/users/{}/refresh-tokens", bob.id),
        &token,
    )
    .await;
    let bob_family = bob_page["items"][0]["id"].as_str().unwrap().to_owned();
    for family in [first_family.as_str(), "no-such-family", bob_family.as_str()] {
        let (status, body) = delete(&app, &format!("{list}/{family}"), &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{family}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let (status, body) = refresh(&app, &bob_token).await;
    assert_eq!(status, StatusCode::OK, "bob's token is untouched: {body}");
    let nobody = "/admin/api/users/0190a5a4-0000-7000-8000-000000000000/refresh-tokens";
    assert_eq!(get(&app, nobody, &token).await.0, StatusCode::NOT_FOUND);

    // Families that ran out are not listed.
    let idle = app.state.config.tokens.refresh_token_idle_secs as i64;
    app.clock.advance(Duration::seconds(idle + 1));
    let token = fresh_token(&app, &admin);
    let (_, page) = get(&app, &list, &token).await;
    assert_eq!(page["items"], serde_json::json!([]), "{page}");

    let revoked: Vec<_> = admin_events(&app)
        .await
        .into_iter()
        .filter(|e| e.0 == "admin.refresh_token_revoked")
        .collect();
    assert_eq!(
        revoked,
        [(
            "admin.refresh_token_revoked".into(),
            Some(format!("user:{}", admin.id)),
            Some(jane.id.to_string())
        )]
    );
    assert_eq!(
        details(&app, "admin.refresh_token_revoked").await,
        [serde_json::json!({ "family": first_family, "client_id": NOTES })]
    );
}
