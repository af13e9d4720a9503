//! Signing keys as relying parties and operators see them: `/jwks`, rotation
//! with overlap moved by the clock, several nodes, encryption at rest.

use std::sync::Arc;

use idp::clock::Clock;
use idp::domain::IdTokenAlg;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::{Backend, TestApp};

on_both_backends!(
    first_start_creates_three_keys_served_at_jwks,
    rotation_publishes_ahead_and_keeps_old_keys_until_their_tokens_expire,
    encrypted_keys_need_the_same_encryption_key_at_restart,
    racing_rotations_in_the_store_add_one_set,
);

const ALGS: [IdTokenAlg; 3] = [IdTokenAlg::RS256, IdTokenAlg::ES256, IdTokenAlg::EdDSA];

async fn jwks(app: &TestApp) -> JwkSet {
    let response = app.get("/jwks").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    response.json().await.unwrap()
}

fn kids(set: &JwkSet) -> Vec<String> {
    let mut kids: Vec<String> = set
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect();
    kids.sort();
    kids
}

/// A token as an ID token would be, signed by the app now.
fn token(app: &TestApp, alg: IdTokenAlg) -> String {
    let now = app.clock.now().unix_timestamp();
    let claims =
        json!({ "iss": app.base_url, "sub": "u", "aud": "rp", "iat": now, "exp": now + 600 });
    app.state.keys.sign(alg, "JWT", &claims).unwrap()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

/// Verifies like a relying party: the key named by `kid`, from JWKS.
fn verifies_with(set: &JwkSet, token: &str) -> bool {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let Some(jwk) = set.find(header.kid.as_deref().unwrap()) else {
        return false;
    };
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&["rp"]);
    // The app clock is not the system clock; expiry is the app's to check.
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).is_ok()
}

async fn first_start_creates_three_keys_served_at_jwks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let set = jwks(&app).await;
    assert_eq!(set.keys.len(), 3);
    let raw: Value = app.get("/jwks").await.json().await.unwrap();
    let mut algs: Vec<&str> = raw["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            assert_eq!(k["use"], "sig");
            assert!(k.get("d").is_none(), "no private part: {k}");
            k["alg"].as_str().unwrap()
        })
        .collect();
    algs.sort_unstable();
    assert_eq!(algs, ["ES256", "EdDSA", "RS256"]);
    for alg in ALGS {
        assert!(verifies_with(&set, &token(&app, alg)), "{alg:?}");
    }
    assert_eq!(app.state.store.signing_keys().await.unwrap().len(), 3);
}

async fn rotation_publishes_ahead_and_keeps_old_keys_until_their_tokens_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = jwks(&app).await;
    let old: Vec<String> = ALGS.iter().map(|a| kid_of(&token(&app, *a))).collect();

    app.clock.advance(Duration::days(29));
    app.state.keys.rotate(false).await.unwrap();
    assert_eq!(kids(&jwks(&app).await), kids(&before), "not due yet");

    app.clock.advance(Duration::days(1));
    // The maintenance task may have got there first: either way, one rotation.
    app.state.keys.rotate(false).await.unwrap();
    app.state.keys.rotate(false).await.unwrap();
    let during = jwks(&app).await;
    assert_eq!(during.keys.len(), 6, "new keys are published at once");
    let old_tokens: Vec<String> = ALGS.iter().map(|a| token(&app, *a)).collect();
    for (t, kid) in old_tokens.iter().zip(&old) {
        assert_eq!(
            &kid_of(t),
            kid,
            "the old key signs until the new one activates"
        );
    }

    app.clock.advance(Duration::minutes(60));
    let mut new = Vec::new();
    for alg in ALGS {
        let t = token(&app, alg);
        assert!(!old.contains(&kid_of(&t)), "{alg:?} signs with the new key");
        assert!(
            verifies_with(&during, &t),
            "relying parties already have it"
        );
        new.push(kid_of(&t));
    }

    // Tokens of the old keys stay verifiable until the old keys expire.
    app.clock.advance(Duration::seconds(86_400 - 1));
    app.state.keys.reload().await.unwrap();
    let still = jwks(&app).await;
    assert_eq!(still.keys.len(), 6);
    assert!(old_tokens.iter().all(|t| verifies_with(&still, t)));

    app.clock.advance(Duration::seconds(2));
    app.state.keys.reload().await.unwrap();
    let after = jwks(&app).await;
    let mut expected = new.clone();
    expected.sort();
    assert_eq!(kids(&after), expected, "the old keys are gone");
    assert!(old_tokens.iter().all(|t| !verifies_with(&after, t)));
}

