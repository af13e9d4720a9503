//! Deleting rows that have outlived their use (see `crate::retention` for
//! the job and its rules). The store offers one bounded delete per kind of
//! row, run inside a session that holds the deployment-wide retention lock,
//! so one node prunes at a time.

use time::OffsetDateTime;

use super::Result;

/// The PostgreSQL session-level advisory lock a pruning session holds (the
/// signing keys' rotation uses 7020240901). Public so tests can hold it.
pub const RETENTION_LOCK_KEY: i64 = 7_020_240_906;

/// The `application_name` of the pruning session's PostgreSQL connection, so
/// an operator sees it in `pg_stat_activity`.
pub const RETENTION_APPLICATION_NAME: &str = "idp-retention";

/// One kind of row to prune, with the instants that decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    /// Audit events that occurred before `before`.
    AuditEvent { before: OffsetDateTime },
    /// Delivered mail sent before `before`.
    SentMail { before: OffsetDateTime },
    /// Mail that failed for good, last attempted before `before`.
    FailedMail { before: OffsetDateTime },
    /// Refresh tokens of families dead (every token expired or revoked) at
    /// `dead_at`: a family with a live token keeps all its rotated tokens,
    /// which reuse detection needs.
    RefreshToken { dead_at: OffsetDateTime },
    /// Reset links used or expired at `dead_at`.
    PasswordReset { dead_at: OffsetDateTime },
    /// Verification links used or expired at `dead_at`.
    EmailVerification { dead_at: OffsetDateTime },
    /// Revocations of access tokens expired at `now` (the row decides nothing after).
    RevokedAccessToken { now: OffsetDateTime },
    /// Signing keys out of JWKS at `now` (`expires_at` passed) that retired
    /// at or before `retired_by` (no token they signed can still be valid).
    SigningKey {
        now: OffsetDateTime,
        retired_by: OffsetDateTime,
    },
}

impl Prune {
    /// Every table the job prunes (the metric's `table` label values).
    pub const TABLES: [&'static str; 7] = [
        "audit_event",
        "mail_outbox",
        "refresh_token",
        "password_reset_token",
        "email_verification_token",
        "revoked_access_token",
        "signing_key",
    ];

    pub fn table(&self) -> &'static str {
        match self {
            Prune::AuditEvent { .. } => "audit_event",
            Prune::SentMail { .. } | Prune::FailedMail { .. } => "mail_outbox",
            Prune::RefreshToken { .. } => "refresh_token",
            Prune::PasswordReset { .. } => "password_reset_token",
            Prune::EmailVerification { .. } => "email_verification_token",
            Prune::RevokedAccessToken { .. } => "revoked_access_token",
            Prune::SigningKey { .. } => "signing_key",
        }
    }
}

#[async_trait::async_trait]
pub trait RetentionStore {
    /// Opens a pruning session holding the retention lock (PostgreSQL: a
    /// session-level advisory lock on a connection of its own, so the lock
    /// ends with that connection however the pass ends); `None` when another
    /// node holds it. SQLite serves one node: no lock.
    async fn begin_pruning(&self) -> Result<Option<Box<dyn PruneSession>>>;
}

#[async_trait::async_trait]
pub trait PruneSession: Send {
    /// Deletes at most `limit` rows of `what` in one statement, committed on
    /// its own; returns how many.
    async fn prune_batch(&mut self, what: &Prune, limit: u32) -> Result<u64>;

    /// Ends the session and releases the lock (dropping it does too).
    async fn finish(self: Box<Self>) -> Result<()>;
}
