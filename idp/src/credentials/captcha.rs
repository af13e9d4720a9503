//! The captcha: a self-hosted proof-of-work challenge on the forms a script
//! would hammer (sign-in and forgot-password, seed 001; registration).
//!
//! Why proof of work: no third-party service sees our users, nothing to load
//! from another origin, and it works without a human-solvable puzzle. The cost
//! falls on the client: its script searches for the smallest non-negative
//! integer `nonce` such that SHA-256 of `challenge + ":" + nonce` (nonce in
//! decimal) starts with `difficulty` zero bits, about 2^difficulty hashes.
//!
//! The server side stays cheap and stateless per node:
//! - [`issue`] draws a 128-bit random challenge and keeps it, with the
//!   difficulty asked of it, in the ephemeral store for `ttl_secs`.
//! - [`verify`] rejects malformed input without touching the store, then takes
//!   the challenge atomically (single use, whatever the outcome, so a wrong
//!   nonce cannot be retried against the same challenge) and hashes once.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Section `[captcha]` of the main config, defined with the rest of it.
use crate::config::CaptchaConfig;
use crate::ephemeral::{self, Ephemeral, keys};

/// 128 bits, base64url without padding.
const CHALLENGE_BYTES: usize = 16;
const CHALLENGE_LEN: usize = 22;
/// `u64::MAX` has 20 decimal digits; the solver never needs more.
const MAX_NONCE_LEN: usize = 20;

/// What a form page renders for its solver script.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Challenge {
    pub challenge: String,
    pub difficulty: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum CaptchaError {
    /// The form came without a challenge or a nonce.
    #[error("captcha missing")]
    Missing,
    /// Wrong nonce, or a challenge that is unknown, expired or already used.
    #[error("captcha invalid")]
    Invalid,
    #[error(transparent)]
    Store(#[from] ephemeral::Error),
}

/// Draws a fresh challenge and remembers it until it is answered or expires.
pub async fn issue(
    ephemeral: &Ephemeral,
    config: &CaptchaConfig,
) -> Result<Challenge, ephemeral::Error> {
    let mut bytes = [0u8; CHALLENGE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let challenge = URL_SAFE_NO_PAD.encode(bytes);
    ephemeral
        .put(
            &keys::captcha(&challenge),
            &config.difficulty,
            Duration::from_secs(config.ttl_secs),
        )
        .await?;
    Ok(Challenge {
        challenge,
        difficulty: config.difficulty,
    })
}

/// Checks an answer. Single use: a well-formed answer takes the challenge out
/// of the store whether or not the nonce is right.
pub async fn verify(
    ephemeral: &Ephemeral,
    challenge: &str,
    nonce: &str,
) -> Result<(), CaptchaError> {
    if challenge.is_empty() || nonce.is_empty() {
        return Err(CaptchaError::Missing);
    }
    // Malformed input is refused before the store is touched: it could never
    // be right, and a guessed key never reaches the store.
    if !is_challenge(challenge)
        || nonce.len() > MAX_NONCE_LEN
        || !nonce.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(CaptchaError::Invalid);
    }
    let Some(difficulty) = ephemeral.take(&keys::captcha(challenge)).await? else {
        return Err(CaptchaError::Invalid);
    };
    let digest = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":")
        .chain_update(nonce.as_bytes())
        .finalize();
    if leading_zero_bits(&digest) >= u32::from(difficulty) {
        Ok(())
    } else {
        Err(CaptchaError::Invalid)
    }
}

/// The answer the client's script computes: the smallest nonce whose hash has
/// `difficulty` leading zero bits. For tests and benchmarks.
pub fn solve(challenge: &str, difficulty: u8) -> u64 {
    let prefix = Sha256::new()
        .chain_update(challenge.as_bytes())
        .chain_update(b":");
    let wanted = u32::from(difficulty);
    // Unreachable in practice (2^64 hashes); returning the last nonce instead
    // of panicking keeps the lints happy and the answer merely wrong.
    (0..=u64::MAX)
        .find(|nonce| {
            let digest = prefix
                .clone()
                .chain_update(nonce.to_string().as_bytes())
                .finalize();
            leading_zero_bits(&digest) >= wanted
        })
        .unwrap_or(u64::MAX)
}

