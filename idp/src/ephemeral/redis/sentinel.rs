//! The primary the store talks to and, with Redis Sentinel, how the next one
//! is found: asked of the sentinels after a lost connection or a `READONLY`
//! answer, when a connection closes and every [`WATCH_INTERVAL`].

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use redis::sentinel::SentinelClient;
use tokio::sync::Notify;

use super::connection::manager;
use crate::ephemeral::{Error, Result};

/// Where a deployment's primary is found through Redis Sentinel
/// (`[redis.sentinel]` of the configuration).
#[derive(Clone)]
pub struct SentinelSettings {
    /// The sentinels, host and port, in order of preference.
    pub sentinels: Vec<(String, u16)>,
    /// The name the sentinels monitor the primary under.
    pub service: String,
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
    /// ACL user and password of the primary (and replicas).
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    /// `WAIT 1 <this>` after a take or a claim; zero: no wait.
    pub replica_ack_timeout: Duration,
}

impl std::fmt::Debug for SentinelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSettings")
            .field("sentinels", &self.sentinels)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// The primary the store talks to, and (with Sentinel) how to find the
/// next one.
pub(super) struct Target {
    pub(super) current: RwLock<Primary>,
    pub(super) sentinel: Option<Follower>,
}

/// One primary: the shared connection and, with Sentinel and a replica
/// wait, a connection of its own for the operations followed by `WAIT`
/// (a `WAIT` holds up every later command on its connection).
#[derive(Clone)]
pub(super) struct Primary {
    pub(super) conn: ConnectionManager,
    pub(super) acked: Option<ConnectionManager>,
    pub(super) address: String,
    pub(super) generation: u64,
}

/// Finds the primary through the sentinels and moves the store to it.
pub(super) struct Follower {
    pub(super) settings: SentinelSettings,
    /// The crate's Sentinel client: asks the sentinels for the primary and
    /// checks with `ROLE` that the node named is one. One resolution at a
    /// time; the instant of the last one spaces them out.
    pub(super) client: tokio::sync::Mutex<(SentinelClient, Option<Instant>)>,
    /// Why the last resolution failed (no sentinel answered, no primary
    /// known); `None` after a success. `/readyz` reports it.
    pub(super) trouble: std::sync::Mutex<Option<String>>,
    /// Woken when a connection to the primary closes (Sentinel closes the
    /// clients of a demoted primary), so the watcher asks at once.
    pub(super) wake: Arc<Notify>,
}

/// Sentinel resolutions triggered by failing calls are spaced at least this
/// much: while a failover is under way every call fails, and one question
/// to the sentinels answers them all.
const RESOLVE_SPACING: Duration = Duration::from_millis(200);
/// Bound on one resolution (the crate tries each sentinel with its own
/// connect and response timeouts, 1 s and 0.5 s).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often each node asks the sentinels where the primary is, even when
/// nothing failed: a primary cut off from the sentinels but still
/// answering this node is left within this long after a failover, and
/// `/readyz` learns that the sentinels are gone.
pub(super) const WATCH_INTERVAL: Duration = Duration::from_secs(1);

impl Target {
    pub(super) fn primary(&self) -> Primary {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Which connection of the primary a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Shared,
    /// Followed by `WAIT` (when configured): its own connection.
    Acked,
}

impl Primary {
    pub(super) fn lane(&self, lane: Lane) -> ConnectionManager {
        match (lane, &self.acked) {
            (Lane::Acked, Some(acked)) => acked.clone(),
            _ => self.conn.clone(),
        }
    }
}

/// Asks the sentinels for the primary: a client for the node they name,
/// once `ROLE` on it confirms it is a primary.
pub(super) async fn find_primary(client: &mut SentinelClient) -> Result<redis::Client> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, client.async_get_client()).await {
        Ok(Ok(node)) => Ok(node),
        Ok(Err(e)) => Err(Error::Unavailable(format!("redis sentinel: {e}"))),
        Err(_) => Err(Error::Unavailable("redis sentinel: timed out".into())),
    }
}

/// Connects to the primary `node` (the connection for `WAIT`ed operations
/// too when `acked`).
pub(super) async fn open_primary(
    node: redis::Client,
    acked: bool,
    wake: &Arc<Notify>,
    generation: u64,
) -> Result<Primary> {
    let address = node.get_connection_info().addr().to_string();
    let conn = manager(node.clone(), Some(wake.clone())).await?;
    let acked = if acked {
        Some(manager(node, None).await?)
    } else {
        None
    };
    Ok(Primary {
        conn,
        acked,
        address,
        generation,
    })
}

impl Follower {
    /// After a call on the primary of `seen` failed: asks the sentinels
    /// where the primary is and moves the store there if it moved. True
    /// when the store now uses another primary than `seen` (here or in a
    /// concurrent call).
    pub(super) async fn follow(&self, target: &Target, seen: u64) -> bool {
        let mut guard = self.client.lock().await;
        if target.primary().generation != seen {
            return true;
        }
        if guard.1.is_some_and(|at| at.elapsed() < RESOLVE_SPACING) {
            return false;
        }
        self.resolve(target, &mut guard).await
    }

    /// One resolution; records its outcome for `/readyz`. True when the
    /// store moved to another primary.
    async fn resolve(
        &self,
        target: &Target,
        guard: &mut (SentinelClient, Option<Instant>),
    ) -> bool {
        guard.1 = Some(Instant::now());
        let current = target.primary();
        let acked = !self.settings.replica_ack_timeout.is_zero();
        let found = match find_primary(&mut guard.0).await {
            // The same node: its own manager reconnects when needed.
            Ok(node) if node.get_connection_info().addr().to_string() == current.address => {
                self.set_trouble(None);
                return false;
            }
            Ok(node) => open_primary(node, acked, &self.wake, current.generation + 1).await,
            Err(e) => Err(e),
        };
        let mut trouble = self
            .trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match found {
            Ok(next) => {
                *trouble = None;
                tracing::warn!(from = %current.address, to = %next.address, service = %self.settings.service, "redis primary moved (sentinel failover)");
                *target
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = next;
                true
            }
            Err(e) => {
                if trouble.is_none() {
                    tracing::warn!(error = %e, service = %self.settings.service, "redis sentinel: no primary found");
                }
                *trouble = Some(e.to_string());
                false
            }
        }
    }

    fn set_trouble(&self, trouble: Option<String>) {
        *self
            .trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = trouble;
    }

    pub(super) fn trouble(&self) -> Option<String> {
        self.trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Asks the sentinels every [`WATCH_INTERVAL`] (and at once when a
/// connection to the primary closes) until the store is dropped.
pub(super) async fn watch(target: std::sync::Weak<Target>) {
    loop {
        let wake = match target.upgrade() {
            Some(t) => match &t.sentinel {
                Some(f) => f.wake.clone(),
                None => return,
            },
            None => return,
        };
        tokio::select! {
            () = tokio::time::sleep(WATCH_INTERVAL) => {}
            () = wake.notified() => {}
        }
        drop(wake);
        let Some(target) = target.upgrade() else {
            return;
        };
        if let Some(follower) = &target.sentinel {
            let mut guard = follower.client.lock().await;
            // A burst of closed connections (or a call that just asked)
            // makes one question, not one each.
            if guard.1.is_none_or(|at| at.elapsed() >= RESOLVE_SPACING) {
                follower.resolve(&target, &mut guard).await;
            }
        }
    }
}
