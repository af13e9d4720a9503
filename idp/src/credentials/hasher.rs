//! argon2id password hashing (PHC strings), off the async workers on a
//! fixed pool of hashing threads, one per core by default
//! (`password_hashing.max_concurrent`), behind a bounded queue
//! (`password_hashing.max_queued`): a burst of sign-ins queues instead of
//! starving the async workers, and past the bound is refused at once
//! ([`HashError::Busy`], a "try again in a few seconds" page) rather than
//! piling up requests. The workers keep argon2's memory while they are
//! busy, run below the request handlers' CPU priority, and hand the memory
//! back to the operating system when they fall idle ([`pool`]).
//!
//! The PHC strings are built and read here around argon2's
//! `hash_password_into_with_memory` (the worker's own memory); a hash made
//! by argon2's `PasswordHasher` verifies here, and one made here verifies
//! with argon2's `PasswordVerifier` (tested both ways). Outputs are compared
//! in constant time.
//!
//! Imported accounts (issue 15) keep their portal's hash until the first
//! correct sign-in: any format [`LegacyHash`] reads is checked on the same
//! threads, and a match answers [`Verification::MatchRehashed`] with the
//! deployment's argon2id, which the caller stores in the same step. A stored
//! value nothing here reads is a wrong password (and a log line without it).
//!
//! Timing (docs/imported-signin.md): a wrong password
//! must cost the same whether the address is unknown, has no password, has
//! an argon2id hash or has a legacy hash, or the time would tell which
//! addresses have imported accounts. So:
//! - a legacy account's check costs its legacy check, then one argon2id
//!   computation either way (the new hash on a match, the dummy check on a
//!   mismatch). An argon2id hash at other parameters than the deployment's
//!   (PHP's m=65536,t=4, Django's m=102400,t=2,p=8, or this deployment's
//!   before a change) is such a legacy hash: its check costs what its
//!   parameters say, not what the dummy costs;
//! - every wrong password then waits (a sleep, no CPU, no permit held) until
//!   its legacy part has taken at least the *legacy floor*: the cost of the
//!   costliest legacy check this node knows is still stored. Everything else
//!   has no legacy part, so it waits the whole floor.
//!
//! The floor is learned: seeded at start-up by timing one wrong-password
//! check of the costliest of a sample of stored legacy hashes
//! ([`PasswordHasher::learn_floor`]), raised by every legacy check this node
//! makes (up to [`LEGACY_FLOOR_CEILING`]), and zero while there is none: a
//! deployment without imports pays nothing. Right passwords are not padded:
//! their answer (a session) already says the account exists.

mod pool;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq as _;

use self::pool::{Memory, Pool};
use super::legacy::LegacyHash;
use crate::config::PasswordHashingConfig;
use crate::domain::PlainPassword;

/// The most the legacy floor adds to a wrong password: a hash costlier to
/// check than this (the import's limits allow some seconds) is told apart
/// by its time, rather than every sign-in of the node waiting that long.
pub const LEGACY_FLOOR_CEILING: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// `password_hashing.max_queued` hashes already wait: refused at once,
    /// nothing was checked. A "try again in a few seconds", not a failure.
    #[error("too many passwords are waiting to be hashed")]
    Busy,
}

pub use self::pool::Load;
/// argon2's working memory as the hashing workers hold it (advised for
/// 2 MiB pages on Linux): the benchmark's hashing yardstick hashes in it too.
pub use self::pool::Memory as HashMemory;

/// Outcome of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    Match,
    /// Correct, but hashed with other parameters: store this new hash.
    MatchRehashed(String),
}

#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    pool: Arc<Pool>,
    /// Verified against when the account does not exist, so an unknown email
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
    /// The legacy floor in nanoseconds, shared by every clone (see the
    /// module's doc).
    legacy_floor: Arc<AtomicU64>,
}

/// What a stored password hash is, for checking.
enum Stored {
    /// The deployment's own: argon2id at its parameters.
    Argon2id(String),
    /// Another format or argon2id at other parameters, brought by an import
    /// (or left by earlier parameters): timed as a legacy check.
    Legacy(LegacyHash),
    /// No account, no password, or nothing readable: the dummy is checked.
    Nothing,
}

