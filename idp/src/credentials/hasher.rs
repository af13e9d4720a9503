//! argon2id password hashing (PHC strings), off the async workers behind a
//! semaphore: a burst of sign-ins queues instead of starving the async
//! workers or taking every core.
//!
//! Each hash runs on its own short-lived thread, which hands its heap back
//! to the operating system before it ends ([`release_memory`]): argon2id's
//! 19 MiB buffer would otherwise stay resident in the allocator (mimalloc
//! keeps freed memory of a thread for reuse), one buffer per thread that
//! ever hashed. Starting a thread costs tens of microseconds against a hash
//! of tens of milliseconds.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordHashingConfig;
use crate::domain::PlainPassword;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Failed(String),
}

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
    permits: Arc<Semaphore>,
    /// Verified against when the account does not exist, so an unknown email
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
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
        let dummy_params = params.clone();
        let dummy_hash = std::thread::spawn(move || {
            let hash = hash_with(&dummy_params, "dummy password for unknown accounts");
            release_memory();
            hash
        })
        .join()
        .map_err(|_| HashError::Failed("the hashing thread panicked".into()))??;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(config.max_concurrent)),
            dummy_hash: dummy_hash.into(),
        })
    }

    pub async fn hash(&self, password: &PlainPassword) -> Result<String, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        self.run(move || hash_with(&params, password.expose()))
            .await
    }

    /// Checks `password` against `stored`, or against a dummy hash when there is
    /// no stored hash, so both cases take the same time.
    pub async fn verify(
        &self,
        password: &PlainPassword,
        stored: Option<&str>,
    ) -> Result<Verification, HashError> {
        let params = self.params.clone();
        let password = password.clone();
        let (stored, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        self.run(move || {
            let argon = argon2(&params);
            let ok = argon
                .verify_password(password.expose().as_bytes(), stored.as_str())
                .is_ok();
            if !(ok && real) {
                return Ok(Verification::Mismatch);
            }
            let current = PasswordHash::new(&stored).ok().and_then(|h| {
                (h.algorithm == argon2::ARGON2ID_IDENT)
                    .then(|| Params::try_from(&h).ok())
                    .flatten()
            });
            let same = current.is_some_and(|c| {
                (c.m_cost(), c.t_cost(), c.p_cost())
                    == (params.m_cost(), params.t_cost(), params.p_cost())
            });
            if same {
                Ok(Verification::Match)
            } else {
                hash_with(&params, password.expose()).map(Verification::MatchRehashed)
            }
        })
        .await
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

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        // Held by the thread: a cancelled request does not free the slot
        // before its hash is done.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("argon2".into())
            .spawn(move || {
                let outcome = job();
                release_memory();
                drop(permit);
                // The receiver is gone only if the request was cancelled.
                let _ = done.send(outcome);
            })
            .map_err(|e| HashError::Failed(e.to_string()))?;
        result
            .await
            .map_err(|_| HashError::Failed("the hashing thread ended early".into()))?
    }
}

/// Returns the memory this thread freed (argon2's buffer) to the OS now.
#[allow(unsafe_code)]
fn release_memory() {
    // SAFETY: `mi_collect` takes no pointers and only walks the calling
    // thread's mimalloc heap, which is the global allocator's (main.rs sets
    // mimalloc as the global allocator; in tests, where it is not, the call
    // only finds an empty mimalloc heap).
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String, HashError> {
    argon2(params)
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
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
}
