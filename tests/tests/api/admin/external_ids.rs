//! Each portal receives its own external id (issue 15, item 6): the
//! portals of one deployment share one account per address, and each client
//! configured with `external_id_claim` finds the id its own portal keyed the
//! customer by, under its own claim name, in the ID token (validated by a
//! stock relying party library) and at `/userinfo`; never another portal's.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::CoreTokenResponse;
use openidconnect::{OAuth2TokenResponse, TokenResponse};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::oidc::{CALLBACK, EMAIL, PW as JANE_PW, rp, tokens_for, verify_id_token};
use crate::{Backend, TestApp};

on_both_backends!(
    each_portal_receives_its_own_external_id,
    bad_claim_names_are_refused_and_change_nothing,
);

/// Registers a first-party portal client through the admin API; returns its secret.
async fn portal(app: &TestApp, token: &str, id: &str, theme: &str, claim: Option<&str>) -> String {
    let mut body = json!({
        "client_id": id,
        "name": id,
        "redirect_uris": [CALLBACK],
        "first_party": true,
        "theme": theme,
    });
    if let Some(claim) = claim {
        body["external_id_claim"] = json!(claim);
    }
    let (status, created) = send_json(
        app,
        reqwest::Method::POST,
        "/admin/api/clients",
        token,
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["client"]["external_id_claim"], json!(claim));
    created["client_secret"].as_str().unwrap().to_owned()
}