impl Stored {
    fn of(stored: Option<&str>, params: &Params) -> Self {
        let Some(stored) = stored else {
            return Self::Nothing;
        };
        match LegacyHash::parse(stored) {
            Ok(hash) if hash.is_current(params) => Self::Argon2id(stored.to_owned()),
            Ok(hash) => Self::Legacy(hash),
            // Beyond the import's limits (which refused it): only this
            // deployment's own argon2id of earlier parameters can be so dear.
            Err(_) if is_argon2id(stored) => Self::Argon2id(stored.to_owned()),
            Err(why) => {
                // The reason never repeats the hash.
                tracing::warn!(reason = %why, "a stored password hash cannot be read: the password is taken as wrong");
                Self::Nothing
            }
        }
    }
}

impl PasswordHasher {
    pub fn new(config: &PasswordHashingConfig) -> Result<Self, HashError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| HashError::Params(e.to_string()))?;
        let pool = Pool::start(config.max_concurrent, config.queue_bound())
            .map_err(|e| HashError::Failed(e.to_string()))?;
        // On a worker, like every hash; waited for here (start-up only).
        let (done, dummy) = std::sync::mpsc::sync_channel(1);
        let dummy_params = params.clone();
        pool.submit(Box::new(move |memory| {
            let _ = done.send(hash_with(
                &dummy_params,
                "dummy password for unknown accounts",
                memory,
            ));
        }))
        .map_err(|_| HashError::Busy)?;
        let dummy_hash = dummy
            .recv()
            .map_err(|_| HashError::Failed("the hashing thread panicked".into()))??;
        Ok(Self {
            params,
            pool: Arc::new(pool),
            dummy_hash: dummy_hash.into(),
            legacy_floor: Arc::default(),
        })
    }

    /// The pool's counters, for the metrics.
    pub fn load(&self) -> Load {
        self.pool.load().clone()
    }

    pub async fn hash(&self, password: &PlainPassword) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move |memory| hash_with(&params, password.expose(), memory))
            .await
    }

    /// Checks `password` against `stored` (argon2id, or any format
    /// [`LegacyHash`] reads), or against a dummy hash when there is no
    /// stored hash or it cannot be read; a wrong password then waits for the
    /// legacy floor, so every case takes the same time (see the module's doc).
    pub async fn verify(
        &self,
        password: &PlainPassword,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        let dummy = self.dummy_hash.clone();
        let stored = Stored::of(stored, &self.params);
        let (verification, legacy_cost) = self
            .run(move |memory| check(&params, &dummy, &password, stored, memory))
            .await?;
        let floor = self.raise_floor(legacy_cost);
        if verification == Verification::Mismatch {
            let rest = floor.saturating_sub(legacy_cost);
            if !rest.is_zero() {
                tokio::time::sleep(rest).await;
            }
        }
        Ok(verification)
    }

    /// The legacy floor now: what a wrong password waits for beyond argon2id.
    pub fn legacy_floor(&self) -> Duration {
        Duration::from_nanos(self.legacy_floor.load(Ordering::Relaxed))
    }

    /// Raises the floor to `cost` (capped at the ceiling); returns the floor.
    fn raise_floor(&self, cost: Duration) -> Duration {
        let capped = cost.min(LEGACY_FLOOR_CEILING);
        let nanos = u64::try_from(capped.as_nanos()).unwrap_or(u64::MAX);
        let before = self.legacy_floor.fetch_max(nanos, Ordering::Relaxed);
        Duration::from_nanos(before.max(nanos))
    }

    /// The start of this deployment's own hashes (`$argon2id$v=19$m=…,t=…,p=…$`):
    /// the store's `legacy_password_hashes` samples the others. It holds
    /// no `%` or `_`, so it can be a `like` pattern as it is.
    pub fn own_prefix(&self) -> String {
        let p = &self.params;
        format!(
            "$argon2id$v=19$m={},t={},p={}$",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        )
    }

    /// Seeds the floor from `sample`, stored hashes of the deployment (the
    /// store's `legacy_password_hashes`): times one wrong-password check of
    /// the costliest legacy hash among them (argon2id at other parameters
    /// included), by its parameters. A sample without one leaves the floor
    /// as it is (zero at start-up).
    pub async fn learn_floor(&self, sample: &[String]) -> Result<Duration, HashError> {
        let costliest = sample
            .iter()
            .filter_map(|s| LegacyHash::parse(s).ok())
            .filter(|h| !h.is_current(&self.params))
            .max_by_key(LegacyHash::work);
        let Some(hash) = costliest else {
            return Ok(self.legacy_floor());
        };
        let cost = self
            .run(move |_| {
                let started = Instant::now();
                // A wrong password (none is a lone space) that phpass,
                // which retries a password trimmed, checks twice: the
                // dearest a wrong password can make this hash.
                let _ = hash.verify(" ");
                Ok(started.elapsed())
            })
            .await?;
        Ok(self.raise_floor(cost))
    }

    /// Whether `input`, as typed, is the password behind `stored` (a form's
    /// "current password" box: anything unparseable is simply wrong).
    pub async fn matches(&self, input: &str, stored: Option<&str>) -> Result<bool, HashError> {
        let Ok(password) = PlainPassword::parse(input) else {
            return Ok(false);
        };
        Ok(matches!(
            self.verify(&password, stored).await?,
            Verification::Match | Verification::MatchRehashed(_)
        ))
    }

    /// Runs `job` on a hashing worker, or refuses it at once
    /// ([`HashError::Busy`]) when the queue is full. A request cancelled
    /// while its job waits leaves a job that the worker skips.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Memory) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.pool
            .submit(Box::new(move |memory| {
                if done.is_closed() {
                    return;
                }
                // The receiver is gone only if the request was cancelled.
                let _ = done.send(job(memory));
            }))
            .map_err(|_| HashError::Busy)?;
        result
            .await
            .map_err(|_| HashError::Failed("the hashing job ended early".into()))?
    }
}

