//! The delivery worker: claims due messages from the outbox under a lease,
//! sends them, and records the outcome. A failed attempt is retried after
//! 30 s, doubling up to 1 h, until `mail.max_attempts`; then the message is
//! marked failed for an administrator to see and retry.
//!
//! Every node runs one worker. The lease keeps a message away from the other
//! nodes while this one works on it; the claim is sized so that the whole
//! batch fits in the lease even when every attempt runs into its deadline.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::transport::{Mailer, SendError};
use crate::clock::SharedClock;
use crate::config::MailConfig;
use crate::store::{self, OutgoingMail, QueuedMail, SharedStore};

/// Shortest claim; longer when one delivery may take longer.
const MIN_LEASE: Duration = Duration::from_secs(60);
const MAX_BATCH: u32 = 20;
const FIRST_RETRY: Duration = Duration::from_secs(30);
const MAX_RETRY: Duration = Duration::from_secs(60 * 60);
/// Stored errors are for people; a relay's whole transcript is not.
const MAX_ERROR_LEN: usize = 1000;

/// The handle capabilities use to send mail; cheap to clone.
#[derive(Debug, Clone)]
pub struct MailQueue {
    store: SharedStore,
    clock: SharedClock,
    wake: Arc<Notify>,
}

impl MailQueue {
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues a message on its own and wakes this node's worker; returns its
    /// id. Mail that belongs with other writes is inserted by the store
    /// method making them, which is followed by [`MailQueue::notify`].
    pub async fn enqueue(&self, mail: OutgoingMail) -> store::Result<String> {
        let id = self.store.enqueue_mail(mail, self.clock.now()).await?;
        self.notify();
        Ok(id)
    }

    /// Wakes the worker now rather than at its next poll.
    pub fn notify(&self) {
        // A permit is kept when the worker is busy, so no wake-up is lost.
        self.wake.notify_one();
    }
}

/// Starts this node's worker; it stops, between two messages, once
/// `shutdown` is cancelled.
pub fn spawn_worker(
    queue: MailQueue,
    mailer: Mailer,
    config: &MailConfig,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    let deadline = mailer.deadline();
    let lease = MIN_LEASE.max(deadline * 2);
    let fit = lease.as_secs() / deadline.as_secs().max(1);
    let worker = Worker {
        batch: u32::try_from(fit.saturating_sub(1))
            .unwrap_or(MAX_BATCH)
            .clamp(1, MAX_BATCH),
        lease,
        deadline,
        poll: Duration::from_millis(config.poll_interval_ms),
        max_attempts: config.max_attempts,
        queue,
        mailer,
        shutdown,
    };
    tokio::spawn(worker.run())
}

struct Worker {
    queue: MailQueue,
    mailer: Mailer,
    shutdown: CancellationToken,
    batch: u32,
    lease: Duration,
    deadline: Duration,
    poll: Duration,
    max_attempts: u32,
}

impl Worker {
    async fn run(self) {
        tracing::debug!(batch = self.batch, lease = ?self.lease, "mail worker started");
        loop {
            let claimed = match self.deliver_due().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "mail outbox unavailable; retrying at the next poll");
                    0
                }
            };
            if self.shutdown.is_cancelled() {
                break;
            }
            // A full batch means more may be due: go on without waiting.
            if claimed >= self.batch as usize {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = self.queue.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
        tracing::debug!("mail worker stopped");
    }

    /// Claims one batch and attempts each message; returns how many were claimed.
    async fn deliver_due(&self) -> store::Result<usize> {
        let store = &self.queue.store;
        let clock = &self.queue.clock;
        let lease = time::Duration::try_from(self.lease).unwrap_or(time::Duration::MINUTE);
        let claimed_at = tokio::time::Instant::now();
        let batch = store.claim_due_mail(clock.now(), lease, self.batch).await?;
        for queued in &batch {
            // Stop rather than send under a lease that may pass mid-send; the
            // rest is claimed again once the lease is over.
            if self.shutdown.is_cancelled() || claimed_at.elapsed() + self.deadline >= self.lease {
                break;
            }
            let outcome = tokio::time::timeout(
                self.deadline,
                self.mailer.send(&queued.id, &queued.mail, clock.now()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transient(format!(
                    "no answer within {} s",
                    self.deadline.as_secs()
                )))
            });
            match outcome {
                Ok(()) => {
                    // If this write fails the message is sent again once the
                    // lease passes: at least once, never lost.
                    store.mark_mail_sent(&queued.id, clock.now()).await?;
                    tracing::info!(mail_id = %queued.id, "mail delivered");
                }
                Err(e) => self.record_failure(queued, &e).await?,
            }
        }
        Ok(batch.len())
    }

    async fn record_failure(&self, queued: &QueuedMail, error: &SendError) -> store::Result<()> {
        let attempts = u32::try_from(queued.attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let now = self.queue.clock.now();
        let retry_at = if error.is_permanent() || attempts >= self.max_attempts {
            None
        } else {
            time::Duration::try_from(backoff(attempts))
                .ok()
                .map(|wait| now + wait)
        };
        let text = truncate(&error.to_string(), MAX_ERROR_LEN);
        self.queue
            .store
            .mark_mail_attempt_failed(&queued.id, &text, retry_at)
            .await?;
        match retry_at {
            Some(at) => tracing::info!(
                mail_id = %queued.id, attempts, retry_at = %at, error = %text,
                "mail delivery failed; will retry"
            ),
            None => tracing::warn!(
                mail_id = %queued.id, attempts, error = %text,
                "mail delivery failed for good; marked failed"
            ),
        }
        Ok(())
    }
}

/// The wait after the `attempts`-th failure: 30 s, 1 min, 2 min, ... at most 1 h.
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30_seconds_up_to_an_hour() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(u32::MAX), MAX_RETRY);
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééééé", 2), "éé…");
    }
}
