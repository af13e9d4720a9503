//! A TOTP secret at rest: sealed with the key-encryption key when one is
//! configured (bound to its account), and what an imported secret must be.
//! Here, below the capabilities, because both two-step sign-in (enrolment)
//! and the import of accounts (issue 15) store secrets.

use totp_rs::Secret;

use crate::crypto::envelope::{EnvelopeError, Kek};
use crate::domain::UserId;

/// Secrets of 80 bits (16 base32 characters), as many older systems issued,
/// are accepted; shorter ones are not.
pub const MIN_SECRET_BYTES: usize = 10;
/// No authenticator app uses more than 512 bits.
const MAX_SECRET_BYTES: usize = 64;

/// Why an imported secret cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadSecret {
    #[error("the TOTP secret is not base32")]
    NotBase32,
    #[error("the TOTP secret is shorter than 80 bits (16 base32 characters)")]
    TooShort,
    #[error("the TOTP secret is longer than 512 bits")]
    TooLong,
}

/// A secret as another system exported it (base32, any case, spaces,
/// `=` padding) in the canonical form enrolment stores: upper case, unpadded.
pub fn normalise(input: &str) -> Result<String, BadSecret> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .trim_end_matches('=')
        .to_ascii_uppercase();
    let secret = Secret::try_from_base32(&compact).map_err(|_| BadSecret::NotBase32)?;
    let bytes = secret.as_bytes().len();
    if bytes < MIN_SECRET_BYTES {
        return Err(BadSecret::TooShort);
    }
    if bytes > MAX_SECRET_BYTES {
        return Err(BadSecret::TooLong);
    }
    Ok(compact)
}

fn envelope_context(user: &UserId) -> String {
    format!("idp totp secret {}", user.as_str())
}

/// The secret as stored: sealed when a key-encryption key is configured.
pub fn seal(
    kek: Option<&Kek>,
    user: &UserId,
    secret: &str,
) -> Result<(String, bool), EnvelopeError> {
    match kek {
        Some(kek) => Ok((kek.seal(&envelope_context(user), secret.as_bytes())?, true)),
        None => Ok((secret.to_owned(), false)),
    }
}

/// The base32 secret back from its stored form.
pub fn open(
    kek: Option<&Kek>,
    user: &UserId,
    stored: &str,
    encrypted: bool,
) -> Result<String, EnvelopeError> {
    if !encrypted {
        return Ok(stored.to_owned());
    }
    let kek = kek.ok_or(EnvelopeError::BadKey)?;
    let plain = kek.open(&envelope_context(user), stored)?;
    String::from_utf8(plain).map_err(|_| EnvelopeError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_user() {
        use base64::Engine;
        let kek =
            Kek::from_base64(&base64::engine::general_purpose::STANDARD.encode([3u8; 32])).unwrap();
        let jane = UserId::from_trusted("u-jane".into());
        let (stored, encrypted) = seal(Some(&kek), &jane, "ABCDEFGH").unwrap();
        assert!(encrypted && !stored.contains("ABCDEFGH"));
        assert_eq!(open(Some(&kek), &jane, &stored, true).unwrap(), "ABCDEFGH");
        let john = UserId::from_trusted("u-john".into());
        assert!(open(Some(&kek), &john, &stored, true).is_err());
        assert_eq!(
            seal(None, &jane, "ABCDEFGH").unwrap(),
            ("ABCDEFGH".into(), false)
        );
    }

    #[test]
    fn imported_secrets_are_normalised_and_80_bits_at_least() {
        assert_eq!(
            normalise("33vz exi5 orwa kywh").unwrap(),
            "33VZEXI5ORWAKYWH"
        );
        assert_eq!(
            normalise("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP====").unwrap(),
            "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        );
        assert_eq!(normalise("JBSWY3DPEHPK3PX"), Err(BadSecret::TooShort));
        assert_eq!(normalise("not base32 at all!"), Err(BadSecret::NotBase32));
        assert_eq!(normalise(""), Err(BadSecret::TooShort));
        assert_eq!(normalise(&"A".repeat(120)), Err(BadSecret::TooLong));
    }
}
