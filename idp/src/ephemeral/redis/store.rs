//! [`RedisStore`]: the ephemeral store's operations on the primary, each
//! bounded in time and sent again on a fresh connection when that is safe.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{IntoConnectionInfo, ProtocolVersion, RedisError};
use tokio::sync::Notify;

use super::connection::{
    CALL_TIMEOUT, IO_TIMEOUT, Replay, bounded, is_connection_error, is_read_only, manager,
    unavailable,
};
use super::envelope::{envelope, expiry_ms, open_envelope, redis_glob_escape, ttl_ms};
use super::scripts::{COUNT_UNLESS, GIVE_BACK_THEN_GET, PUT_IF_ABSENT, SET_ADD};
use super::sentinel::{
    Follower, Lane, Primary, SentinelSettings, Target, find_primary, open_primary, watch,
};
use crate::clock::SharedClock;
use crate::ephemeral::{Counted, CounterWindow, Counting, EphemeralStore, Error, Result, Tally};

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
    /// [`WATCH_INTERVAL`](super::sentinel::WATCH_INTERVAL) ask again and move the store to the new primary.
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

    async fn count_unless(&self, bar: Option<&str>, tallies: &[Tally<'_>]) -> Result<Counting> {
        let now = self.now_ms();
        let mut invocation = COUNT_UNLESS.prepare_invoke();
        invocation.arg(now).arg(u8::from(bar.is_some()));
        if let Some(bar) = bar {
            invocation.key(self.key(bar));
        }
        for tally in tallies {
            invocation
                .key(self.key(tally.key))
                .arg(expiry_ms(now, tally.window))
                .arg(ttl_ms(tally.window))
                .arg(tally.limit);
        }
        let reply: redis::Value = self
            .invoke("count", Replay::IfUnsent, Lane::Shared, &invocation)
            .await?;
        let unexpected = || Error::Decode("unexpected reply to a count".into());
        match reply {
            redis::Value::BulkString(payload) => Ok(Counting::Barred(payload)),
            reply @ redis::Value::Array(_) => {
                let flat: Vec<i64> = redis::from_redis_value(reply).map_err(|_| unexpected())?;
                flat.chunks_exact(2)
                    .map(|pair| {
                        Ok(Counted {
                            count: u64::try_from(pair[0]).map_err(|_| unexpected())?,
                            window: CounterWindow(i128::from(pair[1])),
                        })
                    })
                    .collect::<Result<_>>()
                    .map(Counting::Counted)
            }
            _ => Err(unexpected()),
        }
    }

    async fn give_back_then_get(
        &self,
        counts: &[(&str, CounterWindow)],
        then: Option<&str>,
    ) -> Result<Option<Vec<u8>>> {
        let now = self.now_ms();
        let mut invocation = GIVE_BACK_THEN_GET.prepare_invoke();
        invocation.arg(now).arg(u8::from(then.is_some()));
        for (key, counted_in) in counts {
            invocation
                .key(self.key(key))
                // Not one of ours if it does not fit: left alone by the script.
                .arg(i64::try_from(counted_in.0).unwrap_or(i64::MIN));
        }
        if let Some(then) = then {
            invocation.key(self.key(then));
        }
        // The payload, out of its envelope, if it is live.
        self.invoke("give back", Replay::IfUnsent, Lane::Shared, &invocation)
            .await
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
