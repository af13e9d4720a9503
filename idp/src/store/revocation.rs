//! Access tokens revoked before their expiry (by `/revoke` or by the replay
//! of the code that issued them). The ephemeral store answers the hot path;
//! these rows are what survives the loss of its data (see
//! `oidc::revocation`). A row is useless once its token has expired.

use time::OffsetDateTime;

use super::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct RevokedToken {
    pub jti: String,
    /// The token's own expiry: after it the row decides nothing.
    pub expires_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait RevocationStore {
    /// Records the revocation (again is no error) and removes rows of
    /// tokens expired at `now`.
    async fn revoke_access_token(&self, token: &RevokedToken, now: OffsetDateTime) -> Result<()>;
    /// The revocations of tokens still live at `now`.
    async fn revoked_access_tokens(&self, now: OffsetDateTime) -> Result<Vec<RevokedToken>>;
}
