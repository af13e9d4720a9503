//! The ephemeral store: short-lived state shared by every node (browser
//! sessions, authorization codes, sign-ins in progress, counters, challenges).
//!
//! One trait, two implementations: Redis for production, an in-process map for
//! the embedded default. Expiry follows the app's [`Clock`](crate::clock::Clock)
//! in both, so tests move time instead of sleeping; Redis additionally gets a
//! real TTL so that nothing outlives its use.
//!
//! Callers do not use raw strings: each use has a typed [`Key`] built by a
//! function in [`keys`], and [`Ephemeral`] stores its value as JSON.
//!
//! State found by a bearer secret (a session cookie, a pending sign-in's
//! cookie, an authorization request id, a code, a captcha challenge) is
//! stored under the SHA-256 of that secret, never the secret itself: a copy
//! of the store (a dump, a replica, a backup) opens nothing. The key
//! builders take the raw secret and hash inside ([`keys::secret`]), so call
//! sites cannot forget.

mod memory;
mod redis;

pub use memory::MemoryStore;
pub use redis::{RedisStore, SentinelSettings};

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("ephemeral store unavailable: {0}")]
    Unavailable(String),
    #[error("ephemeral value could not be decoded: {0}")]
    Decode(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// One count taken: the counter's value after it and its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub count: u64,
    pub window: CounterWindow,
}

/// Which window of a counter a count fell in: the window's end by the app
/// clock (Redis: milliseconds since the epoch, as its envelope keeps it;
/// the in-process store: nanoseconds). A live counter keeps its end, and
/// one that follows an expired one ends at least a window later. One
/// deleted (a lock clears its address's count) and made again within the
/// same unit of that clock would get the same name: a late give-back may
/// then land in it (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterWindow(pub(crate) i128);

/// One counter of an [`EphemeralStore::count_unless`]: counted in a
/// window of `window`; the counting stops after it if its count is past
/// `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally<'a> {
    pub key: &'a str,
    pub window: Duration,
    pub limit: u64,
}

/// What [`EphemeralStore::count_unless`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counting {
    /// The bar's value was live: nothing was counted.
    Barred(Vec<u8>),
    /// The counts taken, in the order of the tallies (fewer than asked if
    /// one went past its limit).
    Counted(Vec<Counted>),
}

/// What [`Ephemeral::count_unless`] did: the bar's value, or the counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gated<B> {
    Barred(B),
    Counted(Vec<Counted>),
}

