//! Grants given to relying parties: remembered consent and refresh tokens.
//! Refresh tokens are opaque; only their SHA-256 is stored. Every rotation
//! stays in the token's family, so reuse of a rotated token can revoke the
//! whole family (OAuth 2.0 Security BCP, refresh token rotation).

use time::OffsetDateTime;

use super::Result;
use crate::domain::{ClientId, RequestedClaims, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub id: String,
    pub family_id: String,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub auth_time: OffsetDateTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    /// The claims the authorization request asked for by name (OIDC Core
    /// 5.5): every token of the family releases them.
    pub claims: RequestedClaims,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub family_expires_at: OffsetDateTime,
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

/// A live family of refresh tokens (one sign-in at one client, through its
/// rotations), as administrators see it: never a token or its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshFamily {
    pub family_id: String,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    /// When the family's first token was issued.
    pub created_at: OffsetDateTime,
    /// The latest rotation (a refresh grant); `None` if never used.
    pub last_used_at: Option<OffsetDateTime>,
    /// The current token's sliding expiry.
    pub expires_at: OffsetDateTime,
    pub family_expires_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: String,
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub auth_time: OffsetDateTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub claims: RequestedClaims,
    pub expires_at: OffsetDateTime,
    pub family_expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Consent {
    pub user_id: UserId,
    pub client_id: ClientId,
    pub scopes: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait OAuthStore {
    async fn insert_refresh_token(
        &self,
        token: NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<RefreshToken>;
    async fn refresh_token_by_hash(&self, token_hash: &str) -> Result<Option<RefreshToken>>;
    /// Marks `old` rotated and stores its successor, atomically. `None` when
    /// `old` was rotated or revoked meanwhile (a concurrent use): nothing stored.
    async fn rotate_refresh_token(
        &self,
        old_id: &str,
        new: NewRefreshToken,
        now: OffsetDateTime,
    ) -> Result<Option<RefreshToken>>;
    async fn revoke_refresh_family(&self, family_id: &str, now: OffsetDateTime) -> Result<u64>;
    async fn revoke_user_refresh_tokens(&self, user: &UserId, now: OffsetDateTime) -> Result<u64>;
    /// The user's families whose current token is live at `now` (not
    /// revoked, not expired), the most recently started first.
    async fn live_refresh_families(
        &self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<RefreshFamily>>;
    /// Revokes the family if it is one of the user's live families; returns
    /// the client it was issued to, `None` (nothing changed) otherwise.
    async fn revoke_user_refresh_family(
        &self,
        user: &UserId,
        family_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ClientId>>;

    async fn consent(&self, user: &UserId, client: &ClientId) -> Result<Option<Consent>>;
    /// Remembers the scopes (added to any granted before).
    async fn grant_consent(
        &self,
        user: &UserId,
        client: &ClientId,
        scopes: &[String],
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Forgets the consent and revokes the client's refresh tokens for the user.
    async fn revoke_consent(
        &self,
        user: &UserId,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<bool>;
    async fn consents(&self, user: &UserId) -> Result<Vec<Consent>>;
}