/// The ID token's claims as signed (after the library validated it): the
/// library's own claim types drop the ones it does not know.
fn id_token_claims(tokens: &CoreTokenResponse) -> Value {
    let jwt = tokens.id_token().unwrap().to_string();
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn userinfo(app: &TestApp, tokens: &CoreTokenResponse) -> Value {
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn each_portal_receives_its_own_external_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    let jane = app.create_user(EMAIL, JANE_PW, "Jane Doe").await;
    let other = app.create_user("other@example.com", JANE_PW, "Other").await;
    let store = app.state.store.as_ref();
    let now = app.clock_now();

    // Billing keys its customers under its client id, support (helix) under
    // its theme; "hosting" knows Jane too, but its client has no claim set.
    let billing = portal(
        &app,
        &token,
        "billing",
        "customer",
        Some("billing_customer_id"),
    )
    .await;
    let support = portal(&app, &token, "support", "helix", Some("helpdesk-user")).await;
    let hosting = portal(&app, &token, "hosting-panel", "hosting", None).await;
    for (portal, id) in [
        ("billing", "B-1001"),
        // The theme of billing: its client id wins over it.
        ("customer", "C-OLD"),
        ("helix", "H-77"),
        ("hosting-panel", "WHMCS-5"),
    ] {
        assert!(
            store
                .add_external_id(&jane.id, portal, id, now)
                .await
                .unwrap()
        );
    }
    // One id per account and portal; one account per id in a portal.
    assert!(
        !store
            .add_external_id(&jane.id, "billing", "B-2", now)
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .add_external_id(&other.id, "billing", "B-1001", now)
            .await,
        Err(idp::store::Error::Conflict)
    ));

    let expectations = [
        (
            "billing",
            billing.clone(),
            Some(("billing_customer_id", "B-1001")),
        ),
        ("support", support.clone(), Some(("helpdesk-user", "H-77"))),
        ("hosting-panel", hosting, None),
    ];
    let all_claims = ["billing_customer_id", "helpdesk-user"];
    for (client, secret, expected) in expectations {
        let rp = rp(&app, client, Some(secret)).await;
        let (tokens, auth) = tokens_for(&app, &rp, &["email", "profile"]).await;
        let validated = verify_id_token(&rp, &tokens, Some(&auth.nonce));
        assert_eq!(validated.subject().as_str(), jane.id.as_str());
        let signed = id_token_claims(&tokens);
        let info = userinfo(&app, &tokens).await;
        for claim in all_claims {
            let want = expected
                .filter(|(name, _)| *name == claim)
                .map(|(_, id)| json!(id))
                .unwrap_or(Value::Null);
            assert_eq!(signed[claim], want, "{client}'s ID token: {signed}");
            assert_eq!(info[claim], want, "{client}'s userinfo: {info}");
        }
        // Nothing else leaks another portal's id under any name.
        for id in ["B-1001", "C-OLD", "H-77", "WHMCS-5"] {
            if expected.map(|(_, mine)| mine) != Some(id) {
                assert!(!signed.to_string().contains(id), "{client}: {signed}");
                assert!(!info.to_string().contains(id), "{client}: {info}");
            }
        }
    }

    // A refresh's ID token carries it too.
    let rp_support = rp(&app, "support", Some(support.clone())).await;
    let (tokens, _) = tokens_for(&app, &rp_support, &["offline_access"]).await;
    let refresh_token = tokens.refresh_token().expect("a refresh token").secret();
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("support", Some(&support))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let refreshed: Value = r.json().await.unwrap();
    let jwt = refreshed["id_token"].as_str().expect("an ID token");
    let payload = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["helpdesk-user"], "H-77", "{claims}");
    assert_eq!(claims["billing_customer_id"], Value::Null, "{claims}");

    // A second client wearing helix's theme: the ids recorded under the
    // theme no longer say which portal they belong to, so neither gets them.
    let shop = portal(&app, &token, "helix-shop", "helix", Some("shop_id")).await;
    for (client, secret) in [("support", support.clone()), ("helix-shop", shop)] {
        let rp = rp(&app, client, Some(secret)).await;
        let (tokens, _) = tokens_for(&app, &rp, &["email", "profile"]).await;
        let signed = id_token_claims(&tokens);
        assert!(!signed.to_string().contains("H-77"), "{client}: {signed}");
        let info = userinfo(&app, &tokens).await;
        assert!(!info.to_string().contains("H-77"), "{client}: {info}");
    }

    // The setting taken away: the claim goes with it, at once on this node.
    let (status, edited) = send_json(
        &app,
        reqwest::Method::PATCH,
        "/admin/api/clients/billing",
        &token,
        &json!({ "external_id_claim": null }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert_eq!(edited["external_id_claim"], Value::Null);
    let rp = rp(&app, "billing", Some(billing)).await;
    let (tokens, _) = tokens_for(&app, &rp, &["email"]).await;
    assert_eq!(id_token_claims(&tokens)["billing_customer_id"], Value::Null);
    assert_eq!(
        userinfo(&app, &tokens).await["billing_customer_id"],
        Value::Null
    );
}

async fn bad_claim_names_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = automation_token(&app).await;
    portal(&app, &token, "billing", "customer", Some("billing_id")).await;
    let (_, before) = get(&app, "/admin/api/clients/billing", &token).await;
    let events_before = admin_events(&app).await;
    let long = "a".repeat(65);
    for (claim, reason) in [
        (json!("sub"), "registered"),
        (json!("email"), "registered"),
        (json!("Email"), "registered"),
        (json!("aud"), "registered"),
        (json!("nonce"), "registered"),
        (json!("sid"), "registered"),
        (json!("at_hash"), "registered"),
        (json!(""), "external_id_claim"),
        (json!("has space"), "external_id_claim"),
        (json!("9lives"), "external_id_claim"),
        (json!("<script>"), "external_id_claim"),
        (json!(long), "external_id_claim"),
        (json!(42), "external_id_claim"),
        (json!(["a"]), "external_id_claim"),
    ] {
        let (status, answer) = send_json(
            &app,
            reqwest::Method::PATCH,
            "/admin/api/clients/billing",
            &token,
            &json!({ "external_id_claim": claim, "name": "Renamed" }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{claim} -> {answer}");
        assert_eq!(answer["error"], "bad_request", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(reason), "{claim} -> {message}");
        assert!(
            !message.contains("Option<") && !message.contains("sqlx") && !message.contains("idp::"),
            "no Rust or database names: {message}"
        );

        let (status, answer) = send_json(
            &app,
            reqwest::Method::POST,
            "/admin/api/clients",
            &token,
            &json!({
                "client_id": "support",
                "name": "Support",
                "redirect_uris": [CALLBACK],
                "external_id_claim": claim,
            }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{claim} -> {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains(reason),
            "{answer}"
        );
    }
    let (_, after) = get(&app, "/admin/api/clients/billing", &token).await;
    assert_eq!(after, before, "the client is as it was");
    let (status, _) = get(&app, "/admin/api/clients/support", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no client was registered");
    assert_eq!(admin_events(&app).await, events_before, "nothing audited");
}
