//! Where console sessions and half-done sign-ins are kept: a seam the
//! embedding fills (`idp serve`: its ephemeral store; the standalone
//! console: memory).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Where console sessions and half-done sign-ins live: values expire after
/// their TTL; `take` reads and removes at once (a sign-in completes once).
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Sessions in this process (the standalone console, one instance).
#[derive(Default)]
pub struct MemorySessions(Mutex<HashMap<String, (Instant, Vec<u8>)>>);

impl MemorySessions {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Vec<u8>)>> {
        // A panic while holding the lock cannot leave a half-written entry.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl SessionStore for MemorySessions {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut entries = self.entries();
        entries.retain(|_, (until, _)| *until > now);
        entries.insert(key.to_owned(), (now + ttl, value));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let entries = self.entries();
        Ok(entries
            .get(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| v.clone()))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut entries = self.entries();
        Ok(entries
            .remove(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| v))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_sessions_expire_and_take_once() {
        let s = MemorySessions::default();
        s.put("a", b"1".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        s.put("b", b"2".to_vec(), Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get("b").await.unwrap(), None);
        assert_eq!(s.take("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.take("a").await.unwrap(), None);
    }
}
