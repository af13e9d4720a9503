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

mod connection;
mod envelope;
mod scripts;
mod sentinel;
mod store;

pub use sentinel::SentinelSettings;
pub use store::RedisStore;
