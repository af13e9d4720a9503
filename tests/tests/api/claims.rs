//! The `claims` request parameter (OpenID Connect Core 5.5) as relying
//! parties use it: held claims asked for by name come back in the member
//! they were asked for (ID token or userinfo), as if their scope had been
//! asked for, for every token of the grant; never beyond what the client is
//! registered for or the person allowed; `sub` with a value binds the
//! request to that account; a parameter that is too long or not an object
//! is `invalid_request`. The certification's own module is
//! `conformance::oidcc_claims_essential`.

use reqwest::StatusCode;
use serde_json::json;
use tests::browser::{NewClient, register_client};
use tests::signin::Person;
use time::Duration;

use crate::conformance::{ClientAuth, Suite, Via, names};
use crate::oidc::{CALLBACK, EMAIL, PW};
use crate::{Backend, TestApp};

on_both_backends!(
    claims_asked_by_name_come_back_where_asked_also_after_a_refresh,
    claims_of_a_scope_the_client_is_not_registered_for_are_not_released,
    claims_beyond_what_was_allowed_ask_for_consent_first,
    a_request_naming_its_subject_is_answered_for_that_account_alone,
    a_claims_parameter_too_long_or_not_an_object_is_invalid_request,
);

const NAME: &str = "Jane Doe";

/// Jane, and the first-party client `shop` (the default scopes).
async fn shop(backend: Backend) -> Suite {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let secret = register_client(&app, NewClient::app("shop", "Helix Shop", CALLBACK))
        .await
        .unwrap();
    Suite::on(app, "shop", secret).await
}

fn sorted(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v
}

async fn claims_asked_by_name_come_back_where_asked_also_after_a_refresh(backend: Backend) {
    let suite = shop(backend).await;
    let claims = json!({
        "id_token": { "name": null, "email": { "essential": true }, "picture": null },
        "userinfo": { "email_verified": null, "updated_at": { "essential": false },
                      "phone_number": null },
    });
    let request = suite
        .request()
        .set("scope", "openid offline_access")
        .set("claims", &claims.to_string());
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    assert_eq!(
        flow.tokens.str("scope"),
        "openid offline_access",
        "no scope added"
    );
    let released_in_id_token = |id: &serde_json::Value| {
        assert_eq!(id["name"], json!(NAME));
        assert_eq!(id["email"], json!(EMAIL));
        for other in ["email_verified", "updated_at", "picture"] {
            assert!(id.get(other).is_none(), "{other} in the ID token: {id}");
        }
    };
    released_in_id_token(&flow.id);
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(
        sorted(names(&info)),
        ["email_verified", "sub", "updated_at"],
        "{info}"
    );

    // Every token of the grant releases the same.
    suite.app.clock.advance(Duration::seconds(5));
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", flow.tokens.str("refresh_token")),
    ];
    let renewed = suite.token(ClientAuth::Basic, &form).await;
    suite.check_tokens(&renewed);
    released_in_id_token(&suite.id_token(&renewed, None));
    let (status, info) = suite
        .userinfo_raw(renewed.str("access_token"), Via::PostHeader)
        .await;
    assert_eq!(status, StatusCode::OK);
    let info = info.unwrap();
    assert_eq!(
        sorted(names(&info)),
        ["email_verified", "sub", "updated_at"]
    );
}

async fn claims_of_a_scope_the_client_is_not_registered_for_are_not_released(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let uri = |u: &str| idp::domain::RedirectUri::parse(u).unwrap();
    let secret = idp::oidc::register_client_with_scopes(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: idp::domain::ClientId::parse("login-only").unwrap(),
            name: "Login only".into(),
            kind: idp::domain::ClientKind::Confidential,
            redirect_uris: vec![uri(CALLBACK)],
            post_logout_redirect_uris: vec![],
            first_party: true,
            theme: None,
            grant_types: vec![],
            id_token_alg: idp::domain::IdTokenAlg::RS256,
            require_mfa: false,
            require_pkce: false,
            external_id_claim: None,
        },
        &["openid".to_owned()],
    )
    .await
    .unwrap()
    .secret
    .unwrap();
    let suite = Suite::on(app, "login-only", secret).await;
    let claims = json!({
        "id_token": { "name": null, "email": null },
        "userinfo": { "name": null, "email": null, "email_verified": null },
    });
    let request = suite.request().set("claims", &claims.to_string());
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    for claim in ["name", "email"] {
        assert!(flow.id.get(claim).is_none(), "{claim}: {}", flow.id);
    }
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(names(&info), ["sub"], "{info}");
}

