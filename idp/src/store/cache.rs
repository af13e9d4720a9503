//! A small in-process cache of store reads, for values every request reads
//! (clients on the token endpoint, users on userinfo): each entry is served
//! for `ttl` by the app clock, then read again. Other nodes' changes are seen
//! within `ttl`; a node's own changes call [`TtlCache::forget`]. Absent
//! values are cached too, so a flood of unknown ids reaches the database at
//! most once per id and `ttl`. At most `capacity` entries: when full, stale
//! ones are swept, and if none is stale the new value is served uncached.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;

#[derive(Debug, Clone)]
pub struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    clock: SharedClock,
    entries: Arc<RwLock<HashMap<K, (V, OffsetDateTime)>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub fn new(clock: SharedClock, ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            clock,
            entries: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The value from memory when read less than `ttl` ago, else from `load`.
    pub async fn get_or_load<E, F>(&self, key: &K, load: F) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let value = load.await?;
        self.insert(key.clone(), value.clone());
        Ok(value)
    }

    /// The value, if stored less than `ttl` ago.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.clock.now();
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .filter(|(_, stored_at)| now - *stored_at < self.ttl)
            .map(|(value, _)| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let now = self.clock.now();
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (_, stored_at)| now - *stored_at < ttl);
            if entries.len() >= self.capacity {
                return;
            }
        }
        entries.insert(key, (value, now));
    }

    /// Drops what this node knows of `key` (after it changed it).
    pub fn forget(&self, key: &K) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn entries_expire_and_the_capacity_holds() {
        let clock = ManualClock::default();
        let cache = TtlCache::new(Arc::new(clock.clone()), Duration::seconds(5), 2);
        cache.insert("a", 1);
        cache.insert("b", 2);
        cache.insert("c", 3);
        assert_eq!(cache.get(&"c"), None, "full of fresh entries: not kept");
        assert_eq!(cache.get(&"a"), Some(1));
        clock.advance(Duration::seconds(5));
        assert_eq!(cache.get(&"a"), None, "stale");
        cache.insert("c", 3);
        assert_eq!(cache.get(&"c"), Some(3), "stale ones swept to make room");
        cache.forget(&"c");
        assert_eq!(cache.get(&"c"), None);
    }
}
