//! The Redis ephemeral store, shared by every node of a deployment.
//!
//! Why it looks like this:
//! - One `ConnectionManager` (a multiplexed, cloneable, reconnecting handle)
//!   per store. Short connect/response timeouts and a short reconnect backoff
//!   make calls fail fast with [`Error::Unavailable`] while Redis is down; the
//!   manager starts a new connection after an I/O error, so the same handle
//!   works again once Redis is back, without a restart of the app.
//! - Expiry follows the app [`Clock`](crate::clock::Clock), like the in-memory
//!   store, so tests move a `ManualClock` instead of sleeping. Every value is
//!   therefore stored in an envelope `"{expiry_unix_ms}|{payload}"` and a value
//!   whose envelope expiry is at or before the clock's now counts as absent.
//!   Redis also gets a real `PX` ttl of the same length, only so that it
//!   collects the garbage; it never decides on its own that a value is live.
//! - Read-modify-write operations (`put_if_absent`, `increment`) are Lua
//!   scripts and `take` is `GETDEL`, so each is atomic across nodes. Scripts
//!   receive the clock's now as an argument and never call Redis `TIME`.
//! - Sets are sorted sets scored by each member's expiry (ms by the app
//!   clock): reads skip members at or before now, and adding prunes them.
//!   The key's real ttl only grows, to the longest member's, for garbage.
//! - Errors never carry the URL (it may hold a password): every Redis error
//!   becomes `Error::Unavailable` with the operation and the client's message.
//! - A Redis restart must not fail the first request on each node. The
//!   client speaks RESP3, so the connection tells the manager the moment
//!   Redis closes it and the manager reconnects in the background; and a
//!   call that still meets a lost connection is sent once more on a fresh
//!   one when that is safe ([`Replay`]; docs/decisions.md "Redis restarts").
//! - With Redis Sentinel ([`RedisStore::connect_sentinel`]) the primary is
//!   asked of the sentinels, and asked again after a lost connection, a
//!   `READONLY` answer, a closed connection and every second; the store
//!   then moves to the new primary. Takes and claims wait for a replica
//!   (`WAIT`) on a connection of their own (docs/decisions.md "Redis
//!   Sentinel").

use std::sync::{Arc, LazyLock, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{IntoConnectionInfo, ProtocolVersion, RedisError, Script};
use tokio::sync::Notify;

use super::{EphemeralStore, Error, Result};
use crate::clock::SharedClock;

/// Bound on one connection attempt and on the wait for one reply.
const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on a whole call, whatever the manager does inside (a reconnect in
/// progress makes a call wait for it).
const CALL_TIMEOUT: Duration = Duration::from_millis(2500);
/// Backoff between reconnect attempts inside one reconnect.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Retries inside one reconnect. Each failed call triggers a new reconnect, so
/// recovery does not depend on this; it only bounds how long a call waits.
const RECONNECT_RETRIES: usize = 1;
/// Longest ttl given to Redis (Redis refuses expiries that overflow its clock).
const MAX_TTL_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

/// Stores `ARGV[2]` (an envelope) with real ttl `ARGV[3]` ms unless a value
/// whose envelope expiry is after `ARGV[1]` (now, ms) exists. A value without
/// a readable envelope counts as absent.
static PUT_IF_ABSENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep then
    local exp = tonumber(string.sub(v, 1, sep - 1))
    if exp and exp > tonumber(ARGV[1]) then
      return 0
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
",
    )
});

/// Adds one to the counter at `KEYS[1]` and returns the new count. `ARGV[1]`
/// is now (ms), `ARGV[2]` the expiry of a new counter (ms, as text) and
/// `ARGV[3]` its real ttl (ms). A live counter keeps its envelope expiry and
/// its Redis ttl; an absent, clock-expired or unreadable one restarts at 1.
static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep then
    local exp_text = string.sub(v, 1, sep - 1)
    local exp = tonumber(exp_text)
    local n = tonumber(string.sub(v, sep + 1))
    if exp and n and exp > tonumber(ARGV[1]) then
      n = n + 1
      redis.call('SET', KEYS[1], exp_text .. '|' .. string.format('%d', n), 'KEEPTTL')
      return n
    end
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. '|1', 'PX', ARGV[3])
return 1
",
    )
});

