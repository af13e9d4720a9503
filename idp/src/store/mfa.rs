//! Two-step sign-in credentials: one TOTP secret per user (unconfirmed until
//! the user entered a code from it) and their single-use recovery codes,
//! stored as SHA-256.

use time::OffsetDateTime;

use super::Result;
use crate::domain::UserId;

#[derive(Debug, Clone, PartialEq)]
pub struct TotpCredential {
    pub user_id: UserId,
    /// Base32, or its envelope when `secret_encrypted`.
    pub secret: String,
    pub secret_encrypted: bool,
    pub digits: u32,
    pub period_secs: u32,
    /// `None` while the user has not yet proved the app works.
    pub confirmed_at: Option<OffsetDateTime>,
    /// The highest time step accepted: a step not above it is a replay.
    pub last_used_step: Option<i64>,
    pub created_at: OffsetDateTime,
}

impl TotpCredential {
    pub fn is_active(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// A secret to enrol: not active until [`MfaStore::confirm_totp`].
#[derive(Debug, Clone)]
pub struct NewTotp {
    pub secret: String,
    pub secret_encrypted: bool,
    pub digits: u32,
    pub period_secs: u32,
}

#[async_trait::async_trait]
pub trait MfaStore {
    async fn totp_credential(&self, user: &UserId) -> Result<Option<TotpCredential>>;

    /// Stores an unconfirmed secret, replacing an unconfirmed one.
    /// `false` when TOTP is already on: nothing changed.
    async fn start_totp_enrolment(
        &self,
        user: &UserId,
        totp: NewTotp,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Turns the unconfirmed secret on, records `step` as used and replaces
    /// the recovery codes, in one transaction. `false` when there was no
    /// unconfirmed secret.
    async fn confirm_totp(
        &self,
        user: &UserId,
        step: i64,
        recovery_code_hashes: &[String],
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Accepts `step` only if it is above the last accepted one, atomically
    /// (two nodes racing with the same code: one wins). `false` = replay.
    async fn use_totp_step(&self, user: &UserId, step: i64) -> Result<bool>;

    /// Marks an unused recovery code used. `Some(remaining)` when it was one.
    async fn use_recovery_code(
        &self,
        user: &UserId,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<u32>>;

    /// Voids every recovery code of the user and stores new ones.
    async fn replace_recovery_codes(
        &self,
        user: &UserId,
        hashes: &[String],
        now: OffsetDateTime,
    ) -> Result<()>;

    async fn recovery_codes_remaining(&self, user: &UserId) -> Result<u32>;

    /// Removes the secret and the recovery codes. `false` when there was none.
    async fn delete_totp(&self, user: &UserId) -> Result<bool>;
}
