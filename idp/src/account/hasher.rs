//! argon2id password hashing (PHC strings), run on tokio's blocking pool behind
//! a semaphore: a burst of sign-ins queues instead of starving the async
//! workers or taking every core.

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
        let dummy_hash = hash_with(&params, "dummy password for unknown accounts")?;
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

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?
    }
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
