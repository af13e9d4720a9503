//! Values as stored in Redis: an expiry envelope read against the app clock,
//! ttls in whole milliseconds, and key patterns.

use std::time::Duration;

use crate::ephemeral::{Error, Result};

/// Longest ttl given to Redis (Redis refuses expiries that overflow its clock).
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// A ttl in whole milliseconds, rounded up so that a value never lives
/// shorter than asked, at least 1 (Redis refuses `PX 0`) and capped.
pub(super) fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(MAX_TTL_MS).clamp(1, MAX_TTL_MS)
}

pub(super) fn expiry_ms(now_ms: i64, ttl: Duration) -> i64 {
    // Same rounding as the Redis ttl, but 0 stays 0: a zero ttl is expired now.
    let ms = ttl
        .as_nanos()
        .div_ceil(1_000_000)
        .min(u128::from(MAX_TTL_MS));
    now_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

pub(super) fn envelope(expiry_ms: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{expiry_ms}|").into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The payload of a stored envelope if it is still live at `now_ms`.
pub(super) fn open_envelope(stored: Vec<u8>, now_ms: i64) -> Result<Option<Vec<u8>>> {
    let malformed = || Error::Decode("redis value without an expiry envelope".into());
    let sep = stored
        .iter()
        .position(|&b| b == b'|')
        .ok_or_else(malformed)?;
    let expiry: i64 = std::str::from_utf8(&stored[..sep])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(malformed)?;
    if expiry <= now_ms {
        return Ok(None);
    }
    let mut payload = stored;
    payload.drain(..=sep);
    Ok(Some(payload))
}

/// `text` as a literal inside a Redis glob pattern.
pub(super) fn redis_glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trip_and_expiry() {
        let stored = envelope(1_000, b"a|b");
        assert_eq!(stored, b"1000|a|b");
        assert_eq!(
            open_envelope(stored.clone(), 999).unwrap(),
            Some(b"a|b".to_vec())
        );
        assert_eq!(open_envelope(stored, 1_000).unwrap(), None);
        assert!(open_envelope(b"no envelope".to_vec(), 0).is_err());
    }

    #[test]
    fn ttls_round_up_and_stay_in_range() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
        assert_eq!(expiry_ms(10, Duration::ZERO), 10);
        assert_eq!(expiry_ms(10, Duration::from_millis(5)), 15);
        assert_eq!(expiry_ms(i64::MAX - 1, Duration::MAX), i64::MAX);
    }
}
