//! Keys against a real SQLite store in a temporary folder and a manual clock.

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Value, json};
use time::Duration;

use super::*;
use crate::clock::{Clock, ManualClock};
use crate::config::{ConnectionUrl, DatabaseConfig, KeysConfig, Secret};
use crate::store;

struct Fixture {
    keys: SigningKeys,
    store: SharedStore,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

async fn fixture(config: KeysConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseConfig {
        url: ConnectionUrl::new(format!("sqlite://{}", dir.path().join("k.db").display())),
        ..DatabaseConfig::default()
    };
    let store = store::connect(&db).await.unwrap();
    store.migrate().await.unwrap();
    let clock = ManualClock::default();
    let kek = encryption_key(&config).unwrap();
    let keys = SigningKeys::load(store.clone(), Arc::new(clock.clone()), &config, kek)
        .await
        .unwrap();
    Fixture {
        keys,
        store,
        clock,
        _dir: dir,
    }
}

fn claims(clock: &ManualClock) -> Value {
    let now = clock.now().unix_timestamp();
    json!({ "iss": "https://id.example", "sub": "u1", "aud": "rp", "iat": now, "exp": now + 300 })
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

#[tokio::test]
async fn each_algorithm_signs_and_verifies() {
    let f = fixture(KeysConfig::default()).await;
    let expect = VerifyOptions {
        typ: Some("JWT"),
        issuer: Some("https://id.example"),
        audience: Some("rp"),
        ..VerifyOptions::default()
    };
    for alg in ALL_ALGS {
        let token = f.keys.sign(alg, "JWT", &claims(&f.clock)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, jwt_alg(alg));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid, f.keys.signing_kid(alg));
        let back = f.keys.verify_claims(&token, &expect).unwrap();
        assert_eq!(back["sub"], "u1");
        // Another typ, issuer or audience is refused.
        let at = VerifyOptions {
            typ: Some("at+jwt"),
            ..expect
        };
        assert!(matches!(
            f.keys.verify_claims(&token, &at),
            Err(KeyError::Token(TokenError::WrongType))
        ));
        let other_aud = VerifyOptions {
            audience: Some("other"),
            ..expect
        };
        assert!(matches!(
            f.keys.verify_claims(&token, &other_aud),
            Err(KeyError::Token(TokenError::WrongAudience))
        ));
        // A flipped signature byte is refused.
        let (head, sig) = token.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}.{flipped}{}", &sig[1..]);
        assert!(f.keys.verify_claims(&tampered, &expect).is_err());
    }
}

#[tokio::test]
async fn expiry_follows_the_app_clock() {
    let f = fixture(KeysConfig::default()).await;
    let token = f
        .keys
        .sign(IdTokenAlg::ES256, "at+jwt", &claims(&f.clock))
        .unwrap();
    #[derive(serde::Deserialize)]
    struct Sub {
        sub: String,
    }
    let ok: Sub = f.keys.verify(&token, &VerifyOptions::default()).unwrap();
    assert_eq!(ok.sub, "u1");
    f.clock.advance(Duration::seconds(301));
    assert!(matches!(
        f.keys.verify::<Sub>(&token, &VerifyOptions::default()),
        Err(KeyError::Token(TokenError::Expired))
    ));
    let lenient = VerifyOptions {
        leeway: Duration::seconds(5),
        ..VerifyOptions::default()
    };
    assert!(f.keys.verify::<Sub>(&token, &lenient).is_ok());
}

