//! Lockout (DESIGN "Account security rules"): failed sign-ins are counted per
//! normalised email, whether or not an account has it, and per client IP, in
//! the ephemeral store so every node shares them. Enough failures lock the
//! address until the start of the next day in the configured zone (or for a
//! fixed duration). Every attempt is counted before its password or code is
//! checked, and a right one gives its count back; see docs/security.md. The lock of an existing account is also written to the
//! durable store, so administrators see it and it survives a Redis restart.

use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::{LockMode, LockoutConfig};
use crate::domain::Email;
use crate::ephemeral::{Counted, Gated, Key, keys};
use crate::store::User;
use axum::http::StatusCode;
use axum::response::Response;

use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState};

/// Whether a sign-in attempt may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Counted: check the secret, then settle with [`succeeded`] or [`failed`].
    Open(Attempt),
    /// Locked until then, for existing and unknown addresses alike.
    Locked(Lock),
    /// Too many failures from this IP: wait for the window to pass.
    IpThrottled,
}

/// A lock of an address, as one attempt met it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub until: OffsetDateTime,
    /// This attempt took the lock: it alone audits and mails the owner, so a
    /// burst of attempts sends one "sign-in paused" mail per lock.
    pub newly: bool,
}

/// An attempt already counted against the address and the IP, whose
/// password or code is about to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    email_key: String,
    ip: IpAddr,
    /// The address's count including this attempt, and its window.
    counted: Counted,
    /// The IP's count, and its window.
    ip_counted: Counted,
}

impl Attempt {
    /// Its two counters, each with what this attempt counted there.
    fn counters(&self) -> [(Key<u64>, Counted); 2] {
        [
            (email_counter(&self.email_key), self.counted),
            (ip_counter(self.ip), self.ip_counted),
        ]
    }
}

fn window(config: &LockoutConfig) -> Duration {
    Duration::from_secs(config.window_minutes * 60)
}

fn email_counter(email_key: &str) -> Key<u64> {
    keys::counter("login-email", email_key)
}

fn ip_counter(ip: IpAddr) -> Key<u64> {
    keys::counter("login-ip", &ip.to_string())
}

/// The lock in force on the address, if any (ephemeral or durable).
pub async fn current_lock(
    state: &AppState,
    email: &Email,
    user: Option<&User>,
) -> Result<Option<OffsetDateTime>, AppError> {
    let now = state.clock.now();
    let ephemeral_lock = state
        .ephemeral
        .get(&keys::lock(&email.key()))
        .await?
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let durable_lock = user.and_then(|u| u.locked_until);
    Ok([ephemeral_lock, durable_lock]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .max())
}

/// Counts a sign-in attempt (a password, or a code of the second step)
/// before anything secret is checked, so a burst of parallel attempts gets
/// no more checks than the limit: each one's place in the count decides.
/// One round trip: the address's lock is looked at and the IP and the
/// address are counted in one atomic step of the store, so a lock taken
/// by a parallel attempt is either seen here or finds this count taken.
pub async fn attempt(
    state: &AppState,
    email: &Email,
    user: Option<&User>,
    ip: IpAddr,
) -> Result<Gate, AppError> {
    let config = &state.config.lockout;
    if let Some(until) = durable_lock(state, user) {
        return Ok(Gate::Locked(Lock {
            until,
            newly: false,
        }));
    }
    let email_key = email.key();
    let (ip_key, email_counter) = (ip_counter(ip), email_counter(&email_key));
    // The IP first: a throttled network adds nothing to any address's count.
    let tallies = [
        (&ip_key, window(config), config.ip_max_failures),
        (&email_counter, window(config), u64::MAX),
    ];
    let counts = match state
        .ephemeral
        .count_unless(&keys::lock(&email_key), &tallies)
        .await?
    {
        Gated::Barred(until) => {
            return Ok(Gate::Locked(Lock {
                until: lock_instant(until, state.clock.now()),
                newly: false,
            }));
        }
        Gated::Counted(counts) => counts,
    };
    let (ip_counted, counted) = match counts[..] {
        [ip_counted, counted] if ip_counted.count <= config.ip_max_failures => {
            (ip_counted, counted)
        }
        _ => return Ok(Gate::IpThrottled),
    };
    if counted.count > config.max_failures {
        // Beyond the limit while the last allowed attempts are still being
        // checked: a burst, refused unchecked, and the address locks.
        return Ok(Gate::Locked(take_lock(state, email, user).await?));
    }
    Ok(Gate::Open(Attempt {
        email_key,
        ip,
        counted,
        ip_counted,
    }))
}

