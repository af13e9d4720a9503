//! Connections to one Redis node: the manager's timeouts and backoff, which
//! errors mean a lost connection, when a call may be sent again, and how a
//! client error becomes [`Error::Unavailable`] (never with the URL).

use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Notify;

use crate::ephemeral::{Error, Result};

/// Bound on one connection attempt and on the wait for one reply.
pub(super) const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on a whole call, whatever the manager does inside (a reconnect in
/// progress makes a call wait for it).
pub(super) const CALL_TIMEOUT: Duration = Duration::from_millis(2500);
/// Backoff between reconnect attempts inside one reconnect.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);
/// Retries inside one reconnect. Each failed call triggers a new reconnect, so
/// recovery does not depend on this; it only bounds how long a call waits.
const RECONNECT_RETRIES: usize = 1;

/// A connection manager on `client` with the store's timeouts and backoff,
/// once its first connection is up. `wake` is told when a connection closes.
pub(super) async fn manager(
    client: redis::Client,
    wake: Option<Arc<Notify>>,
) -> Result<ConnectionManager> {
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

/// The connection is gone or could not be made (the primary died, or
/// Sentinel closed the clients of a demoted primary).
pub(super) fn is_connection_error(e: &RedisError) -> bool {
    e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error()
}

/// `READONLY`: the node is a replica now (a demoted primary). A script
/// meeting it at a write may report it inside its own error.
pub(super) fn is_read_only(e: &RedisError) -> bool {
    e.code() == Some("READONLY") || e.to_string().contains("READONLY")
}

/// When a call that failed on a lost connection may be sent again. A lost
/// connection is ambiguous: the command may never have left (the usual case
/// after a restart: the connection was dead before the call), or Redis may
/// have run it and the reply was lost. Only a refused connection proves
/// that nothing was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replay {
    /// Running it twice leaves the same state and answer as running it once
    /// (reads, SET, SET XX, DEL, ZADD, ZREM, PING), or a second run cannot
    /// hand out what the first took (GETDEL: see `take`).
    Always,
    /// Running it twice would count twice, take back twice or claim against
    /// itself (the INCR, DECR and SET NX scripts): only when nothing was sent.
    IfUnsent,
}

impl Replay {
    pub(super) fn allows(self, e: &RedisError) -> bool {
        match self {
            Replay::Always => e.is_connection_refusal() || e.is_connection_dropped(),
            Replay::IfUnsent => e.is_connection_refusal(),
        }
    }
}

pub(super) async fn bounded<T>(
    op: &str,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(unavailable(op, &e)),
        Err(_) => Err(Error::Unavailable(format!("redis {op}: timed out"))),
    }
}

/// The client's messages name the failing operation and the I/O or server
/// error, never the connection URL; the URL given to `connect` is not echoed.
pub(super) fn unavailable(op: &str, e: &RedisError) -> Error {
    Error::Unavailable(format!("redis {op}: {e}"))
}
