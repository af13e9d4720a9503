//! Account credentials and their single-use tokens. Each method that also
//! sends mail writes the message into the outbox in the same transaction, so
//! a token never exists without its mail, nor a mail without its token.

use time::OffsetDateTime;

use super::{NewUser, OutgoingMail, Result, User};
use crate::domain::{ClientId, UserId};

/// A single-use token: only its SHA-256 is stored.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub hash: String,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EmailVerification {
    Verified(User),
    /// The link was used before and the address is verified: nothing to do.
    AlreadyVerified,
    /// Unknown, expired, or used for an address not verified since.
    Invalid,
}

#[async_trait::async_trait]
pub trait AccountStore {
    /// Creates the account, its verification token and the mail carrying it.
    async fn register_user(
        &self,
        user: NewUser,
        token: NewToken,
        mail: OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<User>;

    async fn verify_email(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<EmailVerification>;

    /// What [`verify_email`](Self::verify_email) would do with this token,
    /// changing nothing: `Verified(user)` means the link is live and would
    /// verify `user`'s address (opening a link must not change state).
    async fn peek_email_verification(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<EmailVerification>;

    /// `portal`: the client whose pending flow asked for the link, recorded
    /// with it (see [`password_reset_portal`](Self::password_reset_portal)).
    async fn create_password_reset(
        &self,
        user: &UserId,
        token: NewToken,
        portal: Option<&ClientId>,
        mail: OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// The portal recorded with a live reset token (`None` when there is
    /// none, or the token is not live).
    async fn password_reset_portal(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ClientId>>;

    /// The user whose live (unused, unexpired) reset token this is.
    async fn password_reset_user(
        &self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<User>>;

    /// Uses the token of `user` and sets the password. In the same transaction:
    /// every other reset link of the user is voided, the lock is cleared, their
    /// refresh tokens are revoked and `mail` is queued. `false` when the token
    /// is no longer live (used meanwhile, expired): nothing changed.
    async fn complete_password_reset(
        &self,
        token_hash: &str,
        user: &UserId,
        password_hash: &str,
        mail: OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// A signed-in change: new hash, reset links voided, refresh tokens
    /// revoked, `mail` queued.
    async fn change_password(
        &self,
        user: &UserId,
        password_hash: &str,
        mail: OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Stores a rehash of the same password (new parameters).
    async fn set_password_hash(
        &self,
        user: &UserId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Locks (Some) or unlocks (None) the account in the durable store.
    async fn set_locked_until(
        &self,
        user: &UserId,
        until: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<()>;
}