/// The attempt was right: its count is given back (failures alone count).
/// A lock taken meanwhile by a parallel attempt still holds: `Some` then,
/// and the attempt must be refused. One round trip.
pub async fn succeeded(
    state: &AppState,
    attempt: Attempt,
) -> Result<Option<OffsetDateTime>, AppError> {
    let held = state
        .ephemeral
        .give_back_then_get(&attempt.counters(), &keys::lock(&attempt.email_key))
        .await?;
    // A lock the store still holds is in force, as at `attempt`.
    Ok(held.map(|t| lock_instant(t, state.clock.now())))
}

/// The attempt was not checked after all (the password hashing queue was
/// full): its count is given back, as for a right one.
pub async fn release(state: &AppState, attempt: Attempt) -> Result<(), AppError> {
    state.ephemeral.give_back_many(&attempt.counters()).await?;
    Ok(())
}

/// A lock's stored instant (unix seconds); one the store holds but that
/// cannot be read stays in force for now.
fn lock_instant(stored: i64, now: OffsetDateTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(stored).unwrap_or(now)
}

/// The account's lock in the durable store, if it is in force.
fn durable_lock(state: &AppState, user: Option<&User>) -> Option<OffsetDateTime> {
    let now = state.clock.now();
    user.and_then(|u| u.locked_until).filter(|t| *t > now)
}

/// An answer to check that names no address (a passkey's): counted
/// against the IP before it is checked, as a password is, so one network
/// gets no more checks than `lockout.ip_max_failures` in the window.
/// `None`: over the limit, not to be checked.
pub async fn ip_attempt(state: &AppState, ip: IpAddr) -> Result<Option<IpAttempt>, AppError> {
    let config = &state.config.lockout;
    let counted = state
        .ephemeral
        .count(&ip_counter(ip), window(config))
        .await?;
    Ok((counted.count <= config.ip_max_failures).then_some(IpAttempt { ip, counted }))
}

/// An answer counted by [`ip_attempt`], allowed to be checked.
#[derive(Debug)]
pub struct IpAttempt {
    ip: IpAddr,
    counted: Counted,
}

/// The answer counted by [`ip_attempt`] was right: given back (to the
/// window it was counted in).
pub async fn ip_succeeded(state: &AppState, attempt: IpAttempt) -> Result<(), AppError> {
    state
        .ephemeral
        .give_back(&ip_counter(attempt.ip), attempt.counted)
        .await?;
    Ok(())
}

/// The attempt was wrong: it stays counted; the last one the limit allows
/// locks the address. `Some` when the address is locked now.
pub async fn failed(
    state: &AppState,
    attempt: Attempt,
    email: &Email,
    user: Option<&User>,
) -> Result<Option<Lock>, AppError> {
    if attempt.counted.count < state.config.lockout.max_failures {
        return Ok(None);
    }
    Ok(Some(take_lock(state, email, user).await?))
}