/// One check, on a hashing thread: the verification, and how long its
/// legacy part took (zero when there was none).
fn check(
    params: &Params,
    dummy: &str,
    password: &PlainPassword,
    stored: Stored,
    memory: &mut Memory,
) -> Result<(Verification, Duration), HashError> {
    match stored {
        Stored::Argon2id(hash) => {
            Ok((verify_own(params, password, &hash, memory)?, Duration::ZERO))
        }
        Stored::Nothing => {
            // The dummy's password could be typed: whatever it says, no.
            let _ = verify_own(params, password, dummy, memory);
            Ok((Verification::Mismatch, Duration::ZERO))
        }
        Stored::Legacy(hash) => {
            let started = Instant::now();
            let right = hash.verify(password.expose());
            let cost = started.elapsed();
            // One argon2id computation either way: the new hash, or the dummy.
            let verification = if right {
                Verification::MatchRehashed(hash_with(params, password.expose(), memory)?)
            } else {
                let _ = verify_own(params, password, dummy, memory);
                Verification::Mismatch
            };
            Ok((verification, cost))
        }
    }
}

fn is_argon2id(stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| h.algorithm == argon2::ARGON2ID_IDENT)
}

/// Checks an argon2 hash (argon2id, or argon2i/argon2d, which match only
/// to be replaced), of any parameters; a match with other parameters than
/// the deployment's comes with a new hash. Anything unreadable is a
/// mismatch.
fn verify_own(
    params: &Params,
    password: &PlainPassword,
    stored: &str,
    memory: &mut Memory,
) -> Result<Verification, HashError> {
    let Ok(hash) = PasswordHash::new(stored) else {
        return Ok(Verification::Mismatch);
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Ok(Verification::Mismatch);
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return Ok(Verification::Mismatch);
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return Ok(Verification::Mismatch),
    };
    // The stored parameters, with the stored output's length.
    let Ok(theirs) = Params::try_from(&hash) else {
        return Ok(Verification::Mismatch);
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return Ok(Verification::Mismatch);
    };
    let computed = compute(
        algorithm,
        version,
        &theirs,
        password.expose(),
        salt,
        out,
        memory,
    );
    if computed == Err(argon2::Error::OutOfMemory) {
        // Says nothing of the password: no wrong one is counted.
        return Err(HashError::Failed("no memory for the hash".into()));
    }
    if computed.is_err() || !bool::from(out.ct_eq(expected.as_bytes())) {
        return Ok(Verification::Mismatch);
    }
    let same = algorithm == Algorithm::Argon2id
        && (theirs.m_cost(), theirs.t_cost(), theirs.p_cost())
            == (params.m_cost(), params.t_cost(), params.p_cost());
    if same {
        Ok(Verification::Match)
    } else {
        hash_with(params, password.expose(), memory).map(Verification::MatchRehashed)
    }
}

