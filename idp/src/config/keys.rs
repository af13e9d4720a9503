//! `[keys]`: token signing keys.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::secret::Secret;

/// Token signing keys: rotation schedule and encryption at rest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// A new set of keys is made when the newest is this old.
    pub rotation_days: u64,
    /// A new key is in JWKS this long before it signs, so relying parties
    /// that cached JWKS see it first.
    pub publish_ahead_minutes: u64,
    /// How often each node reloads the keys from the durable store.
    pub refresh_secs: u64,
    /// A key stays in JWKS this long after it stops signing: at least the
    /// lifetime of the longest-lived token it signs.
    pub token_max_lifetime_secs: u64,
    /// Base64 of 32 random bytes: private keys are stored encrypted with it
    /// (AES-256-GCM). Unset: stored as plain PEM.
    pub encryption_key: Option<Secret>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            rotation_days: 30,
            publish_ahead_minutes: 60,
            refresh_secs: 30,
            token_max_lifetime_secs: 24 * 60 * 60,
            encryption_key: None,
        }
    }
}

/// How long relying parties may cache `/jwks` (its `Cache-Control`).
pub const JWKS_MAX_AGE_SECS: u64 = 300;

impl KeysConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=365).contains(&self.rotation_days) {
            return Err(invalid("keys.rotation_days", "must be between 1 and 365"));
        }
        if !(1..=3600).contains(&self.refresh_secs) {
            return Err(invalid("keys.refresh_secs", "must be between 1 and 3600"));
        }
        // Every node and every relying party's JWKS cache must have seen a
        // key before it signs.
        let ahead = self.publish_ahead_minutes.saturating_mul(60);
        if ahead <= self.refresh_secs + JWKS_MAX_AGE_SECS
            || self.publish_ahead_minutes >= self.rotation_days * 24 * 60
        {
            return Err(invalid(
                "keys.publish_ahead_minutes",
                format!(
                    "must exceed keys.refresh_secs + {JWKS_MAX_AGE_SECS} s (the JWKS cache time) \
                     and be shorter than keys.rotation_days"
                ),
            ));
        }
        if !(60..=30 * 24 * 60 * 60).contains(&self.token_max_lifetime_secs) {
            return Err(invalid(
                "keys.token_max_lifetime_secs",
                "must be between 60 and 2592000",
            ));
        }
        if let Some(key) = &self.encryption_key {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
            if decoded.map(|k| k.len()) != Ok(32) {
                return Err(invalid(
                    "keys.encryption_key",
                    "must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
                ));
            }
        }
        Ok(())
    }
}
