//! Users through the admin API: search and pages, each action and its audit event.

use reqwest::StatusCode;
use serde_json::Value;

use super::*;
use crate::{Backend, TestApp};

on_both_backends!(
    automation_searches_and_pages_users,
    administrator_disables_enables_and_unlocks_users,
    admin_role_is_granted_and_revoked,
    reset_mfa_removes_the_authenticator,
    administrator_creates_accounts,
    administrator_sends_a_password_reset_link,
);

// ---------------------------------------------------------------- users

async fn automation_searches_and_pages_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    for (email, name) in [
        ("carol@example.com", "Carol Jones"),
        ("alice@example.com", "Alice Smith"),
        ("bob@example.org", "Bob Smith"),
        ("dave_x@example.com", "Dave"),
    ] {
        app.create_user(email, PW, name).await;
    }

    // Pages of two, ordered by email, until the cursor runs out.
    let mut emails = Vec::new();
    let mut path = "/admin/api/users?limit=2".to_string();
    loop {
        let (status, page) = get(&app, &path, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for u in items {
            assert!(u.get("password_hash").is_none(), "{u}");
            emails.push(u["email"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/admin/api/users?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        emails,
        [
            "alice@example.com",
            "bob@example.org",
            "carol@example.com",
            "dave_x@example.com"
        ]
    );

    // Search by the start of the email or of the name, case-insensitively;
    // not by any part (an index serves a prefix, see docs/admin-api.md).
    let found = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, page) = get(&app, "/admin/api/users?q=ALICE", &token).await;
    assert_eq!(found(&page), ["alice@example.com"]);
    let (_, page) = get(&app, "/admin/api/users?q=Bob%40EXAMPLE.o", &token).await;
    assert_eq!(found(&page), ["bob@example.org"]);
    let (_, page) = get(&app, "/admin/api/users?q=carol%20J", &token).await;
    assert_eq!(found(&page), ["carol@example.com"], "the start of the name");
    let (_, page) = get(&app, "/admin/api/users?q=SMITH", &token).await;
    assert_eq!(
        found(&page),
        Vec::<String>::new(),
        "not the start of anything"
    );
    let (_, page) = get(&app, "/admin/api/users?q=example.org", &token).await;
    assert_eq!(
        found(&page),
        Vec::<String>::new(),
        "not the start of anything"
    );
    // LIKE wildcards are taken literally.
    let (_, page) = get(&app, "/admin/api/users?q=dave_", &token).await;
    assert_eq!(found(&page), ["dave_x@example.com"]);
    let (_, page) = get(&app, "/admin/api/users?q=_", &token).await;
    assert_eq!(found(&page), Vec::<String>::new());
    let (_, page) = get(&app, "/admin/api/users?q=%25", &token).await;
    assert_eq!(found(&page), Vec::<String>::new());

    // One user, by id; its view shows the state administrators act on.
    let alice = app
        .state
        .store
        .user_by_email(&idp::domain::Email::parse("alice@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, page) = get(&app, &format!("/admin/api/users?q={}", alice.id), &token).await;
    assert_eq!(found(&page), ["alice@example.com"]);
    let (status, user) = get(&app, &format!("/admin/api/users/{}", alice.id), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], alice.id.as_str());
    assert_eq!(user["name"], "Alice Smith");
    assert_eq!(user["disabled"], false);
    assert_eq!(user["is_admin"], false);
    assert_eq!(user["mfa_enabled"], false);
    assert_eq!(user["locked_until"], Value::Null);

    // Bad input: a clear JSON error, never a 500.
    for (path, status) in [
        ("/admin/api/users?limit=0", StatusCode::BAD_REQUEST),
        ("/admin/api/users?limit=201", StatusCode::BAD_REQUEST),
        ("/admin/api/users?limit=many", StatusCode::BAD_REQUEST),
        ("/admin/api/users?cursor=%21%21", StatusCode::BAD_REQUEST),
        ("/admin/api/users/not-a-user-id", StatusCode::NOT_FOUND),
        ("/admin/api/users/%FF", StatusCode::BAD_REQUEST),
        (
            "/admin/api/users/0190a5a4-0000-7000-8000-000000000000",
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (got, body) = get(&app, path, &token).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
    }
    let (status, body) = post(
        &app,
        "/admin/api/users/0190a5a4-0000-7000-8000-000000000000/disable",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

async fn administrator_disables_enables_and_unlocks_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let actor = format!("user:{}", admin.id);

    // Disabled: sign-in is refused.
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/disable", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["disabled"], true);
    assert_ne!(
        app.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER,
        "a disabled account cannot sign in"
    );
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/enable", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["disabled"], false);
    assert_eq!(
        app.other_browser()
            .sign_in("jane@example.com", PW)
            .await
            .status,
        StatusCode::SEE_OTHER,
        "enabled again"
    );

    // Administrators cannot lock themselves out.
    let (status, body) = post(
        &app,
        &format!("/admin/api/users/{}/disable", admin.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "conflict");

    // Locked after five failures; an administrator lifts the lock at once.
    let browser = app.other_browser();
    for _ in 0..5 {
        browser
            .sign_in("jane@example.com", "wrong-password-123")
            .await;
    }
    assert_eq!(
        browser.sign_in("jane@example.com", PW).await.status,
        StatusCode::FORBIDDEN,
        "locked"
    );
    let (_, user) = get(&app, &format!("/admin/api/users/{}", jane.id), &token).await;
    assert!(user["locked_until"].is_string(), "{user}");
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/unlock", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["locked_until"], Value::Null);
    assert_eq!(
        browser.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER,
        "unlocked"
    );

    // Signed out everywhere: the session is gone, the account still works.
    assert_eq!(browser.page("/account").await.status, StatusCode::OK);
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/sign-out", jane.id),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["disabled"], false);
    assert_eq!(
        browser.page("/account").await.status,
        StatusCode::SEE_OTHER,
        "back to the sign-in page"
    );

    let jane_id = Some(jane.id.to_string());
    assert_eq!(
        admin_events(&app).await,
        [
            (
                "admin.user_disabled".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
            (
                "admin.user_enabled".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
            (
                "admin.user_unlocked".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
            (
                "admin.user_signed_out".into(),
                Some(actor.clone()),
                jane_id.clone()
            ),
        ]
    );
    // The event records where the administrator called from. A person's
    // token is the console's, which names the browser in its headers; this
    // call named none, so the address is the caller's and no user agent is
    // taken for the administrator's (pages.rs
    // `console_actions_are_audited_with_the_administrators_browser` checks
    // the headers).
    let disabled = latest_event(&app, &jane.id, "admin.user_disabled").await;
    assert_eq!(disabled.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(disabled.user_agent, None);
}

async fn admin_role_is_granted_and_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let automation = automation_token(&app).await;
    let (root, root_token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let jane_token = user_token(
        &app,
        &jane,
        idp::admin_api::CONSOLE_CLIENT_ID,
        &["pwd", "otp"],
    );

    let (status, _) = get(&app, "/admin/api/users", &jane_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not an administrator yet");
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/grant-admin", jane.id),
        &automation,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["is_admin"], true);
    // Checked at each call: the same token works now...
    let (status, _) = get(&app, "/admin/api/users", &jane_token).await;
    assert_eq!(status, StatusCode::OK);
    // ...and stops working the moment the role goes.
    let (status, user) = post(
        &app,
        &format!("/admin/api/users/{}/revoke-admin", jane.id),
        &root_token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["is_admin"], false);
    let (status, _) = get(&app, "/admin/api/users", &jane_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Nobody revokes their own role (the last administrator stays one).
    let (status, _) = post(
        &app,
        &format!("/admin/api/users/{}/revoke-admin", root.id),
        &root_token,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let jane_id = Some(jane.id.to_string());
    assert_eq!(
        admin_events(&app).await,
        [
            (
                "admin.admin_granted".into(),
                Some(format!("client:{AUTOMATION}")),
                jane_id.clone()
            ),
            (
                "admin.admin_revoked".into(),
                Some(format!("user:{}", root.id)),
                jane_id
            ),
        ]
    );
}

async fn reset_mfa_removes_the_authenticator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let store = &app.state.store;
    let now = app.clock_now();
    store
        .start_totp_enrolment(
            &jane.id,
            idp::store::NewTotp {
                secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP".into(),
                secret_encrypted: false,
                digits: 6,
                period_secs: 30,
            },
            now,
        )
        .await
        .unwrap();
    assert!(store.confirm_totp(&jane.id, 1, &[], now).await.unwrap());
    let (_, user) = get(&app, &format!("/admin/api/users/{}", jane.id), &token).await;
    assert_eq!(user["mfa_enabled"], true);

    let path = format!("/admin/api/users/{}/reset-mfa", jane.id);
    let (status, user) = post(&app, &path, &token).await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["mfa_enabled"], false);
    assert!(store.totp_credential(&jane.id).await.unwrap().is_none());
    // Nothing left to reset: said so, nothing recorded.
    let (status, body) = post(&app, &path, &token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    assert_eq!(
        admin_events(&app).await,
        [(
            "mfa.reset".into(),
            Some(format!("user:{}", admin.id)),
            Some(jane.id.to_string())
        )]
    );
    // The owner is told.
    let mail = store.list_mail(None, 50).await.unwrap();
    assert!(
        mail.iter().any(|m| m.mail.recipient == "jane@example.com"),
        "a notice is queued for the owner"
    );
}

async fn administrator_creates_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let create = |body: Value| {
        let app = app.clone();
        let token = token.clone();
        async move {
            let r = app
                .http
                .post(app.admin_url("/admin/api/users"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }
    };

    let (status, user) = create(serde_json::json!({
        "email": "Jane@Example.com",
        "name": "Jane",
        "password": PW,
        "email_verified": true,
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["email"], "Jane@example.com", "the domain lowercased");
    assert_eq!(user["email_verified"], true);
    assert_eq!(user["is_admin"], false);
    assert_eq!(
        app.sign_in("jane@example.com", PW).await.status,
        StatusCode::SEE_OTHER,
        "signs in with the password given"
    );

    // Without a password: the owner sets one through "forgot password".
    let (status, invited) =
        create(serde_json::json!({ "email": "john@example.com", "is_admin": true })).await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    assert_eq!(invited["is_admin"], true);
    assert_ne!(
        app.other_browser()
            .sign_in("john@example.com", "")
            .await
            .status,
        StatusCode::SEE_OTHER
    );

    for (body, status, reason) in [
        (
            serde_json::json!({ "email": "jane@example.com" }),
            StatusCode::CONFLICT,
            "already exists",
        ),
        (
            serde_json::json!({ "email": "not-an-email" }),
            StatusCode::BAD_REQUEST,
            "email",
        ),
        (
            serde_json::json!({ "email": "weak@example.com", "password": "abc" }),
            StatusCode::BAD_REQUEST,
            "password",
        ),
        (
            serde_json::json!({ "email": "x@example.com", "role": "god" }),
            StatusCode::BAD_REQUEST,
            "role",
        ),
    ] {
        let (got, answer) = create(body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(reason),
            "{body} -> {answer}"
        );
    }

    let actor = Some(format!("user:{}", admin.id));
    assert_eq!(
        admin_events(&app).await,
        [
            (
                "admin.user_created".into(),
                actor.clone(),
                Some(user["id"].as_str().unwrap().to_owned())
            ),
            (
                "admin.user_created".into(),
                actor,
                Some(invited["id"].as_str().unwrap().to_owned())
            ),
        ]
    );
}

async fn administrator_sends_a_password_reset_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, token) = console_admin(&app, "root@example.com").await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let path = format!("/admin/api/users/{}/send-password-reset", jane.id);

    let (status, body) = post(&app, &path, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = app.state.store.list_mail(None, 10).await.unwrap();
    let reset = mail
        .iter()
        .find(|m| m.mail.recipient == "jane@example.com")
        .expect("a reset mail is queued");
    let body = &reset.mail.body_text;
    let start = body
        .find("/reset-password?token=")
        .expect("with a reset link");
    let link: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert_eq!(
        app.page(&link).await.status,
        StatusCode::OK,
        "the link opens the reset form: {link}"
    );

    // Not for a disabled account.
    post(
        &app,
        &format!("/admin/api/users/{}/disable", jane.id),
        &token,
    )
    .await;
    let (status, body) = post(&app, &path, &token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let sent: Vec<_> = admin_events(&app)
        .await
        .into_iter()
        .filter(|e| e.0 == "admin.password_reset_sent")
        .collect();
    assert_eq!(
        sent,
        [(
            "admin.password_reset_sent".to_string(),
            Some(format!("user:{}", admin.id)),
            Some(jane.id.to_string())
        )]
    );
}
