//! Clients as every node reads them on hot paths (token, introspection,
//! every themed page): kept in process for a few seconds. Changes made on
//! another node (CLI, later the admin API) are seen within `TTL`; a node's
//! own changes call [`ClientCache::forget`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::domain::ClientId;
use crate::store::{self, Client, SharedStore};

/// How long a node may serve a client it read before reading it again.
pub const TTL: Duration = Duration::seconds(5);

/// A client as read (or its absence), and when.
type Entry = (Option<Client>, OffsetDateTime);

#[derive(Debug, Clone)]
pub struct ClientCache {
    store: SharedStore,
    clock: SharedClock,
    entries: Arc<RwLock<HashMap<ClientId, Entry>>>,
}

impl ClientCache {
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            entries: Arc::new(RwLock::new(HashMap::new())),
        }
    }

    /// The client, from memory when read less than [`TTL`] ago. Unknown ids
    /// are remembered too (as absent), so a flood of bad ids does not reach
    /// the database more than once per id and TTL.
    pub async fn get(&self, id: &ClientId) -> store::Result<Option<Client>> {
        let now = self.clock.now();
        if let Some((client, read_at)) = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            && now - *read_at < TTL
        {
            return Ok(client.clone());
        }
        let client = self.store.client_by_id(id).await?;
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Bounded: a sweep of stale entries when the map grows large.
        if entries.len() > 10_000 {
            entries.retain(|_, (_, read_at)| now - *read_at < TTL);
        }
        entries.insert(id.clone(), (client.clone(), now));
        Ok(client)
    }

    /// Drops what this node knows of the client (after it changed it).
    pub fn forget(&self, id: &ClientId) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::config::{ConnectionUrl, DatabaseConfig};
    use crate::domain::{ClientKind, IdTokenAlg};
    use crate::store::NewClient;

    #[tokio::test]
    async fn serves_from_memory_until_the_ttl_passes() {
        let dir = tempfile::tempdir().unwrap();
        let config = DatabaseConfig {
            url: ConnectionUrl::new(format!("sqlite://{}", dir.path().join("c.db").display())),
            ..DatabaseConfig::default()
        };
        let store = crate::store::connect(&config).await.unwrap();
        store.migrate().await.unwrap();
        let clock = ManualClock::default();
        let cache = ClientCache::new(store.clone(), Arc::new(clock.clone()));
        let id = ClientId::parse("portal").unwrap();
        assert_eq!(cache.get(&id).await.unwrap(), None);
        let new = NewClient {
            id: id.clone(),
            name: "Portal".into(),
            secret_hash: None,
            kind: ClientKind::Public,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            first_party: false,
            theme: None,
            grant_types: vec![],
            scopes: vec![],
            id_token_alg: IdTokenAlg::RS256,
            require_mfa: false,
        };
        store.create_client(new, clock.now()).await.unwrap();
        // Still the remembered absence...
        assert_eq!(cache.get(&id).await.unwrap(), None);
        // ...until the TTL passes, or the node forgets it.
        clock.advance(TTL);
        assert_eq!(
            cache.get(&id).await.unwrap().map(|c| c.name),
            Some("Portal".into())
        );
        cache.forget(&id);
        assert!(cache.get(&id).await.unwrap().is_some());
    }
}
