//! Key material: new keys from aws-lc-rs (RSA 2048, P-256, Ed25519), their
//! PKCS#8 PEM, their public JWK, the parsed key pairs that sign, and the
//! key jsonwebtoken verifies with.
//!
//! Tokens are signed here, not by `jsonwebtoken::encode`: it parses the PEM's
//! key again for every signature (for P-256 that costs more than the
//! signature itself). A key pair is parsed once when its key is loaded, and
//! its two JOSE headers (`typ` `JWT` and `at+jwt`) are encoded then too.

use std::borrow::Cow;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::Serialize;

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

/// The DER inside our PKCS#8 PEM (`BEGIN PRIVATE KEY`).
fn pkcs8_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PRIVATE KEY-----")?
        .strip_suffix("-----END PRIVATE KEY-----")?;
    let joined: String = body.split_ascii_whitespace().collect();
    STANDARD.decode(joined).ok()
}

/// A parsed private key, ready to sign.
enum Private {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Private {
    fn parse(alg: IdTokenAlg, der: &[u8]) -> Result<Self, String> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| e.to_string();
        Ok(match alg {
            IdTokenAlg::RS256 => Private::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            IdTokenAlg::ES256 => Private::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            IdTokenAlg::EdDSA => Private::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
        })
    }

    /// The JWS signature of `input` (RFC 7518 §3.3, §3.4; RFC 8037 §3.1):
    /// RSASSA-PKCS1-v1_5 with SHA-256, ECDSA P-256 SHA-256 as r ‖ s, Ed25519.
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, String> {
        let failed = |_| "the signature could not be made".to_owned();
        match self {
            Private::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
            Private::Ec(pair) => Ok(pair
                .sign(&SystemRandom::new(), input)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Private::Ed(pair) => Ok(pair.sign(input).as_ref().to_vec()),
        }
    }
}

/// The base64url of a JOSE header: `alg`, `kid`, `typ`, in that order.
fn encoded_header(alg: IdTokenAlg, kid: &str, typ: &str) -> Result<String, String> {
    #[derive(Serialize)]
    struct Header<'a> {
        alg: &'a str,
        kid: &'a str,
        typ: &'a str,
    }
    let json = serde_json::to_vec(&Header {
        alg: alg.as_str(),
        kid,
        typ,
    })
    .map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// The `typ` of ID tokens and of access tokens (RFC 9068).
const TYPES: [&str; 2] = ["JWT", "at+jwt"];

/// A key ready to sign and verify.
pub(super) struct Material {
    private: Private,
    pub decoding: DecodingKey,
    alg: IdTokenAlg,
    kid: String,
    /// [`encoded_header`] for each of [`TYPES`].
    headers: [String; 2],
}

impl Material {
    /// Parses a stored key, then signs and verifies once: a private key that
    /// does not match its published JWK is refused here, not after it has
    /// signed tokens nobody can verify. The check is jsonwebtoken's, with
    /// the published JWK alone, as a relying party would check.
    pub fn new(
        alg: IdTokenAlg,
        kid: &str,
        pem: &str,
        public_jwk: &serde_json::Value,
    ) -> Result<Self, KeyError> {
        let fail = crypto("stored key");
        let jwk: Jwk =
            serde_json::from_value(public_jwk.clone()).map_err(|e| fail(e.to_string()))?;
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| fail(e.to_string()))?;
        let der = pkcs8_der(pem).ok_or_else(|| fail("not a PKCS#8 PEM private key".into()))?;
        let private = Private::parse(alg, &der).map_err(&fail)?;
        let headers = TYPES.map(|typ| encoded_header(alg, kid, typ));
        let [Ok(id), Ok(access)] = headers else {
            return Err(fail("header".into()));
        };
        let material = Self {
            private,
            decoding,
            alg,
            kid: kid.to_owned(),
            headers: [id, access],
        };
        let token = material.sign("JWT", &serde_json::json!({ "probe": true }))?;
        let mut validation = Validation::new(jwt_alg(alg));
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(&token, &material.decoding, &validation)
            .map_err(|_| fail("private key does not match its public JWK".into()))?;
        Ok(material)
    }

    /// `claims` as a compact JWS (RFC 7515 §7.1) with header `alg`, `kid`
    /// and `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let header = match TYPES.iter().position(|t| *t == typ) {
            Some(i) => Cow::Borrowed(&self.headers[i]),
            None => Cow::Owned(encoded_header(self.alg, &self.kid, typ).map_err(KeyError::Sign)?),
        };
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Sign(e.to_string()))?;
        // header . payload . signature (at most 256 bytes, RSA 2048)
        let mut token = String::with_capacity(header.len() + payload.len().div_ceil(3) * 4 + 348);
        token.push_str(&header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self
            .private
            .sign(token.as_bytes())
            .map_err(KeyError::Sign)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}
