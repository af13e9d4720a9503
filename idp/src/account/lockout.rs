//! Lockout (DESIGN "Account security rules"): failed sign-ins are counted per
//! normalised email, whether or not an account has it, and per client IP, in
//! the ephemeral store so every node shares them. Enough failures lock the
//! address until the start of the next day in the configured zone (or for a
//! fixed duration). The lock of an existing account is also written to the
//! durable store, so administrators see it and it survives a Redis restart.

use std::net::IpAddr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::{LockMode, LockoutConfig};
use crate::domain::Email;
use crate::ephemeral::keys;
use crate::store::User;
use axum::http::StatusCode;
use axum::response::Response;

use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState};

/// Whether a sign-in attempt may proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Locked until then, for existing and unknown addresses alike.
    Locked(OffsetDateTime),
    /// Too many failures from this IP: wait for the window to pass.
    IpThrottled,
}

fn window(config: &LockoutConfig) -> Duration {
    Duration::from_secs(config.window_minutes * 60)
}

fn email_counter(email: &Email) -> crate::ephemeral::Key<u64> {
    keys::counter("login-email", &email.key())
}

fn ip_counter(ip: IpAddr) -> crate::ephemeral::Key<u64> {
    keys::counter("login-ip", &ip.to_string())
}

pub async fn gate(
    state: &AppState,
    email: &Email,
    user: Option<&User>,
    ip: IpAddr,
) -> Result<Gate, AppError> {
    let now = state.clock.now();
    let ephemeral_lock = state
        .ephemeral
        .get(&keys::lock(&email.key()))
        .await?
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let durable_lock = user.and_then(|u| u.locked_until);
    if let Some(until) = [ephemeral_lock, durable_lock]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .max()
    {
        return Ok(Gate::Locked(until));
    }
    let ip_failures = state.ephemeral.get(&ip_counter(ip)).await?.unwrap_or(0);
    if ip_failures >= state.config.lockout.ip_max_failures {
        return Ok(Gate::IpThrottled);
    }
    Ok(Gate::Open)
}

/// Counts a failure; returns the lock's end when this failure locked the address.
pub async fn record_failure(
    state: &AppState,
    email: &Email,
    user: Option<&User>,
    ip: IpAddr,
) -> Result<Option<OffsetDateTime>, AppError> {
    let config = &state.config.lockout;
    state
        .ephemeral
        .increment(&ip_counter(ip), window(config))
        .await?;
    let failures = state
        .ephemeral
        .increment(&email_counter(email), window(config))
        .await?;
    if failures < config.max_failures {
        return Ok(None);
    }
    let now = state.clock.now();
    let until = lock_until(config, now);
    let ttl = Duration::from_secs(
        u64::try_from((until - now).whole_seconds())
            .unwrap_or(60)
            .max(1),
    );
    state
        .ephemeral
        .put(&keys::lock(&email.key()), &until.unix_timestamp(), ttl)
        .await?;
    state.ephemeral.delete(&email_counter(email)).await?;
    if let Some(user) = user {
        state
            .store
            .set_locked_until(&user.id, Some(until), now)
            .await?;
    }
    Ok(Some(until))
}

/// A successful sign-in starts the count again.
pub async fn record_success(state: &AppState, email: &Email) -> Result<(), AppError> {
    state.ephemeral.delete(&email_counter(email)).await?;
    Ok(())
}

/// Lifts a lock (a completed reset, an administrator).
pub async fn clear(state: &AppState, email: &Email, user: Option<&User>) -> Result<(), AppError> {
    state.ephemeral.delete(&keys::lock(&email.key())).await?;
    state.ephemeral.delete(&email_counter(email)).await?;
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
