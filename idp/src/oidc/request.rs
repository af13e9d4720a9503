//! The authorization request (OIDC Core 3.1.2.1) as validated at
//! `/authorize`, kept in the ephemeral store under a random id while the
//! person signs in and consents, and the code that ends it.

use serde::{Deserialize, Serialize};

use crate::domain::{ClientId, UserId};
use crate::ephemeral::Key;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// S256 challenge (RFC 7636).
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Unix seconds: a sign-in at or after this satisfies `prompt=login`.
    pub created_at: i64,
    /// Who approved the scopes on the consent page for this request: the
    /// approval counts for that user alone.
    #[serde(default)]
    pub consented_by: Option<UserId>,
    /// SHA-256 of the browser binding of the browser that started the
    /// request (`web::browser`): no other browser can continue it.
    #[serde(default)]
    pub browser: String,
    /// `acr_values` asked for the second step (`2`).
    #[serde(default)]
    pub acr_mfa: bool,
}

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

/// Under the SHA-256 of the request id (the browser carries the id in its
/// URLs): a copy of the store cannot resume anyone's request.
pub fn request_key(id: &str) -> Key<AuthRequest> {
    crate::ephemeral::keys::secret("authreq", id)
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
/// is never among the defaults.
pub const SUPPORTED_SCOPES: [&str; 5] = ["openid", "profile", "email", "offline_access", "admin"];

/// The scopes discovery lists: relying parties have no use for `admin`, so
/// the public document does not advertise it.
pub const ADVERTISED_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