async fn encrypted_keys_need_the_same_encryption_key_at_restart(backend: Backend) {
    use base64::Engine;
    use idp::config::Secret;
    let kek = |byte: u8| Secret::new(base64::engine::general_purpose::STANDARD.encode([byte; 32]));
    let app = TestApp::spawn_with(backend, |c| c.keys.encryption_key = Some(kek(1))).await;
    let stored = app.state.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 3);
    for key in &stored {
        assert!(key.private_key_encrypted);
        assert!(!key.private_key.contains("BEGIN"), "{}", key.private_key);
    }
    let kid = kid_of(&token(&app, IdTokenAlg::RS256));

    let mut config = idp::config::Config::clone(&app.state.config);
    config.mail.dir = app.dir.path().join("mail-2");
    let clock = Arc::new(app.clock.clone());
    let again = idp::Application::build_with(config.clone(), clock.clone(), None)
        .await
        .expect("a restart with the same key works");
    assert_eq!(
        again.state().keys.signing_kid(IdTokenAlg::RS256),
        Some(kid),
        "and signs with the same keys"
    );

    config.keys.encryption_key = Some(kek(2));
    let err = idp::Application::build_with(config, clock, None)
        .await
        .err()
        .expect("another key is refused");
    assert!(
        err.to_string()
            .contains("cannot decrypt signing keys: wrong keys.encryption_key?"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_rotation_on_one_node_is_seen_by_the_other_after_reload() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let before = kids(&jwks(&app).await);
    // `idp keys rotate`, run by an operator with the deployment's database.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("idp.toml");
    let url = app.state.config.database.url.expose();
    std::fs::write(&file, format!("[database]\nurl = \"{url}\"\n")).unwrap();
    idp::cli::run(idp::cli::Cli {
        config: Some(file),
        command: idp::cli::Command::Keys(idp::cli::KeysCommand::Rotate),
    })
    .await
    .unwrap();
    assert_eq!(app.state.store.signing_keys().await.unwrap().len(), 6);
    assert_eq!(
        kids(&jwks(&app).await),
        before,
        "cached until the next reload"
    );
    app.state.keys.reload().await.unwrap();
    assert_eq!(jwks(&app).await.keys.len(), 6);
    let other = app.spawn_beside(|_| {}).await;
    assert_eq!(kids(&jwks(&other).await), kids(&jwks(&app).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_due_together_rotate_once() {
    let first = TestApp::spawn(Backend::Postgres).await;
    let second = first.spawn_beside(|_| {}).await;
    for node in [&first, &second] {
        node.clock
            .advance(Duration::days(30) + Duration::minutes(1));
    }
    let (a, b) = tokio::join!(
        first.state.keys.rotate(false),
        second.state.keys.rotate(false)
    );
    let added = [a.unwrap(), b.unwrap()];
    assert!(added.iter().filter(|x| **x).count() <= 1, "{added:?}");
    let stored = first.state.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 6, "one new key per algorithm");
    for alg in ALGS {
        assert_eq!(stored.iter().filter(|k| k.alg == alg).count(), 2, "{alg:?}");
    }
    for node in [&first, &second] {
        node.state.keys.reload().await.unwrap();
        assert_eq!(jwks(node).await.keys.len(), 6);
    }
}

/// Many rotations reaching the store at the same instant (no key generation
/// to spread them out): the lock lets exactly one through.
async fn racing_rotations_in_the_store_add_one_set(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let t0 = app.clock.now();
    let attempts = (0..6).map(|i| {
        let store = app.state.store.clone();
        let keys: Vec<idp::store::StoredKey> = ALGS
            .iter()
            .map(|alg| idp::store::StoredKey {
                kid: format!("race-{i}-{}", alg.as_str()),
                alg: *alg,
                private_key: "not a real key: the store does not look".into(),
                private_key_encrypted: false,
                public_jwk: json!({}),
                created_at: t0 + Duration::seconds(1),
                activates_at: t0 + Duration::hours(1),
                retires_at: None,
                expires_at: None,
            })
            .collect();
        tokio::spawn(async move {
            store
                .add_signing_keys_unless_fresh(
                    keys,
                    t0 + Duration::hours(1),
                    t0 + Duration::days(2),
                    t0,
                )
                .await
        })
    });
    let mut added = 0;
    for attempt in futures::future::join_all(attempts).await {
        added += usize::from(attempt.unwrap().unwrap());
    }
    assert_eq!(added, 1);
    let stored = app.state.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 6);
    let retired = stored.iter().filter(|k| k.retires_at.is_some()).count();
    assert_eq!(
        retired, 3,
        "the first set retires when the new one activates"
    );
}
