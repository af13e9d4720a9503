//! `[session]` and `[tokens]`: how long a browser session and what the
//! OpenID provider issues live.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A browser session ends after this long without a request.
    pub idle_minutes: u64,
    /// ...and after this long in any case.
    pub absolute_hours: u64,
}

/// Lifetimes of what the OpenID provider issues.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// A pending authorization request (the sign-in and consent pages) lives this long.
    pub auth_request_ttl_secs: u64,
    /// An authorization code must be redeemed within this.
    pub code_ttl_secs: u64,
    pub access_token_ttl_secs: u64,
    /// Signing algorithm of access tokens: RS256, ES256 or EdDSA.
    pub access_token_alg: crate::domain::IdTokenAlg,
    pub id_token_ttl_secs: u64,
    /// A refresh token unused this long expires (each use starts it again)...
    pub refresh_token_idle_secs: u64,
    /// ...and a chain of refreshes ends this long after the sign-in.
    pub refresh_token_absolute_secs: u64,
    /// A rotated refresh token presented again within this is answered
    /// (lost response, retry) instead of revoking its family. 0: never.
    pub refresh_reuse_grace_secs: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            auth_request_ttl_secs: 600,
            code_ttl_secs: 60,
            access_token_ttl_secs: 600,
            access_token_alg: crate::domain::IdTokenAlg::ES256,
            id_token_ttl_secs: 3600,
            refresh_token_idle_secs: 30 * 24 * 3600,
            refresh_token_absolute_secs: 90 * 24 * 3600,
            refresh_reuse_grace_secs: 0,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_minutes: 8 * 60,
            absolute_hours: 7 * 24,
        }
    }
}

impl SessionConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=60 * 24 * 30).contains(&self.idle_minutes) {
            return Err(invalid(
                "session.idle_minutes",
                "must be between 1 and 43200",
            ));
        }
        if !(1..=24 * 365).contains(&self.absolute_hours) {
            return Err(invalid(
                "session.absolute_hours",
                "must be between 1 and 8760",
            ));
        }
        Ok(())
    }
}

impl TokensConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (key, value, range) in [
            (
                "tokens.auth_request_ttl_secs",
                self.auth_request_ttl_secs,
                60..=3600,
            ),
            ("tokens.code_ttl_secs", self.code_ttl_secs, 10..=600),
            (
                "tokens.access_token_ttl_secs",
                self.access_token_ttl_secs,
                30..=86_400,
            ),
            (
                "tokens.id_token_ttl_secs",
                self.id_token_ttl_secs,
                30..=86_400,
            ),
            (
                "tokens.refresh_token_idle_secs",
                self.refresh_token_idle_secs,
                60..=365 * 86_400,
            ),
            (
                "tokens.refresh_token_absolute_secs",
                self.refresh_token_absolute_secs,
                60..=3 * 365 * 86_400,
            ),
            (
                "tokens.refresh_reuse_grace_secs",
                self.refresh_reuse_grace_secs,
                0..=300,
            ),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        Ok(())
    }
}