/// Takes one from the live counter at `KEYS[1]` (never below zero), keeping
/// its envelope expiry and Redis ttl; `ARGV[1]` is now (ms). An absent,
/// clock-expired or unreadable counter is left alone.
static DECREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep then
    local exp_text = string.sub(v, 1, sep - 1)
    local exp = tonumber(exp_text)
    local n = tonumber(string.sub(v, sep + 1))
    if exp and n and exp > tonumber(ARGV[1]) and n > 0 then
      redis.call('SET', KEYS[1], exp_text .. '|' .. string.format('%d', n - 1), 'KEEPTTL')
      return n - 1
    end
  end
end
return 0
",
    )
});

/// Adds member `ARGV[3]` with expiry `ARGV[2]` (ms) to the sorted set at
/// `KEYS[1]` after removing members expired at `ARGV[1]` (now, ms), and
/// extends the key's real ttl to `ARGV[4]` ms if it was shorter.
static SET_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
",
    )
});

#[derive(Clone)]
pub struct RedisStore {
    target: Arc<Target>,
    prefix: Arc<str>,
    clock: SharedClock,
}

// Hand-written: the manager's own Debug is long, and the prefix is what helps
// when reading logs.
impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

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
struct Target {
    current: RwLock<Primary>,
    sentinel: Option<Follower>,
}

/// One primary: the shared connection and, with Sentinel and a replica
/// wait, a connection of its own for the operations followed by `WAIT`
/// (a `WAIT` holds up every later command on its connection).
#[derive(Clone)]
struct Primary {
    conn: ConnectionManager,
    acked: Option<ConnectionManager>,
    address: String,
    generation: u64,
}