fn is_challenge(value: &str) -> bool {
    value.len() == CHALLENGE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn leading_zero_bits(digest: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in digest {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::ephemeral::MemoryStore;

    /// Low enough that a debug build solves it in milliseconds.
    const TEST_DIFFICULTY: u8 = 10;

    fn setup() -> (Ephemeral, ManualClock, CaptchaConfig) {
        let clock = ManualClock::default();
        let store = MemoryStore::new(Arc::new(clock.clone()));
        let config = CaptchaConfig {
            difficulty: TEST_DIFFICULTY,
            ..CaptchaConfig::default()
        };
        (Ephemeral::new(Arc::new(store)), clock, config)
    }

    fn hash_bits(challenge: &str, nonce: u64) -> u32 {
        leading_zero_bits(&Sha256::digest(format!("{challenge}:{nonce}").as_bytes()))
    }

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        assert_eq!(leading_zero_bits(&[0xff]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x10, 0x00]), 11);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
    }

    #[test]
    fn solve_finds_the_smallest_nonce() {
        let nonce = solve("some-challenge", 8);
        assert!(hash_bits("some-challenge", nonce) >= 8);
        assert!((0..nonce).all(|n| hash_bits("some-challenge", n) < 8));
    }

    #[tokio::test]
    async fn issued_challenge_is_128_bit_and_solvable() {
        let (ephemeral, _clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        assert_eq!(issued.challenge.len(), CHALLENGE_LEN);
        assert_eq!(issued.difficulty, TEST_DIFFICULTY);
        let nonce = solve(&issued.challenge, issued.difficulty);
        verify(&ephemeral, &issued.challenge, &nonce.to_string())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn replay_is_refused() {
        let (ephemeral, _clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        let nonce = solve(&issued.challenge, issued.difficulty).to_string();
        verify(&ephemeral, &issued.challenge, &nonce).await.unwrap();
        assert!(matches!(
            verify(&ephemeral, &issued.challenge, &nonce).await,
            Err(CaptchaError::Invalid)
        ));
    }

    #[tokio::test]
    async fn wrong_nonce_is_refused_and_burns_the_challenge() {
        let (ephemeral, _clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        let right = solve(&issued.challenge, issued.difficulty);
        let wrong = (0..)
            .find(|n| hash_bits(&issued.challenge, *n) < u32::from(issued.difficulty))
            .unwrap();
        assert!(matches!(
            verify(&ephemeral, &issued.challenge, &wrong.to_string()).await,
            Err(CaptchaError::Invalid)
        ));
        assert!(matches!(
            verify(&ephemeral, &issued.challenge, &right.to_string()).await,
            Err(CaptchaError::Invalid)
        ));
    }

    #[tokio::test]
    async fn malformed_nonce_does_not_consume_the_challenge() {
        let (ephemeral, _clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        for nonce in ["12a", "-1", " 1", "123456789012345678901"] {
            assert!(matches!(
                verify(&ephemeral, &issued.challenge, nonce).await,
                Err(CaptchaError::Invalid)
            ));
        }
        let nonce = solve(&issued.challenge, issued.difficulty);
        verify(&ephemeral, &issued.challenge, &nonce.to_string())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn missing_fields_are_reported_as_missing() {
        let (ephemeral, _clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        assert!(matches!(
            verify(&ephemeral, "", "1").await,
            Err(CaptchaError::Missing)
        ));
        assert!(matches!(
            verify(&ephemeral, &issued.challenge, "").await,
            Err(CaptchaError::Missing)
        ));
    }

    #[tokio::test]
    async fn unknown_challenge_is_refused() {
        let (ephemeral, _clock, _config) = setup();
        let challenge = URL_SAFE_NO_PAD.encode([7u8; CHALLENGE_BYTES]);
        let nonce = solve(&challenge, TEST_DIFFICULTY);
        assert!(matches!(
            verify(&ephemeral, &challenge, &nonce.to_string()).await,
            Err(CaptchaError::Invalid)
        ));
        // Not shaped like a challenge at all.
        assert!(matches!(
            verify(&ephemeral, "count:login:x", "1").await,
            Err(CaptchaError::Invalid)
        ));
    }

    #[tokio::test]
    async fn expired_challenge_is_refused() {
        let (ephemeral, clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        let nonce = solve(&issued.challenge, issued.difficulty);
        let ttl = i64::try_from(config.ttl_secs).unwrap();
        clock.advance(time::Duration::seconds(ttl + 1));
        assert!(matches!(
            verify(&ephemeral, &issued.challenge, &nonce.to_string()).await,
            Err(CaptchaError::Invalid)
        ));
    }

    #[tokio::test]
    async fn difficulty_is_respected() {
        let (ephemeral, _clock, config) = setup();
        let issued = issue(&ephemeral, &config).await.unwrap();
        let wanted = u32::from(issued.difficulty);
        // Real work, just one bit short of what was asked.
        let short = (0..)
            .find(|n| hash_bits(&issued.challenge, *n) == wanted - 1)
            .unwrap();
        assert!(matches!(
            verify(&ephemeral, &issued.challenge, &short.to_string()).await,
            Err(CaptchaError::Invalid)
        ));
    }
}
