//! What the provider signs and later checks, shared below the
//! capabilities: the signing keys (published by `oidc::jwks`), the claims of
//! our access tokens (read by the OpenID provider and by the admin API's
//! bearer check), and the gate that lets one reload of revocations run at a
//! time on a node (`oidc::revocation`).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::domain::Claim;

pub mod keys;

/// Claims of our access tokens (RFC 9068 section 2.2).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Claims the authorization request asked for by name for userinfo
    /// (OIDC Core 5.5), released there beyond the token's scopes.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub userinfo_claims: BTreeSet<Claim>,
}

/// One reload at a time on this node.
#[derive(Debug, Clone, Default)]
pub struct ReloadGate(Arc<tokio::sync::Mutex<()>>);

impl ReloadGate {
    /// Waits for the reload in progress on this node, if any, then holds
    /// the gate until the guard is dropped.
    pub async fn enter(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}