/// Finds the primary through the sentinels and moves the store to it.
struct Follower {
    settings: SentinelSettings,
    /// The crate's Sentinel client: asks the sentinels for the primary and
    /// checks with `ROLE` that the node named is one. One resolution at a
    /// time; the instant of the last one spaces them out.
    client: tokio::sync::Mutex<(SentinelClient, Option<Instant>)>,
    /// Why the last resolution failed (no sentinel answered, no primary
    /// known); `None` after a success. `/readyz` reports it.
    trouble: std::sync::Mutex<Option<String>>,
    /// Woken when a connection to the primary closes (Sentinel closes the
    /// clients of a demoted primary), so the watcher asks at once.
    wake: Arc<Notify>,
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
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

impl Target {
    fn primary(&self) -> Primary {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[user:password@]host:port/db`) and returns
    /// once a first connection is established, so that a wrong address or
    /// password is reported at startup. Keys are stored as `{prefix}{key}`.
    pub async fn connect(url: &str, prefix: String, clock: SharedClock) -> Result<Self> {
        let info = url
            .into_connection_info()
            .map_err(|e| unavailable("invalid url", &e))?;
        // RESP3: a closed connection is reported to the manager at once (a
        // push), so it reconnects before the next call instead of because
        // of it. Needs Redis 6 or later.
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| unavailable("invalid url", &e))?;
        let conn = manager(client, None).await?;
        let primary = Primary {
            conn,
            acked: None,
            address: String::new(),
            generation: 0,
        };
        Ok(Self {
            target: Arc::new(Target {
                current: RwLock::new(primary),
                sentinel: None,
            }),
            prefix: prefix.into(),
            clock,
        })
    }

    /// Asks the sentinels for the primary of `settings.service`, connects to
    /// it, and keeps following it: a failed call (lost connection, or
    /// `READONLY` from a demoted primary) and a watcher every
    /// [`WATCH_INTERVAL`] ask again and move the store to the new primary.
    /// Fails when no sentinel names a reachable primary.
    pub async fn connect_sentinel(
        settings: SentinelSettings,
        prefix: String,
        clock: SharedClock,
    ) -> Result<Self> {
        let sentinel_error = |e: &RedisError| Error::Unavailable(format!("redis sentinel: {e}"));
        let addresses = settings
            .sentinels
            .iter()
            .map(|(host, port)| redis::ConnectionAddr::Tcp(host.clone(), *port));
        let mut builder =
            SentinelClientBuilder::new(addresses, &settings.service, SentinelServerType::Master)
                .map_err(|e| sentinel_error(&e))?
                .set_client_to_redis_protocol(ProtocolVersion::RESP3)
                .set_client_to_redis_db(settings.db);
        if let Some(user) = &settings.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &settings.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(user) = &settings.sentinel_username {
            builder = builder.set_client_to_sentinel_username(user);
        }
        if let Some(password) = &settings.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        let mut client = builder.build().map_err(|e| sentinel_error(&e))?;
        let wake = Arc::new(Notify::new());
        let acked = !settings.replica_ack_timeout.is_zero();
        let node = find_primary(&mut client).await?;
        let primary = open_primary(node, acked, &wake, 0).await?;
        tracing::info!(primary = %primary.address, service = %settings.service, "redis primary found through sentinel");
        let target = Arc::new(Target {
            current: RwLock::new(primary),
            sentinel: Some(Follower {
                settings,
                client: tokio::sync::Mutex::new((client, Some(Instant::now()))),
                trouble: std::sync::Mutex::new(None),
                wake,
            }),
        });
        tokio::spawn(watch(Arc::downgrade(&target)));
        Ok(Self {
            target,
            prefix: prefix.into(),
            clock,
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn now_ms(&self) -> i64 {
        let ms = self.clock.now().unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).unwrap_or(i64::MAX)
    }

    /// Runs `cmd` (an idempotent command) with a bound on each try.
    async fn query<T: redis::FromRedisValue>(&self, op: &str, cmd: &redis::Cmd) -> Result<T> {
        self.call(op, Replay::Always, Lane::Shared, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    /// Runs a script invocation with a bound on each try.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        op: &str,
        replay: Replay,
        lane: Lane,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.call(op, replay, lane, |mut conn| async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// Runs `attempt` on the primary's connection; if that connection turns
    /// out to be lost, runs it once more on the fresh one the manager has
    /// started meanwhile, when `replay` allows it. With Sentinel, a lost
    /// connection or a `READONLY` answer first asks the sentinels where the
    /// primary is now, and the second try goes there.
    async fn call<T, F, Fut>(&self, op: &str, replay: Replay, lane: Lane, attempt: F) -> Result<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let primary = self.target.primary();
        match tokio::time::timeout(CALL_TIMEOUT, attempt(primary.lane(lane))).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                // A replica refuses a write before running it (a script at
                // its first write, and ours read before they write): the
                // call did nothing, so any operation may go to the new
                // primary.
                let read_only = is_read_only(&e);
                let moved = match &self.target.sentinel {
                    Some(follower) if read_only || is_connection_error(&e) => {
                        follower.follow(&self.target, primary.generation).await
                    }
                    _ => false,
                };
                if (read_only && moved) || (!read_only && replay.allows(&e)) {
                    tracing::debug!(op, error = %e, moved, "redis connection lost; trying again on a new one");
                    bounded(op, attempt(self.target.primary().lane(lane))).await
                } else {
                    Err(unavailable(op, &e))
                }
            }
            Err(_) => Err(Error::Unavailable(format!("redis {op}: timed out"))),
        }
    }

    /// Waits up to the configured time for one replica to have every write
    /// sent so far on the primary's `acked` connection (a take, a claim):
    /// `WAIT 1 <ms>`. Best effort: without a replica in time the value
    /// stays taken or claimed on the primary and the call succeeds; only a
    /// failover within that moment could bring it back (docs/decisions.md
    /// "Redis Sentinel").
    async fn replica_ack(&self, op: &str, primary: &Primary) {
        let (Some(follower), Some(conn)) = (&self.target.sentinel, &primary.acked) else {
            return;
        };
        let timeout = follower.settings.replica_ack_timeout;
        let mut wait = redis::cmd("WAIT");
        wait.arg(1)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let mut conn = conn.clone();
        let acked =
            tokio::time::timeout(timeout + IO_TIMEOUT, wait.query_async::<i64>(&mut conn)).await;
        match acked {
            Ok(Ok(n)) if n >= 1 => {}
            Ok(Ok(_)) => tracing::debug!(op, "no replica acknowledged in time"),
            Ok(Err(e)) => tracing::debug!(op, error = %e, "WAIT failed"),
            Err(_) => tracing::debug!(op, "WAIT timed out"),
        }
    }
}

/// Which connection of the primary a call uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Shared,
    /// Followed by `WAIT` (when configured): its own connection.
    Acked,
}

impl Primary {
    fn lane(&self, lane: Lane) -> ConnectionManager {
        match (lane, &self.acked) {
            (Lane::Acked, Some(acked)) => acked.clone(),
            _ => self.conn.clone(),
        }
    }
}

/// A connection manager on `client` with the store's timeouts and backoff,
/// once its first connection is up. `wake` is told when a connection closes.
async fn manager(client: redis::Client, wake: Option<Arc<Notify>>) -> Result<ConnectionManager> {
    let mut config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(IO_TIMEOUT))
        .set_response_timeout(Some(IO_TIMEOUT))
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY)
        .set_number_of_retries(RECONNECT_RETRIES);
    if let Some(wake) = wake {
        config = config.set_push_sender(move |push: redis::PushInfo| {
            if push.kind == redis::PushKind::Disconnection {
                wake.notify_one();
            }
            Ok::<(), redis::aio::SendError>(())
        });
    }
    let connecting = ConnectionManager::new_with_config(client, config);
    // Initial attempts: 1 + RECONNECT_RETRIES, each bounded by IO_TIMEOUT.
    let deadline = IO_TIMEOUT * 2 + RECONNECT_MAX_DELAY * 2;
    match tokio::time::timeout(deadline, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(unavailable("connect", &e)),
        Err(_) => Err(Error::Unavailable("redis connect: timed out".into())),
    }
}

/// Asks the sentinels for the primary: a client for the node they name,
/// once `ROLE` on it confirms it is a primary.
async fn find_primary(client: &mut SentinelClient) -> Result<redis::Client> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, client.async_get_client()).await {
        Ok(Ok(node)) => Ok(node),
        Ok(Err(e)) => Err(Error::Unavailable(format!("redis sentinel: {e}"))),
        Err(_) => Err(Error::Unavailable("redis sentinel: timed out".into())),
    }
}

/// Connects to the primary `node` (the connection for `WAIT`ed operations
/// too when `acked`).
async fn open_primary(
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
    async fn follow(&self, target: &Target, seen: u64) -> bool {
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

    fn trouble(&self) -> Option<String> {
        self.trouble
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Asks the sentinels every [`WATCH_INTERVAL`] (and at once when a
/// connection to the primary closes) until the store is dropped.
async fn watch(target: std::sync::Weak<Target>) {
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

/// The connection is gone or could not be made (the primary died, or
/// Sentinel closed the clients of a demoted primary).
fn is_connection_error(e: &RedisError) -> bool {
    e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error()
}

/// `READONLY`: the node is a replica now (a demoted primary). A script
/// meeting it at a write may report it inside its own error.
fn is_read_only(e: &RedisError) -> bool {
    e.code() == Some("READONLY") || e.to_string().contains("READONLY")
}

/// When a call that failed on a lost connection may be sent again. A lost
/// connection is ambiguous: the command may never have left (the usual case
/// after a restart: the connection was dead before the call), or Redis may
/// have run it and the reply was lost. Only a refused connection proves
/// that nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    /// Running it twice leaves the same state and answer as running it once
    /// (reads, SET, SET XX, DEL, ZADD, ZREM, PING), or a second run cannot
    /// hand out what the first took (GETDEL: see `take`).
    Always,
    /// Running it twice would count twice, take back twice or claim against
    /// itself (the INCR, DECR and SET NX scripts): only when nothing was sent.
    IfUnsent,
}

impl Replay {
    fn allows(self, e: &RedisError) -> bool {
        match self {
            Replay::Always => e.is_connection_refusal() || e.is_connection_dropped(),
            Replay::IfUnsent => e.is_connection_refusal(),
        }
    }
}

async fn bounded<T>(op: &str, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(op, &e)),
        Err(_) => Err(Error::Unavailable(format!("redis {op}: timed out"))),
    }
}

/// The client's messages name the failing operation and the I/O or server
/// error, never the connection URL; the URL given to `connect` is not echoed.
fn unavailable(op: &str, e: &RedisError) -> Error {
    Error::Unavailable(format!("redis {op}: {e}"))
}

/// A ttl in whole milliseconds, rounded up so that a value never lives
/// shorter than asked, at least 1 (Redis refuses `PX 0`) and capped.
fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(MAX_TTL_MS).clamp(1, MAX_TTL_MS)
}

fn expiry_ms(now_ms: i64, ttl: Duration) -> i64 {
    // Same rounding as the Redis ttl, but 0 stays 0: a zero ttl is expired now.
    let ms = ttl
        .as_nanos()
        .div_ceil(1_000_000)
        .min(u128::from(MAX_TTL_MS));
    now_ms.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn envelope(expiry_ms: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{expiry_ms}|").into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The payload of a stored envelope if it is still live at `now_ms`.
fn open_envelope(stored: Vec<u8>, now_ms: i64) -> Result<Option<Vec<u8>>> {
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

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()> {
        let stored = envelope(expiry_ms(self.now_ms(), ttl), value);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(stored)
            .arg("PX")
            .arg(ttl_ms(ttl));
        self.query::<()>("put", &cmd).await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        let now = self.now_ms();
        let stored = envelope(expiry_ms(now, ttl), value);
        let mut invocation = PUT_IF_ABSENT.prepare_invoke();
        invocation
            .key(self.key(key))
            .arg(now)
            .arg(stored)
            .arg(ttl_ms(ttl));
        let stored: i64 = self
            .invoke("put_if_absent", Replay::IfUnsent, Lane::Acked, &invocation)
            .await?;
        if stored == 1 {
            // A claim (a lock, a one-time step) a failover must not undo.
            self.replica_ack("put_if_absent", &self.target.primary())
                .await;
        }
        Ok(stored == 1)
    }

    async fn put_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool> {
        // XX: only over a stored value. One whose envelope expired but which
        // Redis still holds (its real ttl is the same length) may be replaced:
        // callers write back what they have just read as live.
        let stored = envelope(expiry_ms(self.now_ms(), ttl), value);
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(stored)
            .arg("PX")
            .arg(ttl_ms(ttl))
            .arg("XX");
        let reply: Option<String> = self.query("put_if_present", &cmd).await?;
        Ok(reply.is_some())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key));
        let stored: Option<Vec<u8>> = self.query("get", &cmd).await?;
        match stored {
            Some(stored) => open_envelope(stored, self.now_ms()),
            None => Ok(None),
        }
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        let stored: Vec<Option<Vec<u8>>> = self.query("get_many", &cmd).await?;
        let now = self.now_ms();
        stored
            .into_iter()
            .map(|v| match v {
                Some(v) => open_envelope(v, now),
                None => Ok(None),
            })
            .collect()
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // Replayed after a lost connection: GETDEL is atomic, so a second
        // run finds nothing if the first ran, and no value is ever handed
        // out twice; at worst a value whose reply was lost reads as absent.
        let mut cmd = redis::cmd("GETDEL");
        cmd.arg(self.key(key));
        let stored: Option<Vec<u8>> = self
            .call("take", Replay::Always, Lane::Acked, |mut conn| {
                let cmd = &cmd;
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        if stored.is_some() {
            // Taken: a failover must not bring it back for a second use.
            self.replica_ack("take", &self.target.primary()).await;
        }
        match stored {
            Some(stored) => open_envelope(stored, self.now_ms()),
            None => Ok(None),
        }
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<u64> {
        let now = self.now_ms();
        let mut invocation = INCREMENT.prepare_invoke();
        invocation
            .key(self.key(key))
            .arg(now)
            .arg(expiry_ms(now, window))
            .arg(ttl_ms(window));
        self.invoke("increment", Replay::IfUnsent, Lane::Shared, &invocation)
            .await
    }

    async fn decrement(&self, key: &str) -> Result<()> {
        let mut invocation = DECREMENT.prepare_invoke();
        invocation.key(self.key(key)).arg(self.now_ms());
        self.invoke::<i64>("decrement", Replay::IfUnsent, Lane::Shared, &invocation)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.query::<()>("delete", &cmd).await
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()> {
        let now = self.now_ms();
        let mut invocation = SET_ADD.prepare_invoke();
        invocation
            .key(self.key(key))
            .arg(now)
            .arg(expiry_ms(now, ttl))
            .arg(member)
            .arg(ttl_ms(ttl));
        // Adding the same member with the same expiry twice is adding it once.
        self.invoke::<i64>("set_add", Replay::Always, Lane::Shared, &invocation)
            .await?;
        Ok(())
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.key(key)).arg(member);
        self.query::<()>("set_remove", &cmd).await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.key(key))
            .arg(format!("({}", self.now_ms()))
            .arg("+inf");
        self.query("set_members", &cmd).await
    }

    async fn ping(&self) -> Result<()> {
        // With Sentinel, ready means the sentinels answer too: without
        // them the next failover would not be followed.
        if let Some(trouble) = self.target.sentinel.as_ref().and_then(Follower::trouble) {
            return Err(Error::Unavailable(trouble));
        }
        self.query::<()>("ping", &redis::cmd("PING")).await
    }

    async fn entries(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let pattern = format!("{}*", redis_glob_escape(&self.prefix));
        let mut names = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000);
            let (next, batch): (u64, Vec<String>) = self.query("entries", &cmd).await?;
            names.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        let mut out = Vec::new();
        for name in names {
            let Some(key) = name.strip_prefix(&*self.prefix) else {
                continue;
            };
            let mut kind = redis::cmd("TYPE");
            kind.arg(&name);
            let kind: String = self.query("entries", &kind).await?;
            let value = if kind == "zset" {
                self.set_members(key).await?.join("\n").into_bytes()
            } else {
                match self.get(key).await {
                    Ok(Some(v)) => v,
                    Ok(None) => continue,
                    // Shown as stored: a value outside the envelope format.
                    Err(_) => {
                        let mut raw = redis::cmd("GET");
                        raw.arg(&name);
                        let raw: Option<Vec<u8>> = self.query("entries", &raw).await?;
                        raw.unwrap_or_default()
                    }
                }
            };
            out.push((key.to_owned(), value));
        }
        Ok(out)
    }
}

/// `text` as a literal inside a Redis glob pattern.
fn redis_glob_escape(text: &str) -> String {
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

    /// Kills and restarts a private `redis-server` under one store handle:
    /// calls fail fast with `Unavailable` while it is down and succeed again
    /// once it is back, and a hung server only costs the response timeout.
    #[tokio::test(flavor = "multi_thread")]
    async fn same_handle_survives_a_redis_restart() {
        use std::process::{Child, Command, Stdio};
        use std::time::Instant;

        fn free_port() -> u16 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        }
        async fn start(port: u16) -> Child {
            // scripts/test names the binary; otherwise it must be on PATH.
            let bin = std::env::var("IDP_TEST_REDIS_SERVER").unwrap_or("redis-server".into());
            let child = Command::new(bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            child
        }
        fn signal(child: &Child, sig: &str) {
            let pid = child.id().to_string();
            assert!(
                Command::new("kill")
                    .args([sig, &pid])
                    .status()
                    .unwrap()
                    .success()
            );
        }

        let port = free_port();
        let mut server = start(port).await;
        let clock = Arc::new(crate::clock::ManualClock::default());
        let url = format!("redis://127.0.0.1:{port}");
        let store = RedisStore::connect(&url, "t:".into(), clock).await.unwrap();
        store.put("k", b"v", Duration::from_secs(60)).await.unwrap();

        server.kill().unwrap();
        server.wait().unwrap();
        for _ in 0..3 {
            let started = Instant::now();
            let down = store.get("k").await;
            assert!(matches!(down, Err(Error::Unavailable(_))), "{down:?}");
            assert!(started.elapsed() < Duration::from_secs(1));
        }

        let mut server = start(port).await;
        let mut back = false;
        for _ in 0..30 {
            if store.ping().await.is_ok() {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(back, "the handle did not reconnect");
        store
            .put("k", b"v2", Duration::from_secs(60))
            .await
            .unwrap();

        // A hung server: the call times out; afterwards replies are not
        // mismatched (the late reply to the timed-out GET is discarded).
        signal(&server, "-STOP");
        let started = Instant::now();
        assert!(matches!(store.get("k").await, Err(Error::Unavailable(_))));
        assert!(started.elapsed() < CALL_TIMEOUT + Duration::from_millis(500));
        signal(&server, "-CONT");
        assert_eq!(store.get("other").await.unwrap(), None);
        assert_eq!(store.get("k").await.unwrap(), Some(b"v2".to_vec()));

        server.kill().unwrap();
        server.wait().unwrap();
    }
}