async fn claims_beyond_what_was_allowed_ask_for_consent_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, NAME).await;
    let secret = register_client(
        &app,
        NewClient {
            first_party: false,
            ..NewClient::app("partner", "Partner Travel", CALLBACK)
        },
    )
    .await
    .unwrap();
    let suite = Suite::on(app, "partner", secret).await;
    let mut jane = Person::new(EMAIL).password(PW).consent(Some("allow"));
    // She allows sign-in alone.
    let request = suite.request();
    let answer = suite
        .follow_as(&suite.app, &suite.url(&request), &mut jane)
        .await;
    suite.check_code_answer(&answer, &request);
    let shown = jane.consent_text.take().expect("asked once");
    assert!(!shown.contains("See your name"), "{shown}");

    // Her name asked for by name is beyond what she allowed: a silent
    // request cannot have it.
    let claims = json!({ "userinfo": { "name": { "essential": true } } }).to_string();
    let silent = suite.request().set("claims", &claims).set("prompt", "none");
    let answer = suite.authorize(&suite.app, &silent, None).await;
    suite.check_error_answer(&answer, silent.get("state"), &["consent_required"]);

    // Asked interactively, the consent page says what it is for.
    let request = suite.request().set("claims", &claims);
    let answer = suite
        .follow_as(&suite.app, &suite.url(&request), &mut jane)
        .await;
    let shown = jane.consent_text.take().expect("asked again");
    assert!(shown.contains("See your name"), "{shown}");
    let flow = suite.finish(answer, &request, ClientAuth::Basic).await;
    let info = suite.userinfo(&flow, Via::Get).await;
    assert_eq!(info["name"], json!(NAME));

    // Allowed now, and remembered.
    let answer = suite.authorize(&suite.app, &silent, None).await;
    let flow = suite.finish(answer, &silent, ClientAuth::Basic).await;
    assert_eq!(suite.userinfo(&flow, Via::Get).await["name"], json!(NAME));
}

async fn a_request_naming_its_subject_is_answered_for_that_account_alone(backend: Backend) {
    let suite = shop(backend).await;
    let first = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    let sub = first.id["sub"].as_str().unwrap().to_owned();

    let someone_else = json!({ "id_token": { "sub": { "value": "0190-not-jane" } } });
    for prompt in [None, Some("none")] {
        let mut request = suite.request().set("claims", &someone_else.to_string());
        if let Some(prompt) = prompt {
            request = request.set("prompt", prompt);
        }
        let answer = suite.authorize(&suite.app, &request, None).await;
        suite.check_error_answer(&answer, request.get("state"), &["login_required"]);
    }

    let herself = json!({ "id_token": { "sub": { "value": sub } } });
    let request = suite
        .request()
        .set("claims", &herself.to_string())
        .set("prompt", "none");
    let flow = suite.flow(&suite.app, &request, None).await;
    assert_eq!(flow.id["sub"], json!(sub));
}

async fn a_claims_parameter_too_long_or_not_an_object_is_invalid_request(backend: Backend) {
    let suite = shop(backend).await;
    // 4 KB is the most a pending request carries of it.
    let padded = |len: usize| {
        let base = r#"{"userinfo":{"name":null},"x":""}"#;
        let pad = "a".repeat(len - base.len());
        format!(r#"{{"userinfo":{{"name":null}},"x":"{pad}"}}"#)
    };
    assert_eq!(padded(4096).len(), 4096);
    for claims in [padded(4097), "[1]".to_owned(), "{\"userinfo\":".to_owned()] {
        let request = suite.request().set("claims", &claims);
        let answer = suite.authorize(&suite.app, &request, None).await;
        suite.check_error_answer(&answer, request.get("state"), &["invalid_request"]);
        assert!(!answer.asked_password, "refused before the sign-in page");
    }
    let request = suite.request().set("claims", &padded(4096));
    let flow = suite.flow(&suite.app, &request, Some(PW)).await;
    assert_eq!(suite.userinfo(&flow, Via::Get).await["name"], json!(NAME));
}