/// Locks the address unless it is already: of parallel callers exactly one
/// gets `newly` (an atomic put-if-absent decides).
async fn take_lock(state: &AppState, email: &Email, user: Option<&User>) -> Result<Lock, AppError> {
    let config = &state.config.lockout;
    let now = state.clock.now();
    let until = lock_until(config, now);
    let ttl = Duration::from_secs(
        u64::try_from((until - now).whole_seconds())
            .unwrap_or(60)
            .max(1),
    );
    let lock_key = keys::lock(&email.key());
    if !state
        .ephemeral
        .put_if_absent(&lock_key, &until.unix_timestamp(), ttl)
        .await?
    {
        let held = state
            .ephemeral
            .get(&lock_key)
            .await?
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or(until);
        return Ok(Lock {
            until: held,
            newly: false,
        });
    }
    // After the lock is written: an attempt counted from zero again sees it.
    state.ephemeral.delete(&email_counter(&email.key())).await?;
    if let Some(user) = user {
        state
            .store
            .set_locked_until(&user.id, Some(until), now)
            .await?;
    }
    Ok(Lock { until, newly: true })
}

/// Lifts a lock (a completed reset, an administrator).
pub async fn clear(state: &AppState, email: &Email, user: Option<&User>) -> Result<(), AppError> {
    state.ephemeral.delete(&keys::lock(&email.key())).await?;
    state.ephemeral.delete(&email_counter(&email.key())).await?;
    if let Some(user) = user.filter(|u| u.locked_until.is_some()) {
        state
            .store
            .set_locked_until(&user.id, None, state.clock.now())
            .await?;
    }
    Ok(())
}

/// The page shown while the address is locked.
pub fn locked_page(state: &AppState, ui: Ui, until: OffsetDateTime) -> Response {
    let until = describe_until(&state.config.lockout, until);
    ui.render(
        Page::new("locked.html", "Sign-in temporarily blocked")
            .status(StatusCode::FORBIDDEN)
            .with("locked_until", &until),
    )
}

/// The page shown while the client's IP must wait.
pub fn throttled_page(ui: Ui) -> Response {
    ui.render(Page::error(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "There have been too many unsuccessful sign-in attempts from your network. Please wait a few minutes and try again.",
    ))
}

/// When a lock taken at `now` ends.
pub fn lock_until(config: &LockoutConfig, now: OffsetDateTime) -> OffsetDateTime {
    match config.mode {
        LockMode::Duration => now + time::Duration::minutes(config.duration_minutes as i64),
        LockMode::NextDay => {
            next_midnight(&config.time_zone, now).unwrap_or(now + time::Duration::days(1))
        }
    }
}

fn next_midnight(zone: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let zoned = jiff::Timestamp::from_second(now.unix_timestamp())
        .ok()?
        .to_zoned(tz);
    let next = zoned.tomorrow().ok()?.start_of_day().ok()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp().as_second()).ok()
}

/// The lock's end as people read it, in the configured zone.
pub fn describe_until(config: &LockoutConfig, until: OffsetDateTime) -> String {
    jiff::tz::TimeZone::get(&config.time_zone)
        .ok()
        .and_then(|tz| {
            jiff::Timestamp::from_second(until.unix_timestamp())
                .ok()
                .map(|t| {
                    t.to_zoned(tz)
                        .strftime("%A %-d %B %Y, %H:%M %Z")
                        .to_string()
                })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn config(zone: &str) -> LockoutConfig {
        LockoutConfig {
            time_zone: zone.into(),
            ..LockoutConfig::default()
        }
    }

    #[test]
    fn next_day_starts_at_local_midnight() {
        let now = datetime!(2026-11-22 15:30 UTC);
        assert_eq!(
            lock_until(&config("UTC"), now),
            datetime!(2026-11-23 00:00 UTC)
        );
        // 23:30 UTC is already the 23rd in Paris: the lock runs to the 24th, local midnight.
        let late = datetime!(2026-11-22 23:30 UTC);
        assert_eq!(
            lock_until(&config("Europe/Paris"), late),
            datetime!(2026-11-23 23:00 UTC)
        );
    }

    #[test]
    fn fixed_duration_mode() {
        let config = LockoutConfig {
            mode: LockMode::Duration,
            duration_minutes: 30,
            ..LockoutConfig::default()
        };
        let now = datetime!(2026-11-22 15:30 UTC);
        assert_eq!(lock_until(&config, now), datetime!(2026-11-22 16:00 UTC));
    }
}
