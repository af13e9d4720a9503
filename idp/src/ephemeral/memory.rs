//! The in-process ephemeral store: a map behind a mutex, for the embedded
//! single-node deployment and for tests.
//!
//! Why it looks like this:
//! - Expiry is read from the app [`Clock`](crate::clock::Clock), not from
//!   `Instant`, so a test that moves a `ManualClock` sees values expire exactly
//!   as it would with Redis (which follows the same clock through its envelope).
//! - A `std::sync::Mutex` is enough: every operation is a few map accesses and
//!   the guard never lives across an `.await`, so no async mutex is needed.
//! - Nothing reads expired entries, but they would stay in the map forever if
//!   their key is never touched again (a code that is never redeemed, a
//!   counter for a one-off address). The map is therefore swept whenever it has
//!   grown past twice its size after the previous sweep: amortised O(1) per
//!   insert, and memory stays proportional to the number of live entries.
//! - Counters are stored as ASCII decimal, the same payload the Redis store
//!   keeps, so `Ephemeral::get::<u64>` reads a counter on either backend.
//! - A set is one entry whose value is a JSON map of member to expiry, and
//!   which lives as long as its longest-lived member: every set operation is
//!   one read-modify-write under the lock.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{Counted, CounterWindow, Counting, EphemeralStore, Result, Tally};
use crate::clock::SharedClock;

/// Below this many entries the map is never swept (a sweep of a small map
/// would cost more than the memory it frees).
const MIN_SWEEP_LEN: usize = 1024;

/// Expiry instants are kept as Unix time in nanoseconds: cheap to compare and
/// saturating arithmetic avoids any overflow for absurd ttls.
type UnixNanos = i128;

pub struct MemoryStore {
    clock: SharedClock,
    inner: Mutex<Inner>,
}

// Hand-written so that logging the store never prints what it holds (session
// contents, authorization codes).
impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self.lock().map.len();
        f.debug_struct("MemoryStore")
            .field("clock", &self.clock)
            .field("entries", &entries)
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Number of entries left after the last sweep.
    len_after_sweep: usize,
}

struct Entry {
    value: Vec<u8>,
    expires_at: UnixNanos,
}

impl Entry {
    fn is_live(&self, now: UnixNanos) -> bool {
        self.expires_at > now
    }
}

impl Inner {
    /// The live entry under `key`; an expired one is removed and not returned.
    fn live(&mut self, key: &str, now: UnixNanos) -> Option<&mut Entry> {
        if self.map.get(key).is_some_and(|e| !e.is_live(now)) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn insert(&mut self, key: &str, entry: Entry, now: UnixNanos) {
        self.map.insert(key.to_owned(), entry);
        self.sweep_if_grown(now);
    }

    fn sweep_if_grown(&mut self, now: UnixNanos) {
        let threshold = self.len_after_sweep.saturating_mul(2).max(MIN_SWEEP_LEN);
        if self.map.len() > threshold {
            self.map.retain(|_, e| e.is_live(now));
            self.len_after_sweep = self.map.len();
        }
    }
}

impl MemoryStore {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave an entry half-written
        // (each update is a single map operation), so a poisoned map is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> UnixNanos {
        self.clock.now().unix_timestamp_nanos()
    }
}

/// A counter's window, named by its end (nanoseconds).
fn window_of(expires_at: UnixNanos) -> CounterWindow {
    CounterWindow(expires_at)
}

fn expiry(now: UnixNanos, ttl: Duration) -> UnixNanos {
    now.saturating_add(UnixNanos::try_from(ttl.as_nanos()).unwrap_or(UnixNanos::MAX))
}

/// Members of a set with their expiry; JSON wants integers it can hold, so
/// expiries are clamped to `i64` nanoseconds (the year 2262).
type Members = HashMap<String, i64>;

fn clamp(t: UnixNanos) -> i64 {
    i64::try_from(t).unwrap_or(if t < 0 { i64::MIN } else { i64::MAX })
}

impl Inner {
    /// The live members of the set under `key` (none if absent or unreadable).
    fn members(&mut self, key: &str, now: UnixNanos) -> Members {
        let Some(entry) = self.live(key, now) else {
            return Members::new();
        };
        let mut members: Members = serde_json::from_slice(&entry.value).unwrap_or_default();
        members.retain(|_, expiry| UnixNanos::from(*expiry) > now);
        members
    }

    /// Stores `members` under `key`, or removes the key when none is left.
    fn store_members(&mut self, key: &str, members: Members, now: UnixNanos) {
        let Some(last) = members.values().max().copied() else {
            self.map.remove(key);
            return;
        };
        let value = serde_json::to_vec(&members).unwrap_or_default();
        let entry = Entry {
            value,
            expires_at: UnixNanos::from(last),
        };
        self.insert(key, entry, now);
    }
}

