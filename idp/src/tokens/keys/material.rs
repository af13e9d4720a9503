//! Key material: new keys from aws-lc-rs (RSA 2048, P-256, Ed25519), their
//! PKCS#8 PEM, their public JWK, and the parsed forms jsonwebtoken signs
//! and verifies with.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};

use super::error::KeyError;
use crate::domain::IdTokenAlg;

pub(super) const ALL_ALGS: [IdTokenAlg; 3] =
    [IdTokenAlg::RS256, IdTokenAlg::ES256, IdTokenAlg::EdDSA];

pub(super) fn jwt_alg(alg: IdTokenAlg) -> Algorithm {
    match alg {
        IdTokenAlg::RS256 => Algorithm::RS256,
        IdTokenAlg::ES256 => Algorithm::ES256,
        IdTokenAlg::EdDSA => Algorithm::EdDSA,
    }
}

fn crypto(what: &str) -> impl Fn(String) -> KeyError + '_ {
    move |e| KeyError::Crypto(format!("{what}: {e}"))
}

/// A new private key as PKCS#8 v1 PEM (v1 for Ed25519 too: jsonwebtoken
/// refuses v2, which also carries the public key).
pub(super) fn generate_pem(alg: IdTokenAlg) -> Result<String, KeyError> {
    let fail = crypto("key generation");
    let der: Vec<u8> = match alg {
        IdTokenAlg::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|e| fail(e.to_string()))?;
            let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                .map_err(|e| fail(e.to_string()))?;
            der.as_ref().to_vec()
        }
        IdTokenAlg::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|e| fail(e.to_string()))?
            .as_ref()
            .to_vec(),
        IdTokenAlg::EdDSA => Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8v1())
            .map_err(|e| fail(e.to_string()))?
            .as_ref()
            .to_vec(),
    };
    Ok(pem(&der))
}

fn pem(der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 64);
    out.push_str("-----BEGIN PRIVATE KEY-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn encoding_key(alg: IdTokenAlg, pem: &str) -> Result<EncodingKey, KeyError> {
    let parsed = match alg {
        IdTokenAlg::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        IdTokenAlg::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        IdTokenAlg::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
    };
    parsed.map_err(|e| crypto("private key")(e.to_string()))
}

/// The public JWK of a private key, `kid` set to its RFC 7638 thumbprint
/// (so a kid names one key for good), with `alg` and `use = sig`.
pub(super) fn public_jwk(
    alg: IdTokenAlg,
    pem: &str,
) -> Result<(String, serde_json::Value), KeyError> {
    let fail = crypto("public key");
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, pem)?, jwt_alg(alg))
        .map_err(|e| fail(e.to_string()))?;
    let kid = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| fail(e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    let value = serde_json::to_value(&jwk).map_err(|e| fail(e.to_string()))?;
    Ok((kid, value))
}

/// A key ready to sign and verify.
pub(super) struct Material {
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
}

impl Material {
    /// Parses a stored key, then signs and verifies once: a private key that
    /// does not match its published JWK is refused here, not after it has
    /// signed tokens nobody can verify.
    pub fn new(
        alg: IdTokenAlg,
        pem: &str,
        public_jwk: &serde_json::Value,
    ) -> Result<Self, KeyError> {
        let fail = crypto("stored key");
        let jwk: Jwk =
            serde_json::from_value(public_jwk.clone()).map_err(|e| fail(e.to_string()))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| fail(e.to_string()))?;
        let encoding = encoding_key(alg, pem)?;
        let material = Self { encoding, decoding };
        let probe = serde_json::json!({ "probe": true });
        let token = jsonwebtoken::encode(&Header::new(jwt_alg(alg)), &probe, &material.encoding)
            .map_err(|e| fail(e.to_string()))?;
        let mut validation = Validation::new(jwt_alg(alg));
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(&token, &material.decoding, &validation)
            .map_err(|_| fail("private key does not match its public JWK".into()))?;
        Ok(material)
    }
}
