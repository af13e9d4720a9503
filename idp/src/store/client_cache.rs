//! Clients as every node reads them on hot paths (token, introspection,
//! every themed page): kept in process for a few seconds. Changes made on
//! another node (CLI, later the admin API) are seen within `TTL`; a node's
//! own changes call [`ClientCache::forget`].

use crate::clock::SharedClock;
use crate::domain::ClientId;
use crate::store::cache::TtlCache;
use crate::store::{self, Client, SharedStore};

/// How long a node may serve a client it read before reading it again.
pub const TTL: time::Duration = time::Duration::seconds(5);
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone)]
pub struct ClientCache {
    store: SharedStore,
    cache: TtlCache<ClientId, Option<Client>>,
}

impl ClientCache {
    pub fn new(store: SharedStore, clock: SharedClock) -> Self {
        Self {
            store,
            cache: TtlCache::new(clock, TTL, CAPACITY),
        }
    }

    /// The client, from memory when read less than [`TTL`] ago (unknown ids too).
    pub async fn get(&self, id: &ClientId) -> store::Result<Option<Client>> {
        self.cache
            .get_or_load(id, self.store.client_by_id(id))
            .await
    }

    /// Drops what this node knows of the client (after it changed it).
    pub fn forget(&self, id: &ClientId) {
        self.cache.forget(id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

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
            require_pkce: false,
            external_id_claim: None,
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
