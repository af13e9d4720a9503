//! Data retention: deletes rows that have served their purpose, so tables do
//! not grow for years. What goes, and when (durations from `[retention]`):
//!
//! | table | deleted |
//! |---|---|
//! | `revoked_access_token` | once the revoked token has expired |
//! | `signing_key` | once out of JWKS (`expires_at`) and retired `keys.token_max_lifetime_secs` ago |
//! | `password_reset_token`, `email_verification_token` | `link_days` after use or expiry |
//! | `refresh_token` | `refresh_token_days` after the whole family ended (expired or revoked) |
//! | `mail_outbox` | sent: `sent_mail_days` after sending; failed: `failed_mail_days` after the last attempt |
//! | `audit_event` | `audit_days` after it occurred (0: never) |
//!
//! A family with a live refresh token keeps every token it ever rotated:
//! presenting one of them again is how a stolen token is detected (the
//! family is then revoked), whatever the rotated token's own expiry.
//!
//! Each node tries a pass every `interval_minutes` of the app clock; the pass
//! takes the store's retention lock (a PostgreSQL advisory lock on a
//! connection of its own), so one node prunes at a time and the others skip.
//! Deletes go in batches of `batch_size` rows, each committed on its own,
//! with `batch_pause_ms` between them: a pass never holds locks for long, and
//! one cut short (database gone, shutdown) leaves whole batches done and the
//! rest for the next pass.

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::store::{self, retention::Prune};
use crate::web::AppState;

/// How often (real time) the job looks at the app clock to see whether a
/// pass is due.
const CHECK_EVERY: StdDuration = StdDuration::from_secs(30);

/// What a pass did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Rows deleted per table, in the order pruned.
    Pruned(Vec<(&'static str, u64)>),
    /// Another node holds the retention lock: nothing done.
    Skipped,
}

impl Outcome {
    /// Rows deleted from `table` (0 when skipped).
    pub fn pruned(&self, table: &str) -> u64 {
        match self {
            Outcome::Pruned(counts) => counts
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, n)| n)
                .sum(),
            Outcome::Skipped => 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("retention pass could not start: {0}")]
    Begin(store::Error),
    #[error(
        "retention pass stopped while pruning {table} after {pruned} rows (whole batches, kept deleted): {source}"
    )]
    Prune {
        table: &'static str,
        pruned: u64,
        source: store::Error,
    },
}

/// What a pass at `now` deletes, in order: the small tables first, the
/// audit trail (the largest) last.
pub fn plan(config: &Config, now: OffsetDateTime) -> Vec<Prune> {
    let r = &config.retention;
    // Validated ranges (at most 36,500 days, 30 days of seconds) fit an i64.
    let days = |n: u64| Duration::days(i64::try_from(n).unwrap_or(i64::MAX / 86_400));
    let token_life =
        Duration::seconds(i64::try_from(config.keys.token_max_lifetime_secs).unwrap_or(i64::MAX));
    let mut plan = vec![
        Prune::RevokedAccessToken { now },
        Prune::SigningKey {
            now,
            retired_by: now - token_life,
        },
        Prune::PasswordReset {
            dead_at: now - days(r.link_days),
        },
        Prune::EmailVerification {
            dead_at: now - days(r.link_days),
        },
        Prune::RefreshToken {
            dead_at: now - days(r.refresh_token_days),
        },
        Prune::SentMail {
            before: now - days(r.sent_mail_days),
        },
        Prune::FailedMail {
            before: now - days(r.failed_mail_days),
        },
    ];
    if r.audit_days > 0 {
        plan.push(Prune::AuditEvent {
            before: now - days(r.audit_days),
        });
    }
    plan
}

/// Runs one pass now (the job calls the same). Counts go to `/metrics` as
/// each batch commits; the last-success time only when the pass completes.
pub async fn run_once(state: &AppState) -> Result<Outcome, RetentionError> {
    run_pass(state, &CancellationToken::new()).await
}

