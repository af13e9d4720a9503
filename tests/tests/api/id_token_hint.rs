//! `id_token_hint` at the authorization endpoint (OIDC Core 3.1.2.1) as a
//! relying party uses it: an ID token it received, sent back to say which
//! account it means. The request is then answered for that account alone,
//! as one naming `sub` in `claims` is (5.5.1): never silently for whoever
//! else holds the browser's session. A hint that is not an ID token this
//! provider issued to the client (tampered, unsigned, an access token,
//! another client's) is `invalid_request`. An expired hint is a fine one.
//! The certification's own module is `conformance::oidcc_id_token_hint`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use tests::browser::{NewClient, register_client};
use tests::signin::Person;
use time::Duration;

use crate::conformance::{ClientAuth, Flow, Suite};
use crate::oidc::{CALLBACK, EMAIL, PW};
use crate::{Backend, TestApp};

on_both_backends!(
    a_hint_binds_the_request_to_the_account_it_names,
    a_hint_that_is_not_an_id_token_of_ours_for_this_client_is_invalid_request,
    a_hint_signed_by_a_retired_key_asks_for_a_new_sign_in,
);

const BOB: &str = "bob@example.com";
const SIGNED_OUT: &str = "http://localhost:4000/signed-out";
const BOB_PW: &str = "Amber-Orchard-Violin-2846";

/// Jane and the first-party client `shop`.
async fn shop(backend: Backend) -> Suite {
    let (app, secret) = shop_app(backend).await;
    Suite::on(app, "shop", secret).await
}

/// [`shop`] before the suite reads the keys: the app and the client's secret.
async fn shop_app(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let shop = NewClient {
        post_logout_redirect_uri: Some(SIGNED_OUT),
        ..NewClient::app("shop", "Helix Shop", CALLBACK)
    };
    let secret = register_client(&app, shop).await.unwrap();
    (app, secret)
}

/// Bob signs in at `shop` in a browser of his own: his completed flow.
async fn bobs_flow(suite: &Suite) -> Flow {
    suite.app.create_user(BOB, BOB_PW, "Bob").await;
    let mut bob = Person::new(BOB);
    bob.password = Some(BOB_PW.into());
    let request = suite.request();
    let answer = suite
        .follow_as(&suite.app.other_browser(), &suite.url(&request), &mut bob)
        .await;
    suite.finish(answer, &request, ClientAuth::Basic).await
}

async fn a_hint_binds_the_request_to_the_account_it_names(backend: Backend) {
    let suite = shop(backend).await;
    let bobs = bobs_flow(&suite).await;
    let janes = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    assert_ne!(bobs.id["sub"], janes.id["sub"]);

    // Jane's browser, with Bob's ID token as the hint: never answered for
    // Jane, silently or not.
    for prompt in [None, Some("none")] {
        let mut request = suite
            .request()
            .set("id_token_hint", bobs.tokens.str("id_token"));
        if let Some(prompt) = prompt {
            request = request.set("prompt", prompt);
        }
        let answer = suite.authorize(&suite.app, &request, None).await;
        suite.check_error_answer(&answer, request.get("state"), &["login_required"]);
    }

    // Her own ID token, expired by now, still names her: answered silently.
    suite.app.clock.advance(Duration::minutes(61));
    let request = suite
        .request()
        .set("prompt", "none")
        .set("id_token_hint", janes.tokens.str("id_token"));
    let again = suite.flow(&suite.app, &request, None).await;
    assert_eq!(again.id["sub"], janes.id["sub"]);

    // A hint and a `claims` sub that name two accounts: a broken request.
    let claims = json!({ "id_token": { "sub": { "value": bobs.id["sub"] } } });
    let request = suite
        .request()
        .set("id_token_hint", janes.tokens.str("id_token"))
        .set("claims", &claims.to_string());
    let answer = suite.authorize(&suite.app, &request, None).await;
    suite.check_error_answer(&answer, request.get("state"), &["invalid_request"]);
}