/// Raw operations. Keys are given without the deployment prefix; each
/// implementation adds its own.
#[async_trait::async_trait]
pub trait EphemeralStore: Send + Sync + std::fmt::Debug {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<()>;
    /// Stores `value` only if no live value exists; true when stored.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;
    /// Replaces the value only if one is stored; true when replaced. A value
    /// deleted meanwhile (an ended session) is not brought back.
    async fn put_if_present(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Several values in one round trip, in the order of `keys`.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Returns and removes the value in one atomic step: of two concurrent
    /// callers at most one gets it (single-use codes and tokens).
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Adds one to a counter and returns the new count and the window it
    /// fell in. A counter that does not exist (or has expired) starts at 1
    /// and lives for `window` from then.
    async fn increment(&self, key: &str, window: Duration) -> Result<Counted> {
        let tally = Tally {
            key,
            window,
            limit: u64::MAX,
        };
        match self.count_unless(None, &[tally]).await? {
            Counting::Counted(counts) => counts.first().copied(),
            Counting::Barred(_) => None,
        }
        .ok_or_else(|| Error::Decode("a count was asked for and none was taken".into()))
    }
    /// Counts several counters in one atomic step (one round trip), each as
    /// [`EphemeralStore::increment`] does, in the order given, unless a live
    /// value is stored under `bar`: then that value is returned and nothing
    /// is counted. The chain stops after the first count past its tally's
    /// `limit` (what follows it is not counted). Checking the bar and
    /// counting cannot be split by another caller's write: a lock written
    /// before is seen, one written after finds the counts taken.
    async fn count_unless(&self, bar: Option<&str>, tallies: &[Tally<'_>]) -> Result<Counting>;
    /// Takes one back from the counter (never below zero), keeping its
    /// expiry, if it is still the window `counted_in`: an attempt counted
    /// before its check gives its count back when it turns out to be no
    /// failure. A counter that has ended meanwhile is left alone (absent,
    /// or a new window begun since, which the attempt was never counted in).
    async fn decrement(&self, key: &str, counted_in: CounterWindow) -> Result<()> {
        self.give_back_then_get(&[(key, counted_in)], None)
            .await
            .map(drop)
    }
    /// [`EphemeralStore::decrement`] of each count, then a read of `then`,
    /// in one atomic step (one round trip).
    async fn give_back_then_get(
        &self,
        counts: &[(&str, CounterWindow)],
        then: Option<&str>,
    ) -> Result<Option<Vec<u8>>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Adds `member` to the set under `key`, live for `ttl` from now (adding
    /// it again restarts its ttl). Each member expires on its own, by the app
    /// clock; the set goes when its last member does.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<()>;
    async fn set_remove(&self, key: &str, member: &str) -> Result<()>;
    /// The live members of the set under `key`, in no particular order.
    async fn set_members(&self, key: &str) -> Result<Vec<String>>;
    /// Round trip to the backing service, for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// Every live key of this store (without the prefix) with its value (a
    /// set's members, one per line), for tests and diagnostics: it walks the
    /// whole store, so no request path may call it.
    async fn entries(&self) -> Result<Vec<(String, Vec<u8>)>>;
}

/// A key of the ephemeral store with the type of value it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key<T> {
    name: String,
    _value: PhantomData<fn() -> T>,
}

impl<T> Key<T> {
    fn new(kind: &str, id: &str) -> Self {
        Self {
            name: format!("{kind}:{id}"),
            _value: PhantomData,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

/// Key builders, one per use, so the layout of the store is visible in one place.
pub mod keys {
    use super::Key;
    use crate::crypto::sha256_hex;

    /// A key for state found by a bearer secret: stored under the secret's
    /// SHA-256, so the store never holds the secret itself.
    pub fn secret<T>(kind: &str, raw_secret: &str) -> Key<T> {
        Key::new(kind, &sha256_hex(raw_secret))
    }

    /// The same key as [`secret`] from the secret's SHA-256 (hex), for an
    /// index that holds hashes only.
    pub fn secret_hash<T>(kind: &str, secret_sha256: &str) -> Key<T> {
        Key::new(kind, secret_sha256)
    }

    /// A value kept only for tests of the store itself and for `/readyz`-like probes.
    pub fn probe(id: &str) -> Key<String> {
        Key::new("probe", id)
    }

    /// The user's session epoch: sessions of older epochs are void.
    pub fn session_epoch(user_id: &str) -> Key<u64> {
        Key::new("session-epoch", user_id)
    }

    /// The SHA-256 of the ids of the user's browser sessions (a set; see
    /// `web::session`): never the ids themselves.
    pub fn user_sessions(user_id: &str) -> Key<super::Set> {
        Key::new("user-sessions", user_id)
    }

    /// A lockout of an email address (its normalised key), until the stored instant (unix seconds).
    pub fn lock(email_key: &str) -> Key<i64> {
        Key::new("lock", email_key)
    }

    /// A key for a capability's own value type (the capability documents it).
    pub fn typed<T>(kind: &str, id: &str) -> Key<T> {
        Key::new(kind, id)
    }

    /// A counter (failures, rate limits) under a named scope.
    pub fn counter(scope: &str, id: &str) -> Key<u64> {
        Key::new(&format!("count:{scope}"), id)
    }

    /// An outstanding proof-of-work captcha challenge; the value is its
    /// difficulty. Under its SHA-256, like every value a browser holds.
    pub fn captcha(challenge: &str) -> Key<u8> {
        secret("captcha", challenge)
    }

    /// Present while the revoked access tokens of the durable store are in
    /// this ephemeral store; its absence means the store lost its data (see
    /// `oidc::revocation`).
    pub fn revocations_loaded() -> Key<i64> {
        Key::new("revocations-loaded", "v1")
    }
}

/// The cheap, cloneable handle kept in the app state: typed JSON values on top
/// of the raw store.
#[derive(Debug, Clone)]
pub struct Ephemeral(Arc<dyn EphemeralStore>);

impl Ephemeral {
    pub fn new(store: Arc<dyn EphemeralStore>) -> Self {
        Self(store)
    }

    pub fn raw(&self) -> &dyn EphemeralStore {
        self.0.as_ref()
    }

    pub async fn put<T: Serialize>(&self, key: &Key<T>, value: &T, ttl: Duration) -> Result<()> {
        self.0.put(key.as_str(), &encode(value)?, ttl).await
    }

    pub async fn put_if_absent<T: Serialize>(
        &self,
        key: &Key<T>,
        value: &T,
        ttl: Duration,
    ) -> Result<bool> {
        self.0
            .put_if_absent(key.as_str(), &encode(value)?, ttl)
            .await
    }

    pub async fn put_if_present<T: Serialize>(
        &self,
        key: &Key<T>,
        value: &T,
        ttl: Duration,
    ) -> Result<bool> {
        self.0
            .put_if_present(key.as_str(), &encode(value)?, ttl)
            .await
    }

    pub async fn get<T: DeserializeOwned>(&self, key: &Key<T>) -> Result<Option<T>> {
        self.0
            .get(key.as_str())
            .await?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Two values in one round trip.
    pub async fn get_pair<A: DeserializeOwned, B: DeserializeOwned>(
        &self,
        a: &Key<A>,
        b: &Key<B>,
    ) -> Result<(Option<A>, Option<B>)> {
        let mut values = self
            .0
            .get_many(&[a.as_str(), b.as_str()])
            .await?
            .into_iter();
        let a = values.next().flatten().map(|v| decode(&v)).transpose()?;
        let b = values.next().flatten().map(|v| decode(&v)).transpose()?;
        Ok((a, b))
    }

    pub async fn take<T: DeserializeOwned>(&self, key: &Key<T>) -> Result<Option<T>> {
        self.0
            .take(key.as_str())
            .await?
            .map(|v| decode(&v))
            .transpose()
    }

    /// Counts one: the new count. See [`Ephemeral::count`] for a count
    /// that may be given back.
    pub async fn increment(&self, key: &Key<u64>, window: Duration) -> Result<u64> {
        Ok(self.0.increment(key.as_str(), window).await?.count)
    }

    /// Counts one: the new count and the window it fell in, for
    /// [`Ephemeral::give_back`].
    pub async fn count(&self, key: &Key<u64>, window: Duration) -> Result<Counted> {
        self.0.increment(key.as_str(), window).await
    }

    /// Counts two counters in one round trip, each as [`Ephemeral::count`].
    pub async fn count_both(
        &self,
        a: (&Key<u64>, Duration),
        b: (&Key<u64>, Duration),
    ) -> Result<(Counted, Counted)> {
        let tallies = [a, b].map(|(key, window)| Tally {
            key: key.as_str(),
            window,
            limit: u64::MAX,
        });
        match self.0.count_unless(None, &tallies).await? {
            Counting::Counted(counts) => match counts[..] {
                [a, b] => Ok((a, b)),
                _ => Err(Error::Decode("two counts were asked for".into())),
            },
            Counting::Barred(_) => Err(Error::Decode("a count without a bar was barred".into())),
        }
    }

    /// Takes back what [`Ephemeral::count`] counted, in the window it was
    /// counted in; nothing once that window has ended.
    pub async fn give_back(&self, key: &Key<u64>, counted: Counted) -> Result<()> {
        self.0.decrement(key.as_str(), counted.window).await
    }

    /// Counts each `(key, window, limit)` in order unless `bar` holds a
    /// live value, in one atomic step: see [`EphemeralStore::count_unless`].
    pub async fn count_unless<B: DeserializeOwned>(
        &self,
        bar: &Key<B>,
        tallies: &[(&Key<u64>, Duration, u64)],
    ) -> Result<Gated<B>> {
        let tallies: Vec<Tally<'_>> = tallies
            .iter()
            .map(|(key, window, limit)| Tally {
                key: key.as_str(),
                window: *window,
                limit: *limit,
            })
            .collect();
        Ok(
            match self.0.count_unless(Some(bar.as_str()), &tallies).await? {
                Counting::Barred(value) => Gated::Barred(decode(&value)?),
                Counting::Counted(counts) => Gated::Counted(counts),
            },
        )
    }

    /// Gives back each count (see [`Ephemeral::give_back`]) in one round
    /// trip.
    pub async fn give_back_many(&self, counts: &[(Key<u64>, Counted)]) -> Result<()> {
        self.0
            .give_back_then_get(&windows(counts), None)
            .await
            .map(drop)
    }

    /// Gives back each count (see [`Ephemeral::give_back`]), then reads
    /// `then`, in one round trip.
    pub async fn give_back_then_get<T: DeserializeOwned>(
        &self,
        counts: &[(Key<u64>, Counted)],
        then: &Key<T>,
    ) -> Result<Option<T>> {
        self.0
            .give_back_then_get(&windows(counts), Some(then.as_str()))
            .await?
            .map(|v| decode(&v))
            .transpose()
    }

    pub async fn delete<T>(&self, key: &Key<T>) -> Result<()> {
        self.0.delete(key.as_str()).await
    }

    pub async fn set_add(&self, key: &Key<Set>, member: &str, ttl: Duration) -> Result<()> {
        self.0.set_add(key.as_str(), member, ttl).await
    }

    pub async fn set_remove(&self, key: &Key<Set>, member: &str) -> Result<()> {
        self.0.set_remove(key.as_str(), member).await
    }

    pub async fn set_members(&self, key: &Key<Set>) -> Result<Vec<String>> {
        self.0.set_members(key.as_str()).await
    }

    pub async fn ping(&self) -> Result<()> {
        self.0.ping().await
    }
}

/// The value type of keys that hold a set of strings whose members expire
/// one by one ([`EphemeralStore::set_add`]); it is never read with `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {}

/// Each counter's name with the window its count fell in, as the raw
/// store takes them back.
fn windows(counts: &[(Key<u64>, Counted)]) -> Vec<(&str, CounterWindow)> {
    counts
        .iter()
        .map(|(key, counted)| (key.as_str(), counted.window))
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Decode(e.to_string()))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}
