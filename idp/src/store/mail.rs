//! The mail outbox: a message is a row written in the same transaction as the
//! data that caused it (a reset token, a verification link), and a worker
//! delivers it later. Claims are leases, so several nodes can run workers on
//! one database without sending a message twice.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;

use super::Result;

/// A message to send, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub recipient: String,
    pub subject: String,
    pub body_text: String,
    /// An HTML alternative of `body_text`.
    pub body_html: Option<String>,
    /// The From of this message (`Name <address>`, the portal's own sender),
    /// when it is not `mail.from`.
    pub sender: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailStatus {
    /// Waiting for its next attempt (or being attempted under a claim).
    Pending,
    Sent,
    /// Out of attempts, or refused for good; only an administrator's retry
    /// sends it again.
    Failed,
}

impl MailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MailStatus::Pending => "pending",
            MailStatus::Sent => "sent",
            MailStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MailStatus {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "pending" => Ok(MailStatus::Pending),
            "sent" => Ok(MailStatus::Sent),
            "failed" => Ok(MailStatus::Failed),
            other => Err(format!("unknown mail status {other:?}")),
        }
    }
}

/// One row of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: String,
    pub mail: OutgoingMail,
    pub status: MailStatus,
    /// Failed attempts so far.
    pub attempts: i32,
    pub next_attempt_at: OffsetDateTime,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

#[async_trait::async_trait]
pub trait MailStore {
    /// Queues a message, due now; returns its id. Store methods that must
    /// queue mail together with their own writes use `insert_outbox!` inside
    /// their transaction instead.
    async fn enqueue_mail(&self, mail: OutgoingMail, now: OffsetDateTime) -> Result<String>;

    /// Claims up to `limit` due pending messages (`next_attempt_at <= now`,
    /// no live claim) until `now + lease`, oldest first. A claimed message is
    /// invisible to every other claim until the lease passes, on any node.
    async fn claim_due_mail(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> Result<Vec<QueuedMail>>;

    /// The message was delivered: status sent, claim released.
    async fn mark_mail_sent(&self, id: &str, now: OffsetDateTime) -> Result<()>;

    /// Records a failed attempt (one more in `attempts`, `error` kept) and
    /// releases the claim: with `retry_at` the message stays pending until
    /// then; without, it has failed for good.
    async fn mark_mail_attempt_failed(
        &self,
        id: &str,
        error: &str,
        retry_at: Option<OffsetDateTime>,
    ) -> Result<()>;

    /// Newest first, optionally only those with `status`.
    async fn list_mail(&self, status: Option<MailStatus>, limit: u32) -> Result<Vec<QueuedMail>>;

    /// Puts a failed message back to pending, due `now`, with a fresh count
    /// of attempts. [`Error::NotFound`](super::Error::NotFound) unless the
    /// message exists and has failed.
    async fn retry_mail(&self, id: &str, now: OffsetDateTime) -> Result<()>;
}
