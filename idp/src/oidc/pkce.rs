//! PKCE (RFC 7636): the one shape rule for verifiers and challenges, and the
//! S256 check at the token endpoint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::crypto::constant_time_eq;

/// RFC 7636 4.1: 43 to 128 characters of `[A-Z] / [a-z] / [0-9] / "-" /
/// "." / "_" / "~"`. A verifier must have this shape; `/authorize` holds an
/// S256 challenge to it as well.
pub fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 4.6: the verifier is well formed and
/// `BASE64URL(SHA256(verifier))` is the challenge (compared in constant time).
pub fn s256_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed(verifier) && constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::{s256_matches, well_formed};

    #[test]
    fn shape() {
        assert!(well_formed(&"a".repeat(43)));
        assert!(well_formed(&"a-._~Z9".repeat(19)[..128]));
        assert!(!well_formed(&"a".repeat(42)));
        assert!(!well_formed(&"a".repeat(129)));
        assert!(!well_formed(&format!("{}+", "a".repeat(42))));
    }

    #[test]
    fn s256() {
        // BASE64URL(SHA256(verifier)), computed apart from this code.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r7wW1gFWFOEjXk";
        let challenge = "bwWFMyPfdG9qreDhH2lmftFx_dFeLDalzcT1gb_j68g";
        assert!(s256_matches(verifier, challenge));
        assert!(!s256_matches(verifier, &challenge.replace('b', "c")));
        assert!(!s256_matches(&verifier[..42], challenge));
    }
}