/// One argon2 computation in the worker's memory (`OutOfMemory` when the
/// worker cannot have as much as `params` asks).
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: &Params,
    password: &str,
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Memory,
) -> Result<(), argon2::Error> {
    Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        memory
            .blocks(params.block_count())
            .ok_or(argon2::Error::OutOfMemory)?,
    )
}

/// A new argon2id hash of `password` at the deployment's parameters, as a
/// PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`: a 16-byte salt and
/// a 32-byte output, what argon2's own `PasswordHasher` writes).
fn hash_with(params: &Params, password: &str, memory: &mut Memory) -> Result<String, HashError> {
    fn failed(e: impl std::fmt::Display) -> HashError {
        HashError::Failed(e.to_string())
    }
    let salt = argon2::password_hash::try_generate_salt().map_err(failed)?;
    let salt = Salt::new(&salt).map_err(failed)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let version = Version::V0x13;
    compute(
        Algorithm::Argon2id,
        version,
        params,
        password,
        &salt,
        &mut out,
        memory,
    )
    .map_err(failed)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(version.into()),
        params: ParamsString::try_from(params).map_err(failed)?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(phc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(memory_kib: u32) -> PasswordHashingConfig {
        PasswordHashingConfig {
            memory_kib,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
            max_queued: None,
        }
    }

    fn pw(s: &str) -> PlainPassword {
        PlainPassword::parse(s).unwrap()
    }

    #[tokio::test]
    async fn verifies_and_refuses() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        let hash = hasher.hash(&pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            hasher
                .verify(&pw("correct horse"), Some(&hash))
                .await
                .unwrap(),
            Verification::Match
        );
        assert_eq!(
            hasher
                .verify(&pw("wrong horse"), Some(&hash))
                .await
                .unwrap(),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.verify(&pw("correct horse"), None).await.unwrap(),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn rehashes_when_parameters_change() {
        let old = PasswordHasher::new(&cheap(8192)).unwrap();
        let hash = old.hash(&pw("correct horse")).await.unwrap();
        let new = PasswordHasher::new(&cheap(9216)).unwrap();
        match new.verify(&pw("correct horse"), Some(&hash)).await.unwrap() {
            Verification::MatchRehashed(h) => {
                assert!(h.contains("m=9216"), "{h}");
                assert_eq!(
                    new.verify(&pw("correct horse"), Some(&h)).await.unwrap(),
                    Verification::Match
                );
            }
            other => panic!("expected a rehash, got {other:?}"),
        }
    }

    /// From tests/fixtures/legacy-hashes (passlib, low cost).
    const BCRYPT: &str = "$2a$04$ULmAQR.Ni.sjyklaGtgEDu6DkjG0sdlg5qZUeItKXmPnzvwYQcx6u";
    const BCRYPT_PASSWORD: &str = "correct horse battery staple";

    #[tokio::test]
    async fn a_legacy_hash_is_checked_and_replaced_by_argon2id() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        assert_eq!(hasher.legacy_floor(), Duration::ZERO);
        let new = match hasher
            .verify(&pw(BCRYPT_PASSWORD), Some(BCRYPT))
            .await
            .unwrap()
        {
            Verification::MatchRehashed(h) => h,
            other => panic!("expected the argon2id replacement, got {other:?}"),
        };
        assert!(new.starts_with("$argon2id$"), "{new}");
        assert_eq!(
            hasher
                .verify(&pw(BCRYPT_PASSWORD), Some(&new))
                .await
                .unwrap(),
            Verification::Match
        );
        assert_eq!(
            hasher
                .verify(&pw("correct horse battery stapler"), Some(BCRYPT))
                .await
                .unwrap(),
            Verification::Mismatch
        );
        assert!(hasher.matches(BCRYPT_PASSWORD, Some(BCRYPT)).await.unwrap());
        // The check it made raised the floor.
        assert!(hasher.legacy_floor() > Duration::ZERO);
    }

    #[tokio::test]
    async fn an_unreadable_stored_value_is_a_wrong_password() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        for stored in [
            "",
            "not a hash",
            "$2a$31$ULmAQR.Ni.sjyklaGtgEDu6DkjG0sdlg5qZUeItKXmPnzvwYQcx6u",
            "$argon2id$v=19$m=8192,t=1,p=1$garbage",
            &"x".repeat(100_000),
        ] {
            assert_eq!(
                hasher.verify(&pw("anything"), Some(stored)).await.unwrap(),
                Verification::Mismatch,
                "{}",
                &stored[..stored.len().min(40)]
            );
        }
        assert_eq!(hasher.legacy_floor(), Duration::ZERO);
    }

    #[tokio::test]
    async fn no_floor_is_added_without_a_legacy_hash() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        let own = hasher.hash(&pw("correct horse")).await.unwrap();
        assert_eq!(hasher.learn_floor(&[]).await.unwrap(), Duration::ZERO);
        let sample = [own.clone(), "garbage".to_owned()];
        assert_eq!(hasher.learn_floor(&sample).await.unwrap(), Duration::ZERO);
        hasher.verify(&pw("wrong"), None).await.unwrap();
        hasher.verify(&pw("wrong"), Some(&own)).await.unwrap();
        assert_eq!(hasher.legacy_floor(), Duration::ZERO);
    }

    #[tokio::test]
    async fn the_floor_is_learned_from_the_costliest_stored_legacy_hash() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        // bcrypt at cost 10 against cost 4: the sample's costliest.
        let dear = bcrypt::hash("another password", 10).unwrap();
        let sample = [BCRYPT.to_owned(), dear.clone(), "garbage".to_owned()];
        let cheap_one = LegacyHash::parse(BCRYPT).unwrap();
        assert!(LegacyHash::parse(&dear).unwrap().work() > cheap_one.work());
        let started = Instant::now();
        assert!(!LegacyHash::parse(&dear).unwrap().verify("x"));
        let one_dear_check = started.elapsed();
        let floor = hasher.learn_floor(&sample).await.unwrap();
        // Lower bounds only: a loaded machine is slower, never faster.
        assert!(floor > Duration::ZERO);
        assert!(floor <= LEGACY_FLOOR_CEILING);
        assert!(
            floor * 4 >= one_dear_check,
            "floor {floor:?}, one check of the dearest {one_dear_check:?}"
        );
    }

    /// PHP's and Django's argon2id are dearer than the deployment's: their
    /// wrong passwords must not be slower than an unknown address's.
    #[tokio::test]
    async fn an_argon2id_hash_at_other_parameters_is_timed_as_a_legacy_one() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        let own = hasher.hash(&pw("correct horse")).await.unwrap();
        assert!(own.starts_with(&hasher.own_prefix()), "{own}");
        let portal = PasswordHasher::new(&PasswordHashingConfig {
            memory_kib: 16384,
            iterations: 2,
            parallelism: 2,
            max_concurrent: 2,
            max_queued: None,
        })
        .unwrap();
        let theirs = portal.hash(&pw("correct horse")).await.unwrap();
        assert!(!theirs.starts_with(&hasher.own_prefix()), "{theirs}");

        // In the start-up sample, it raises the floor to about its check.
        let floor = hasher
            .learn_floor(&[own.clone(), theirs.clone()])
            .await
            .unwrap();
        assert!(floor > Duration::ZERO);
        let started = Instant::now();
        assert!(!LegacyHash::parse(&theirs).unwrap().verify("x"));
        let one_check = started.elapsed();
        assert!(
            floor * 4 >= one_check,
            "floor {floor:?}, one check {one_check:?}"
        );
        // Then an unknown address, like a wrong password for either
        // account, waits at least that floor (lower bounds only).
        for stored in [None, Some(own.as_str()), Some(theirs.as_str())] {
            let started = Instant::now();
            let answer = hasher.verify(&pw("wrong horse"), stored).await.unwrap();
            assert_eq!(answer, Verification::Mismatch);
            assert!(started.elapsed() >= floor, "{:?}", started.elapsed());
        }

        // A node that has not sampled it learns the floor from its check,
        // and the right password replaces it by the deployment's own.
        let fresh = PasswordHasher::new(&cheap(8192)).unwrap();
        let answer = fresh.verify(&pw("wrong horse"), Some(&theirs)).await;
        assert_eq!(answer.unwrap(), Verification::Mismatch);
        assert!(fresh.legacy_floor() > Duration::ZERO);
        match fresh.verify(&pw("correct horse"), Some(&theirs)).await {
            Ok(Verification::MatchRehashed(h)) => assert!(h.starts_with(&fresh.own_prefix())),
            other => panic!("expected the deployment's own hash, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn with_a_floor_a_wrong_password_takes_at_least_that_much_longer() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        let own = hasher.hash(&pw("correct horse")).await.unwrap();
        let floor = Duration::from_millis(300);
        hasher.raise_floor(floor);
        assert_eq!(hasher.legacy_floor(), floor);
        // Unknown address, a wrong password for an argon2id account, and a
        // wrong one for a legacy account: each waits at least the floor.
        for stored in [None, Some(own.as_str()), Some(BCRYPT)] {
            let started = Instant::now();
            let answer = hasher.verify(&pw("wrong horse"), stored).await.unwrap();
            assert_eq!(answer, Verification::Mismatch);
            assert!(started.elapsed() >= floor, "{:?}", started.elapsed());
        }
        // The floor has a ceiling.
        hasher.raise_floor(Duration::from_secs(3600));
        assert_eq!(hasher.legacy_floor(), LEGACY_FLOOR_CEILING);
    }

    /// Hashes made here are standard PHC strings: argon2's own verifier
    /// (not this module's code) accepts them.
    #[tokio::test]
    async fn a_pooled_hash_verifies_with_argon2s_own_verifier() {
        use argon2::PasswordVerifier as _;
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        for _ in 0..3 {
            let hash = hasher.hash(&pw("correct horse")).await.unwrap();
            assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{hash}");
            let parsed = PasswordHash::new(&hash).unwrap();
            assert_eq!(parsed.salt.map(|s| s.len()), Some(16));
            assert!(
                Argon2::default()
                    .verify_password(b"correct horse", &parsed)
                    .is_ok()
            );
            assert!(
                Argon2::default()
                    .verify_password(b"correct horsf", &parsed)
                    .is_err()
            );
        }
    }

    /// Hashes stored before the pool (argon2's `PasswordHasher`) keep
    /// verifying; an argon2i one matches and is replaced by argon2id.
    #[tokio::test]
    async fn hashes_made_by_argon2s_own_hasher_verify_here() {
        use argon2::PasswordHasher as _;
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        let params = Params::new(8192, 1, 1, None).unwrap();
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert_eq!(
            hasher
                .verify(&pw("correct horse"), Some(&theirs))
                .await
                .unwrap(),
            Verification::Match
        );
        assert_eq!(
            hasher
                .verify(&pw("correct horsf"), Some(&theirs))
                .await
                .unwrap(),
            Verification::Mismatch
        );
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        match hasher.verify(&pw("correct horse"), Some(&argon2i)).await {
            Ok(Verification::MatchRehashed(h)) => assert!(h.starts_with(&hasher.own_prefix())),
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert_eq!(
            hasher
                .verify(&pw("correct horsf"), Some(&argon2i))
                .await
                .unwrap(),
            Verification::Mismatch
        );
    }

    /// One thread, one place in the queue: of a burst, at most two are
    /// taken (one hashing, one waiting), the rest refused at once and
    /// counted; then the pool takes work again.
    #[tokio::test]
    async fn past_the_queue_bound_a_hash_is_refused_at_once() {
        let hasher = PasswordHasher::new(&PasswordHashingConfig {
            max_concurrent: 1,
            max_queued: Some(1),
            ..cheap(16384)
        })
        .unwrap();
        let password = pw("correct horse");
        let burst = 8;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..burst {
            let (hasher, password) = (hasher.clone(), password.clone());
            tasks.spawn(async move { hasher.hash(&password).await });
        }
        let answers = tasks.join_all().await;
        let busy = answers
            .iter()
            .filter(|a| matches!(a, Err(HashError::Busy)))
            .count();
        let hashed = answers.iter().filter(|a| a.is_ok()).count();
        assert_eq!(busy + hashed, burst, "{answers:?}");
        assert!((1..=2).contains(&hashed), "{answers:?}");
        assert_eq!(hasher.load().refused.get(), busy as u64);
        assert_eq!(hasher.load().queued.get(), 0);
        assert!(hasher.hash(&password).await.is_ok());
    }

    /// The hashing threads run below the request handlers' priority.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let hasher = PasswordHasher::new(&cheap(8192)).unwrap();
        hasher.hash(&pw("correct horse")).await.unwrap();
        let mut seen = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let stat =
                std::fs::read_to_string(task.unwrap().path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: nice is the 19th field, the 17th after ')'.
            let Some((comm, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            if !comm.contains("(argon2-") {
                continue;
            }
            let nice: i32 = rest.split_whitespace().nth(16).unwrap().parse().unwrap();
            assert_eq!(nice, pool::WORKER_NICE, "{stat}");
            seen += 1;
        }
        assert!(seen >= 2, "no hashing thread found");
    }
}
