//! The code that ends an authorization request (the pending request itself
//! is the sign-in pipeline's: `crate::signin::request`), and the scopes
//! this provider knows.

use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, RequestedClaims, UserId};
use crate::ephemeral::Key;

/// What an authorization code stands for (single use, short-lived).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub user_id: UserId,
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
    /// The claims the request asked for by name (OIDC Core 5.5).
    #[serde(default)]
    pub claims: RequestedClaims,
}

/// What the first redemption of a code issued, so a replay can revoke it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedeemedCode {
    /// The client the code was issued to: only its own replay revokes.
    /// (Absent in records written before it was kept: any replay revokes.)
    #[serde(default)]
    pub client_id: Option<ClientId>,
    pub access_jti: String,
    pub access_exp: i64,
    pub refresh_family: Option<String>,
}

/// Codes are stored under their SHA-256: a leaked store does not leak codes.
pub fn code_key(code_hash: &str) -> Key<CodeGrant> {
    crate::ephemeral::keys::typed("code", code_hash)
}

pub fn redeemed_key(code_hash: &str) -> Key<RedeemedCode> {
    crate::ephemeral::keys::typed("code-used", code_hash)
}

/// Access tokens revoked before they expire, by `jti`.
pub fn revoked_access_key(jti: &str) -> Key<i64> {
    crate::ephemeral::keys::typed("revoked-at", jti)
}

/// The scopes this provider knows; others in a request are ignored. A
/// client gets only those its registration lists: `admin` (the admin API)
/// is never among the defaults. `address` and `phone` (OIDC Core 5.4) are
/// not here: accounts hold no postal address or phone number, so a request
/// for them is answered as if they were not asked (docs/conformance.md).
pub const SUPPORTED_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "admin"];

/// The scopes discovery lists: relying parties have no use for `admin`, so
/// the public document does not advertise it.
pub const ADVERTISED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
