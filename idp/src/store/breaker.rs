//! Failing fast while the database is unreachable: a circuit breaker shared
//! by every call of a store (see docs/decisions.md "PostgreSQL down").
//!
//! Without it, every request that needs the database waits the pool's
//! whole acquire timeout (sqlx keeps retrying a refused connection until
//! then) before its 503, and requests pile up behind each other.
//!
//! - Closed (normal): a call goes to the pool. If getting a connection takes
//!   longer than [`SLOW`], or fails with a connection error, a probe is
//!   started: one fresh connection made outside the pool, with its own
//!   short bound. A slow acquire alone opens nothing: under load the pool is
//!   merely busy, the probe connects and the call keeps waiting its turn.
//! - Open: the probe could not connect. Calls fail at once with
//!   [`Error::Unavailable`](super::Error::Unavailable), and calls already
//!   waiting for a connection give up too. The probe tries again every
//!   [`PROBE_INTERVAL`] (one task, sleeping between tries) and closes the
//!   breaker when it connects.
//! - Only the probe's own connection attempt decides; what a query says (a
//!   constraint violation, a malformed input) never reaches the breaker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{ConnectOptions, Connection, Database, Pool, Transaction};
use tokio::sync::watch;

use super::Error;

/// An acquire slower than this has a probe check that the database answers.
const SLOW: Duration = Duration::from_millis(150);
/// Bound on one probe: a fresh connection and a ping.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between probes while the database is unreachable, so recovery is
/// seen within about this long, without spinning.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);
/// Pause after a successful probe before another may start: a pool that
/// stays busy does not get a probe connection per slow call.
const PROBE_COOLDOWN: Duration = Duration::from_millis(250);

/// A pool with its breaker; cheap to clone, shared by every call.
#[derive(Debug)]
pub(super) struct Guarded<DB: Database> {
    pool: Pool<DB>,
    breaker: Arc<Breaker>,
}

// By hand: a derive would ask `DB: Clone`.
impl<DB: Database> Clone for Guarded<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            breaker: self.breaker.clone(),
        }
    }
}

#[derive(Debug)]
struct Breaker {
    /// True while the database is known to be unreachable.
    open: watch::Sender<bool>,
    /// True while a probe task runs (at most one).
    probing: AtomicBool,
}

impl<DB: Database> Guarded<DB> {
    pub(super) fn new(pool: Pool<DB>) -> Self {
        Self {
            pool,
            breaker: Arc::new(Breaker {
                open: watch::Sender::new(false),
                probing: AtomicBool::new(false),
            }),
        }
    }

    /// The pool itself, for what runs before requests are served (migrations).
    pub(super) fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection of the pool, or at once an error while the database is
    /// known to be unreachable.
    pub(super) async fn conn(&self) -> Result<PoolConnection<DB>, Error> {
        self.guard(self.pool.acquire())
            .await
            .map_err(super::sql::db_error)
    }

    pub(super) async fn begin(&self) -> Result<Transaction<'static, DB>, sqlx::Error> {
        self.guard(self.pool.begin()).await
    }

    pub(super) async fn begin_with(
        &self,
        statement: impl sqlx::SqlSafeStr,
    ) -> Result<Transaction<'static, DB>, sqlx::Error> {
        self.guard(self.pool.begin_with(statement)).await
    }

    async fn guard<T>(
        &self,
        acquire: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let mut opened = self.breaker.open.subscribe();
        if *opened.borrow_and_update() {
            return Err(known_down());
        }
        let acquire = std::pin::pin!(acquire);
        let mut acquire = acquire;
        match tokio::time::timeout(SLOW, &mut acquire).await {
            Ok(Err(e)) if is_connection_failure(&e) => {
                self.probe();
                return Err(e);
            }
            Ok(done) => return done,
            Err(_slow) => self.probe(),
        }
        tokio::select! {
            done = &mut acquire => {
                if let Err(e) = &done && is_connection_failure(e) {
                    self.probe();
                }
                done
            }
            _ = opened.wait_for(|open| *open) => Err(known_down()),
        }
    }

    /// Starts the probe task unless one runs.
    fn probe(&self) {
        if self.breaker.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let breaker = self.breaker.clone();
        let options = self.pool.connect_options();
        tokio::spawn(async move {
            loop {
                let reached = tokio::time::timeout(PROBE_TIMEOUT, async {
                    let mut conn = options.connect().await?;
                    conn.ping().await?;
                    conn.close().await
                })
                .await;
                let up = matches!(reached, Ok(Ok(())));
                let was_open = breaker.open.send_replace(!up);
                if up {
                    if was_open {
                        tracing::info!("database reachable again");
                    }
                    tokio::time::sleep(PROBE_COOLDOWN).await;
                    break;
                }
                if !was_open {
                    let error = match reached {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".to_owned(),
                    };
                    tracing::warn!(%error, "database unreachable; failing fast until it answers");
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
            breaker.probing.store(false, Ordering::Release);
        });
    }
}

/// Errors of reaching the database, as opposed to what it answered.
fn is_connection_failure(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::WorkerCrashed
    )
}

/// The error a call gets while the breaker is open (for logs; the client
/// sees a 503 without it).
fn known_down() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "database unreachable (failing fast until a probe connects)",
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    use super::*;

    /// A loopback port nothing listens on (bound, then released).
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    /// A database that refuses connections: the first call fails with the
    /// refusal and starts a probe; once the probe has failed too, calls fail
    /// at once with the breaker's error instead of waiting the pool's
    /// acquire timeout (5 s here) each.
    #[tokio::test]
    async fn an_unreachable_database_opens_the_breaker_and_calls_fail_at_once() {
        let options = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(closed_port())
            .username("nobody");
        let pool = PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        let guarded = Guarded::new(pool);

        assert!(
            guarded.conn().await.is_err(),
            "a refused connection is an error"
        );
        let opened = tokio::time::timeout(Duration::from_secs(3), async {
            let mut open = guarded.breaker.open.subscribe();
            open.wait_for(|open| *open).await.map(|_| ())
        })
        .await;
        assert!(
            matches!(opened, Ok(Ok(()))),
            "the failed probe opens the breaker"
        );

        let started = Instant::now();
        let error = guarded.begin().await.expect_err("the database is down");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "an open breaker answers at once, not after the acquire timeout: {:?}",
            started.elapsed()
        );
        assert!(error.to_string().contains("failing fast"), "{error}");
        assert!(
            guarded.breaker.probing.load(Ordering::Acquire),
            "the probe keeps trying while the database is down"
        );
    }

    #[test]
    fn only_failures_to_reach_the_database_count() {
        assert!(is_connection_failure(&sqlx::Error::PoolTimedOut));
        assert!(is_connection_failure(&known_down()));
        assert!(!is_connection_failure(&sqlx::Error::RowNotFound));
        assert!(!is_connection_failure(&sqlx::Error::Protocol("bad".into())));
    }
}
