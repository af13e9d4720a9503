//! Token signing keys (the `signing_key` table). Private keys are stored as
//! PKCS#8 PEM, or as an AEAD envelope of it when a key-encryption key is
//! configured; the store never looks inside them.
//!
//! A key's life: published in JWKS from `created_at`, signs from
//! `activates_at` until `retires_at` (set when a newer key of its algorithm
//! replaces it), stays published until `expires_at`, then is deleted by the
//! retention job (`store::retention::Prune::SigningKey`).

use time::OffsetDateTime;

use super::Result;
use crate::domain::IdTokenAlg;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredKey {
    /// The JWK `kid`.
    pub kid: String,
    pub alg: IdTokenAlg,
    /// PKCS#8 PEM, or its encrypted envelope when `private_key_encrypted`.
    pub private_key: String,
    pub private_key_encrypted: bool,
    /// The public JWK as served in JWKS (with `kid`, `alg`, `use`).
    pub public_jwk: serde_json::Value,
    pub created_at: OffsetDateTime,
    pub activates_at: OffsetDateTime,
    pub retires_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
}

#[async_trait::async_trait]
pub trait KeyStore {
    /// Every stored key, oldest first, including expired ones the retention
    /// job has not removed yet (callers filter by their own clock).
    async fn signing_keys(&self) -> Result<Vec<StoredKey>>;

    /// Adds `keys` and retires the keys they replace, in one transaction that
    /// is serialised across nodes (an advisory lock on PostgreSQL, an
    /// immediate write transaction on SQLite).
    ///
    /// When every algorithm of `keys` already has a key created after
    /// `fresh_after`, another node has just rotated: nothing changes and the
    /// answer is `false`. Otherwise the keys are inserted, each not yet
    /// retired key of the same algorithms gets `retires_at =
    /// retire_previous_at` and `expires_at = expire_previous_at`, and the
    /// answer is `true`.
    async fn add_signing_keys_unless_fresh(
        &self,
        keys: Vec<StoredKey>,
        retire_previous_at: OffsetDateTime,
        expire_previous_at: OffsetDateTime,
        fresh_after: OffsetDateTime,
    ) -> Result<bool>;
}
