//! Encryption of secrets at rest (signing keys, TOTP secrets) with the
//! configured key-encryption key (`keys.encryption_key`, 32 bytes):
//! AES-256-GCM from aws-lc-rs.
//!
//! Envelope, as stored in `signing_key.private_key` or `totp_credential.secret`:
//!
//! ```text
//! aes256gcm.v1.<base64url, no padding, of: nonce (12 bytes) || ciphertext || tag (16 bytes)>
//! ```
//!
//! The associated data names the row (the caller's `context`, e.g.
//! `idp signing key <kid>`), so an envelope copied onto another row does not
//! open there. Nonces are random: a key-encryption key seals a handful of
//! keys a month, far from the 2^32 messages where random 96-bit nonces
//! start to risk a collision.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

const PREFIX: &str = "aes256gcm.v1.";

/// Why an envelope could not be made or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("keys.encryption_key is not the base64 of 32 bytes")]
    BadKey,
    /// Wrong key, or the envelope was altered or moved to another row.
    #[error("cannot decrypt")]
    Open,
    #[error("encryption failed")]
    Seal,
}

/// The key-encryption key.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek([redacted])")
    }
}

impl Kek {
    /// From the configured value: standard base64 of 32 bytes.
    pub fn from_base64(value: &str) -> Result<Self, EnvelopeError> {
        let bytes = STANDARD
            .decode(value.trim())
            .map_err(|_| EnvelopeError::BadKey)?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| EnvelopeError::BadKey)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// A key only the holder of `secret` can make again: the SHA-256 of
    /// `purpose`, a zero byte and `secret`. For values stored beside a
    /// bearer secret's hash (the ephemeral store), so that the store alone
    /// cannot open them; `secret` must be a 256-bit random value.
    pub fn derived(purpose: &str, secret: &str) -> Result<Self, EnvelopeError> {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(purpose.as_bytes());
        hasher.update([0u8]);
        hasher.update(secret.as_bytes());
        let bytes = hasher.finalize();
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| EnvelopeError::BadKey)?;
        Ok(Self(LessSafeKey::new(key)))
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<String, EnvelopeError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| EnvelopeError::Seal)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&nonce);
        let mut sealed = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| EnvelopeError::Seal)?;
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    pub fn open(&self, context: &str, envelope: &str) -> Result<Vec<u8>, EnvelopeError> {
        let encoded = envelope.strip_prefix(PREFIX).ok_or(EnvelopeError::Open)?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| EnvelopeError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(EnvelopeError::Open);
        }
        let mut sealed = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).map_err(|_| EnvelopeError::Open)?;
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| EnvelopeError::Open)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kek(byte: u8) -> Kek {
        Kek::from_base64(&STANDARD.encode([byte; 32])).unwrap()
    }

    #[test]
    fn envelopes_round_trip_and_hide_the_plaintext() {
        let pem =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
        let sealed = kek(1).seal("kid-1", pem).unwrap();
        assert!(sealed.starts_with("aes256gcm.v1."), "{sealed}");
        assert!(!sealed.contains("BEGIN"));
        assert_ne!(sealed, kek(1).seal("kid-1", pem).unwrap(), "fresh nonce");
        assert_eq!(kek(1).open("kid-1", &sealed).unwrap(), pem);
    }

    #[test]
    fn a_wrong_key_a_moved_envelope_or_tampering_fail() {
        let sealed = kek(1).seal("kid-1", b"secret").unwrap();
        assert_eq!(kek(2).open("kid-1", &sealed), Err(EnvelopeError::Open));
        assert_eq!(kek(1).open("kid-2", &sealed), Err(EnvelopeError::Open));
        let mut tampered = sealed.clone();
        let last = if tampered.ends_with('A') { "B" } else { "A" };
        tampered.replace_range(tampered.len() - 1.., last);
        assert_eq!(kek(1).open("kid-1", &tampered), Err(EnvelopeError::Open));
        assert_eq!(kek(1).open("kid-1", "plain"), Err(EnvelopeError::Open));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(Kek::from_base64(&STANDARD.encode([0u8; 16])).is_err());
        assert!(Kek::from_base64("not base64!").is_err());
    }
}