async fn a_hint_that_is_not_an_id_token_of_ours_for_this_client_is_invalid_request(
    backend: Backend,
) {
    let suite = shop(backend).await;
    let janes = suite.flow(&suite.app, &suite.request(), Some(PW)).await;
    let id_token = janes.tokens.str("id_token").to_owned();

    // The same claims with a signature that is not ours.
    let (signed, signature) = id_token.rsplit_once('.').unwrap();
    let mut forged = URL_SAFE_NO_PAD.decode(signature).unwrap();
    forged[0] ^= 1;
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(forged));
    // Unsigned (`alg: none`), naming Jane.
    let payload = signed.split_once('.').unwrap().1;
    let unsigned = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    // An ID token of ours, issued to another client.
    let blog_secret = register_client(&suite.app, NewClient::app("blog", "Helix Blog", CALLBACK))
        .await
        .unwrap();
    let blog = Suite::on(suite.app.clone(), "blog", blog_secret).await;
    let blogs = blog.flow(&suite.app, &blog.request(), None).await;
    // Jane's claims, issued to this client and signed by our key, with a
    // `typ` other than an ID token's: only the `typ` check refuses it.
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let sign = |typ| {
        suite
            .app
            .state
            .keys
            .sign(idp::domain::IdTokenAlg::RS256, typ, &claims)
            .unwrap()
    };
    let other_typ = sign("at+jwt");
    // The same, as an ID token: a good hint (the control for the one above).
    let request = suite
        .request()
        .set("id_token_hint", &sign("JWT"))
        .set("prompt", "none");
    let answer = suite.authorize(&suite.app, &request, None).await;
    assert!(answer.get("code").is_some(), "{answer:?}");

    for (what, hint) in [
        ("our key and claims, another typ", other_typ.as_str()),
        ("tampered", tampered.as_str()),
        ("unsigned", unsigned.as_str()),
        ("an access token", janes.access_token()),
        ("issued to another client", blogs.tokens.str("id_token")),
        ("not a token", "hello"),
    ] {
        for prompt in [None, Some("none")] {
            let mut request = suite.request().set("id_token_hint", hint);
            if let Some(prompt) = prompt {
                request = request.set("prompt", prompt);
            }
            let answer = suite.authorize(&suite.app, &request, None).await;
            assert_eq!(answer.get("error"), Some("invalid_request"), "{what}");
            suite.check_error_answer(&answer, request.get("state"), &["invalid_request"]);
        }
    }

    // The same token is no sign-out hint either: an error page, and no
    // redirect anywhere.
    let out = suite
        .app
        .page(&format!(
            "/logout?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("id_token_hint", janes.access_token())
                .finish()
        ))
        .await;
    assert!(out.contains("did not issue"), "{}", out.text());
}

/// A relying party that kept the ID token of an earlier sign-in sends it
/// after the provider's keys have rotated and the old key is no longer
/// published: whom it names cannot be checked any more, so it binds
/// nobody. Silently that is `login_required`; otherwise the person signs
/// in again, and the answer is for whoever did (here Jane, with Bob's old
/// token as the hint).
async fn a_hint_signed_by_a_retired_key_asks_for_a_new_sign_in(backend: Backend) {
    let (app, secret) = shop_app(backend).await;
    let before = Suite::on(app.clone(), "shop", secret.clone()).await;
    // Bob's ID token: a hint that, were it still trusted, Jane's browser
    // could never be answered with.
    let old_hint = bobs_flow(&before).await.tokens.str("id_token").to_owned();

    // A rotation, the new keys active, the old ones gone a day later.
    app.clock.advance(Duration::days(30));
    app.state.keys.rotate(false).await.unwrap();
    app.clock.advance(Duration::minutes(61));
    app.state.keys.reload().await.unwrap();
    app.clock.advance(Duration::days(1) + Duration::seconds(2));
    app.state.keys.reload().await.unwrap();

    // Jane signed in again, in her browser, since.
    let suite = Suite::on(app.clone(), "shop", secret).await;
    let janes = suite.flow(&app, &suite.request(), Some(PW)).await;

    let silent = suite
        .request()
        .set("prompt", "none")
        .set("id_token_hint", &old_hint);
    let answer = suite.authorize(&app, &silent, None).await;
    suite.check_error_answer(&answer, silent.get("state"), &["login_required"]);

    app.clock.advance(Duration::seconds(5));
    let request = suite.request().set("id_token_hint", &old_hint);
    let answer = suite.authorize(&app, &request, Some(PW)).await;
    assert!(answer.asked_password, "asked to sign in again");
    let flow = suite.finish(answer, &request, ClientAuth::Basic).await;
    assert_eq!(flow.id["sub"], janes.id["sub"]);

    // As a sign-out hint it counts as none: Jane is asked to confirm, and
    // stays signed in until she does.
    let confirm = app
        .page(&format!(
            "/logout?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("id_token_hint", &old_hint)
                .append_pair("post_logout_redirect_uri", SIGNED_OUT)
                .finish()
        ))
        .await;
    assert_eq!(confirm.status, 200, "{}", confirm.text());
    assert!(confirm.contains("Sign out?"), "{}", confirm.text());
    let still = suite
        .authorize(&app, &suite.request().set("prompt", "none"), None)
        .await;
    assert!(still.get("code").is_some(), "still signed in: {still:?}");
}