#[tokio::test]
async fn jwks_holds_one_public_key_per_algorithm_that_verifies_tokens() {
    let f = fixture(KeysConfig::default()).await;
    let body = f.keys.jwks_json();
    assert!(
        !String::from_utf8_lossy(&body).contains("\"d\""),
        "no private part"
    );
    let set: JwkSet = serde_json::from_slice(&body).unwrap();
    assert_eq!(set.keys.len(), 3);
    let raw: Value = serde_json::from_slice(&body).unwrap();
    for alg in ALL_ALGS {
        let entry = raw["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["alg"] == alg.as_str())
            .unwrap_or_else(|| panic!("no {alg:?} in {raw}"));
        assert_eq!(entry["use"], "sig");
        let expected_kty = match alg {
            IdTokenAlg::RS256 => "RSA",
            IdTokenAlg::ES256 => "EC",
            IdTokenAlg::EdDSA => "OKP",
        };
        assert_eq!(entry["kty"], expected_kty);
        let token = f.keys.sign(alg, "JWT", &claims(&f.clock)).unwrap();
        let jwk = set.find(&kid_of(&token)).unwrap();
        let key = DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = Validation::new(jwt_alg(alg));
        validation.set_audience(&["rp"]);
        validation.validate_exp = false;
        jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
    }
    // The same bytes until the set changes.
    assert_eq!(f.keys.jwks_json().as_ptr(), body.as_ptr());
}

#[tokio::test]
async fn rotation_publishes_ahead_then_signs_then_drops_the_old_key() {
    let f = fixture(KeysConfig::default()).await;
    let old = f.keys.signing_kid(IdTokenAlg::EdDSA).unwrap();
    assert!(!f.keys.rotate(false).await.unwrap(), "not due yet");
    f.clock.advance(Duration::days(30));
    assert!(f.keys.rotate(false).await.unwrap());
    assert!(!f.keys.rotate(false).await.unwrap(), "once per period");
    let jwks = String::from_utf8_lossy(&f.keys.jwks_json()).into_owned();
    let published: JwkSet = serde_json::from_str(&jwks).unwrap();
    assert_eq!(published.keys.len(), 6);
    assert_eq!(f.keys.signing_kid(IdTokenAlg::EdDSA), Some(old.clone()));
    f.clock.advance(Duration::minutes(60));
    let new = f.keys.signing_kid(IdTokenAlg::EdDSA).unwrap();
    assert_ne!(new, old);
    // A token the old key signed still verifies until the old key expires.
    f.clock.advance(Duration::seconds(-1));
    let by_old = f
        .keys
        .sign(
            IdTokenAlg::EdDSA,
            "JWT",
            &json!({ "exp": f.clock.now().unix_timestamp() + 86_300 }),
        )
        .unwrap();
    assert_eq!(kid_of(&by_old), old);
    f.clock.advance(Duration::seconds(86_000));
    f.keys.maintain().await.unwrap();
    assert!(
        f.keys
            .verify_claims(&by_old, &VerifyOptions::default())
            .is_ok()
    );
    f.clock.advance(Duration::seconds(500));
    f.keys.maintain().await.unwrap();
    let published: JwkSet = serde_json::from_slice(&f.keys.jwks_json()).unwrap();
    assert_eq!(published.keys.len(), 3);
    assert!(published.find(&old).is_none());
    assert!(published.find(&new).is_some());
    assert_eq!(
        f.store.signing_keys().await.unwrap().len(),
        6,
        "out of JWKS; the rows are the retention job's to delete"
    );
}

#[tokio::test]
async fn forced_rotation_always_adds_keys() {
    let f = fixture(KeysConfig::default()).await;
    let kids = f.keys.rotate_keys(true).await.unwrap().unwrap();
    assert_eq!(kids.len(), 3);
    let stored = f.store.signing_keys().await.unwrap();
    let now = f.clock.now();
    let states: Vec<_> = stored.iter().map(|k| KeyState::of(k, now)).collect();
    assert_eq!(states.iter().filter(|s| **s == KeyState::Active).count(), 3);
    assert_eq!(states.iter().filter(|s| **s == KeyState::Next).count(), 3);
}

#[tokio::test]
async fn private_keys_are_encrypted_with_the_configured_key() {
    use base64::Engine;
    let b64 = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    let config = KeysConfig {
        encryption_key: Some(Secret::new(b64(7))),
        ..KeysConfig::default()
    };
    let f = fixture(config.clone()).await;
    let stored = f.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 3);
    for key in &stored {
        assert!(key.private_key_encrypted);
        assert!(!key.private_key.contains("BEGIN"), "{}", key.private_key);
    }
    let clock: SharedClock = Arc::new(f.clock.clone());
    let load = |config: KeysConfig| {
        let (store, clock) = (f.store.clone(), clock.clone());
        async move {
            let kek = encryption_key(&config)?;
            SigningKeys::load(store, clock, &config, kek).await
        }
    };
    let again = load(config.clone()).await;
    assert!(again.is_ok(), "same key: {again:?}");
    let wrong = KeysConfig {
        encryption_key: Some(Secret::new(b64(8))),
        ..KeysConfig::default()
    };
    let err = load(wrong).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decrypt signing keys: wrong keys.encryption_key?"
    );
    let none = load(KeysConfig::default()).await.unwrap_err();
    assert!(matches!(none, KeyError::NoEncryptionKey), "{none}");
}

#[test]
fn key_states_follow_the_dates() {
    let t = time::OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
    let key = StoredKey {
        kid: "k".into(),
        alg: IdTokenAlg::RS256,
        private_key: String::new(),
        private_key_encrypted: false,
        public_jwk: json!({}),
        created_at: t,
        activates_at: t + Duration::hours(1),
        retires_at: Some(t + Duration::days(30)),
        expires_at: Some(t + Duration::days(31)),
    };
    assert_eq!(KeyState::of(&key, t), KeyState::Next);
    assert_eq!(KeyState::of(&key, t + Duration::hours(1)), KeyState::Active);
    assert_eq!(
        KeyState::of(&key, t + Duration::days(30)),
        KeyState::Retired
    );
}

#[test]
fn a_private_key_that_does_not_match_its_jwk_is_refused() {
    for alg in ALL_ALGS {
        let pem = material::generate_pem(alg).unwrap();
        let (kid, jwk) = material::public_jwk(alg, &pem).unwrap();
        assert!(material::Material::new(alg, &kid, &pem, &jwk).is_ok());
        let other = material::generate_pem(alg).unwrap();
        let refused = material::Material::new(alg, &kid, &other, &jwk).err();
        assert!(
            refused.is_some_and(|e| e.to_string().contains("does not match")),
            "{alg:?}"
        );
        let garbled = pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
        assert!(material::Material::new(alg, &kid, &garbled, &jwk).is_err());
    }
}

#[tokio::test]
async fn tokens_are_compact_jws_with_header_alg_kid_typ() {
    let f = fixture(KeysConfig::default()).await;
    for alg in ALL_ALGS {
        for typ in ["JWT", "at+jwt", "logout+jwt"] {
            let token = f.keys.sign(alg, typ, &claims(&f.clock)).unwrap();
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[0])
                .unwrap();
            let kid = f.keys.signing_kid(alg).unwrap();
            assert_eq!(
                String::from_utf8(header).unwrap(),
                format!(
                    r#"{{"alg":"{}","kid":"{kid}","typ":"{typ}"}}"#,
                    alg.as_str()
                )
            );
            // What a relying party does: the published JWK alone verifies it.
            let set: JwkSet = serde_json::from_slice(&f.keys.jwks_json()).unwrap();
            let key = DecodingKey::from_jwk(set.find(&kid).unwrap()).unwrap();
            let mut validation = Validation::new(jwt_alg(alg));
            validation.set_audience(&["rp"]);
            let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
            assert_eq!(data.claims, claims(&f.clock));
        }
    }
}