impl Inner {
    /// Adds one to the counter under `key` (see [`EphemeralStore::count_unless`]).
    fn count(&mut self, key: &str, window: Duration, now: UnixNanos) -> Counted {
        if let Some(entry) = self.live(key, now)
            && let Some(count) = parse_count(&entry.value)
        {
            let count = count.saturating_add(1);
            entry.value = count.to_string().into_bytes();
            return Counted {
                count,
                window: window_of(entry.expires_at),
            };
        }
        let expires_at = expiry(now, window);
        let entry = Entry {
            value: b"1".to_vec(),
            expires_at,
        };
        self.insert(key, entry, now);
        Counted {
            count: 1,
            window: window_of(expires_at),
        }
    }
}

/// The count held in a counter payload; anything else counts as no counter.
fn parse_count(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.trim().parse().ok()
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let now = self.now();
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(now, ttl),
        };
        self.lock().insert(key, entry, now);
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let now = self.now();
        let mut inner = self.lock();
        if inner.live(key, now).is_some() {
            return Ok(false);
        }
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(now, ttl),
        };
        inner.insert(key, entry, now);
        Ok(true)
    }

    async fn put_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let now = self.now();
        let mut inner = self.lock();
        match inner.live(key, now) {
            Some(entry) => {
                entry.value = value.to_vec();
                entry.expires_at = expiry(now, ttl);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.now();
        Ok(self.lock().live(key, now).map(|e| e.value.clone()))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        let now = self.now();
        let mut inner = self.lock();
        Ok(keys
            .iter()
            .map(|key| inner.live(key, now).map(|e| e.value.clone()))
            .collect())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = self.now();
        let entry = self.lock().map.remove(key);
        Ok(entry.filter(|e| e.is_live(now)).map(|e| e.value))
    }

    async fn count_unless(&self, bar: Option<&str>, tallies: &[Tally<'_>]) -> Result<Counting> {
        let now = self.now();
        let mut inner = self.lock();
        if let Some(bar) = bar
            && let Some(entry) = inner.live(bar, now)
        {
            return Ok(Counting::Barred(entry.value.clone()));
        }
        let mut counts = Vec::with_capacity(tallies.len());
        for tally in tallies {
            let counted = inner.count(tally.key, tally.window, now);
            counts.push(counted);
            if counted.count > tally.limit {
                break;
            }
        }
        Ok(Counting::Counted(counts))
    }

    async fn give_back_then_get(
        &self,
        counts: &[(&str, CounterWindow)],
        then: Option<&str>,
    ) -> Result<Option<Vec<u8>>> {
        let now = self.now();
        let mut inner = self.lock();
        for (key, counted_in) in counts {
            if let Some(entry) = inner.live(key, now)
                && window_of(entry.expires_at) == *counted_in
                && let Some(count) = parse_count(&entry.value)
            {
                entry.value = count.saturating_sub(1).to_string().into_bytes();
            }
        }
        Ok(then.and_then(|key| inner.live(key, now).map(|e| e.value.clone())))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.lock().map.remove(key);
        Ok(())
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()> {
        let now = self.now();
        let mut inner = self.lock();
        let mut members = inner.members(key, now);
        members.insert(member.to_owned(), clamp(expiry(now, ttl)));
        inner.store_members(key, members, now);
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        let now = self.now();
        let mut inner = self.lock();
        let mut members = inner.members(key, now);
        if members.remove(member).is_some() {
            inner.store_members(key, members, now);
        }
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let now = self.now();
        Ok(self.lock().members(key, now).into_keys().collect())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let now = self.now();
        let inner = self.lock();
        Ok(inner
            .map
            .iter()
            .filter(|(_, e)| e.is_live(now))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn expired_entries_are_swept_once_the_map_doubles() {
        let clock = ManualClock::default();
        let store = MemoryStore::new(Arc::new(clock.clone()));
        for i in 0..MIN_SWEEP_LEN {
            store
                .put(&format!("old:{i}"), b"x", Duration::from_secs(1))
                .await
                .unwrap();
        }
        assert_eq!(store.lock().map.len(), MIN_SWEEP_LEN);
        clock.advance(time::Duration::seconds(2));
        store
            .put("live", b"y", Duration::from_secs(60))
            .await
            .unwrap();
        // The insert that crossed the threshold swept every expired entry.
        assert_eq!(store.lock().map.len(), 1);
        assert_eq!(store.lock().len_after_sweep, 1);
        assert_eq!(store.get("live").await.unwrap(), Some(b"y".to_vec()));
    }

    #[tokio::test]
    async fn counter_payload_is_ascii_decimal() {
        let store = MemoryStore::new(Arc::new(ManualClock::default()));
        for _ in 0..12 {
            store.increment("c", Duration::from_secs(60)).await.unwrap();
        }
        assert_eq!(store.get("c").await.unwrap(), Some(b"12".to_vec()));
    }

    #[test]
    fn debug_does_not_print_values() {
        let store = MemoryStore::new(Arc::new(ManualClock::default()));
        store.lock().insert(
            "k",
            Entry {
                value: b"secret".to_vec(),
                expires_at: UnixNanos::MAX,
            },
            0,
        );
        let shown = format!("{store:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("entries: 1"), "{shown}");
    }
}
