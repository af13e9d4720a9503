//! `[lockout]` and `[password_hashing]`: how failed sign-ins lock an
//! address, and what hashing a password costs.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Locked until the start of the next day in `time_zone`.
    NextDay,
    /// Locked for `duration_minutes`.
    Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failed sign-ins (wrong password or code) per email within the window that lock it.
    pub max_failures: u64,
    pub window_minutes: u64,
    pub mode: LockMode,
    pub duration_minutes: u64,
    /// IANA zone in which "the next day" starts, e.g. "Europe/Paris".
    pub time_zone: String,
    /// Failed sign-ins per client IP within the window before that IP must wait.
    pub ip_max_failures: u64,
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_minutes: 15,
            mode: LockMode::NextDay,
            duration_minutes: 60,
            time_zone: "UTC".into(),
            ip_max_failures: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashing threads: hashes computed at once (default: one per core).
    /// The rest wait in the queue.
    pub max_concurrent: usize,
    /// Hashes that may wait for a thread; past it a sign-in is answered
    /// "try again in a few seconds" at once. Unset: what the threads hash
    /// in about a second ([`Self::queue_bound`]).
    pub max_queued: Option<usize>,
}

/// Hashes one thread computes in about a second at the default cost
/// (OWASP's m = 19 MiB, t = 2: about 30 ms in release builds).
pub const HASHES_PER_THREAD_SECOND: usize = 32;

/// The cores this process may run on (1 if unknown).
pub fn available_cores() -> usize {
    // At most what `max_concurrent` accepts: a larger host still starts.
    std::thread::available_parallelism().map_or(1, |n| n.get().min(256))
}

impl Default for PasswordHashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: available_cores(),
            max_queued: None,
        }
    }
}

impl LockoutConfig {
    /// Everything but the per-IP limit, which is checked after
    /// `admin.console.time_zone`, where it has always been.
    pub(super) fn validate_window(&self) -> Result<(), ConfigError> {
        if !(1..=1000).contains(&self.max_failures) {
            return Err(invalid(
                "lockout.max_failures",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=24 * 60).contains(&self.window_minutes) {
            return Err(invalid(
                "lockout.window_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=30 * 24 * 60).contains(&self.duration_minutes) {
            return Err(invalid(
                "lockout.duration_minutes",
                "must be between 1 and 43200",
            ));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(invalid(
                "lockout.time_zone",
                "is not an IANA time zone such as Europe/Paris",
            ));
        }
        Ok(())
    }

    pub(super) fn validate_ip_limit(&self) -> Result<(), ConfigError> {
        if self.ip_max_failures < self.max_failures {
            return Err(invalid(
                "lockout.ip_max_failures",
                "must be at least lockout.max_failures",
            ));
        }
        Ok(())
    }
}

impl PasswordHashingConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(8 * 1024..=1024 * 1024).contains(&self.memory_kib) {
            return Err(invalid(
                "password_hashing.memory_kib",
                "must be between 8192 and 1048576",
            ));
        }
        if !(1..=20).contains(&self.iterations) {
            return Err(invalid(
                "password_hashing.iterations",
                "must be between 1 and 20",
            ));
        }
        if !(1..=16).contains(&self.parallelism) {
            return Err(invalid(
                "password_hashing.parallelism",
                "must be between 1 and 16",
            ));
        }
        if !(1..=256).contains(&self.max_concurrent) {
            return Err(invalid(
                "password_hashing.max_concurrent",
                "must be between 1 and 256",
            ));
        }
        if self.max_queued.is_some_and(|n| !(1..=100_000).contains(&n)) {
            return Err(invalid(
                "password_hashing.max_queued",
                "must be between 1 and 100000",
            ));
        }
        Ok(())
    }

    /// The queue's bound: `max_queued`, or what the threads hash in about
    /// a second, a wait people accept before a "try again".
    pub fn queue_bound(&self) -> usize {
        self.max_queued
            .unwrap_or(self.max_concurrent * HASHES_PER_THREAD_SECOND)
    }
}