async fn run_pass(state: &AppState, stop: &CancellationToken) -> Result<Outcome, RetentionError> {
    let Some(mut session) = state
        .store
        .begin_pruning()
        .await
        .map_err(RetentionError::Begin)?
    else {
        return Ok(Outcome::Skipped);
    };
    let now = state.clock.now();
    let r = &state.config.retention;
    let limit = r.batch_size;
    let pause = StdDuration::from_millis(r.batch_pause_ms);
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    let mut total = 0u64;
    'plan: for what in plan(&state.config, now) {
        let table = what.table();
        loop {
            if stop.is_cancelled() {
                break 'plan;
            }
            let deleted = session.prune_batch(&what, limit).await.map_err(|source| {
                RetentionError::Prune {
                    table,
                    pruned: total,
                    source,
                }
            })?;
            if deleted > 0 {
                state.metrics.record_pruned(table, deleted);
            }
            total += deleted;
            match counts.iter_mut().find(|(t, _)| *t == table) {
                Some((_, n)) => *n += deleted,
                None => counts.push((table, deleted)),
            }
            if deleted < u64::from(limit) {
                break;
            }
            if !pause.is_zero() {
                tokio::select! {
                    () = stop.cancelled() => break 'plan,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
    // Every batch is committed already; a failure to close only ends the
    // connection less politely (the server drops the lock with it).
    if let Err(e) = session.finish().await {
        tracing::debug!(error = %e, "retention session did not close cleanly");
    }
    if !stop.is_cancelled() {
        state.metrics.record_retention_success(now.unix_timestamp());
    }
    Ok(Outcome::Pruned(counts))
}

/// When the next pass is due, on the app clock.
#[derive(Debug, Clone, Copy)]
struct Timetable {
    next: OffsetDateTime,
    interval: Duration,
}

impl Timetable {
    fn starting(now: OffsetDateTime, interval: Duration) -> Self {
        Self {
            next: now + interval,
            interval,
        }
    }

    fn is_due(&self, now: OffsetDateTime) -> bool {
        now >= self.next
    }

    /// After a pass, whatever its outcome: the next one `interval` later
    /// (a failure waits like a success, so a dead database is no busy loop,
    /// and a clock that jumped ahead gives one pass, not a burst).
    fn passed(&mut self, now: OffsetDateTime) {
        self.next = now + self.interval;
    }
}

/// Starts this node's retention job; it stops, between two batches, once
/// `shutdown` is cancelled.
pub fn spawn(state: AppState, shutdown: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let minutes = state.config.retention.interval_minutes;
        let interval = Duration::minutes(i64::try_from(minutes).unwrap_or(60));
        let mut timetable = Timetable::starting(state.clock.now(), interval);
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + CHECK_EVERY, CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if !timetable.is_due(state.clock.now()) {
                continue;
            }
            match run_pass(&state, &shutdown).await {
                Ok(Outcome::Pruned(counts)) if counts.iter().any(|(_, n)| *n > 0) => {
                    tracing::info!(?counts, "retention pass deleted expired rows");
                }
                Ok(Outcome::Pruned(_)) => tracing::debug!("retention pass: nothing to delete"),
                Ok(Outcome::Skipped) => {
                    tracing::debug!("retention pass skipped: another node is pruning");
                }
                Err(e) => tracing::warn!("{e}; next try in {minutes} minutes"),
            }
            timetable.passed(state.clock.now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_is_due_one_interval_after_start_and_after_each_pass() {
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut t = Timetable::starting(start, Duration::minutes(60));
        assert!(!t.is_due(start));
        assert!(!t.is_due(start + Duration::minutes(59)));
        assert!(t.is_due(start + Duration::minutes(60)));
        // The clock jumped a year: one pass, then an interval's wait again,
        // whether that pass succeeded or failed.
        let later = start + Duration::days(365);
        assert!(t.is_due(later));
        t.passed(later);
        assert!(!t.is_due(later + Duration::minutes(1)));
        assert!(t.is_due(later + Duration::minutes(60)));
    }

    #[test]
    fn the_plan_follows_the_configuration() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut config = Config::default();
        let plan = plan(&config, now);
        assert!(plan.contains(&Prune::AuditEvent {
            before: now - Duration::days(400)
        }));
        assert!(plan.contains(&Prune::SigningKey {
            now,
            retired_by: now - Duration::days(1)
        }));
        assert!(plan.contains(&Prune::RefreshToken {
            dead_at: now - Duration::days(7)
        }));
        config.retention.audit_days = 0;
        assert!(
            !super::plan(&config, now)
                .iter()
                .any(|p| matches!(p, Prune::AuditEvent { .. })),
            "0 keeps the audit trail forever"
        );
    }
}
