//! One-time codes as an authenticator app computes them: RFC 6238 TOTP over
//! RFC 4226 HOTP with HMAC-SHA-1, written here from the RFCs and independently
//! of the server's implementation, so a test's code is a second opinion.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step (RFC 6238's default X).
pub const STEP_SECS: i64 = 30;

/// RFC 4648 base32 (`A`–`Z`, `2`–`7`) without padding, in any case, with
/// spaces (and `=` padding, and dashes) ignored; `None` for any other
/// character or a dangling partial byte that is not zero bits.
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for c in text.chars() {
        let value = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            ' ' | '\t' | '\n' | '-' | '=' => continue,
            _ => return None,
        };
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // What is left (fewer than 8 bits) is padding and must be zero.
    (buffer == 0).then_some(out)
}

/// RFC 4226 HOTP: HMAC-SHA-1 of the 8-byte big-endian counter, dynamic
/// truncation, `digits` decimal digits (zero-padded).
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    let modulus = 10u64.pow(digits);
    format!(
        "{:0width$}",
        u64::from(binary) % modulus,
        width = digits as usize
    )
}

/// The step a Unix time falls in (T = floor(t / 30); times before 1970 are
/// not used by anyone and count as step 0).
pub fn step_of(unix_time: i64) -> u64 {
    u64::try_from(unix_time.div_euclid(STEP_SECS)).unwrap_or(0)
}

/// RFC 6238 TOTP with a raw key.
pub fn totp(key: &[u8], unix_time: i64, digits: u32) -> String {
    hotp(key, step_of(unix_time), digits)
}

/// The 6-digit code an authenticator app shows at `unix_time` for a secret
/// given in base32 (as in an `otpauth://` URI or typed by hand).
pub fn code(base32_secret: &str, unix_time: i64) -> String {
    let key = base32_decode(base32_secret)
        .unwrap_or_else(|| panic!("not a base32 secret: {base32_secret:?}"));
    totp(&key, unix_time, 6)
}

/// The code at an instant of the server's (test) clock.
pub fn code_at(base32_secret: &str, at: time::OffsetDateTime) -> String {
    code(base32_secret, at.unix_timestamp())
}

/// The code `steps` steps away (negative: earlier) from the one at `at`.
pub fn code_steps_from(base32_secret: &str, at: time::OffsetDateTime, steps: i64) -> String {
    code(base32_secret, at.unix_timestamp() + steps * STEP_SECS)
}

/// The `secret` parameter of an `otpauth://totp/…` URI.
pub fn secret_of_uri(uri: &str) -> Option<String> {
    let parsed = url::Url::parse(uri).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == "secret")
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, the SHA-1 rows: the ASCII key "12345678901234567890", 8 digits.
    const RFC_6238_SHA1: [(i64, &str); 6] = [
        (59, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ];

    #[test]
    fn rfc_6238_appendix_b_sha1_vectors() {
        for (time, expected) in RFC_6238_SHA1 {
            assert_eq!(
                totp(b"12345678901234567890", time, 8),
                expected,
                "T = {time}"
            );
        }
    }

    #[test]
    fn rfc_6238_vectors_through_base32_and_six_digits() {
        // "12345678901234567890" in base32, as an authenticator app would take it.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(base32_decode(secret).unwrap(), b"12345678901234567890");
        for (time, expected) in RFC_6238_SHA1 {
            // Six digits are the last six of the eight (both are mod 10^n).
            assert_eq!(code(secret, time), expected[2..], "T = {time}");
        }
        // Lower case, grouped by four with spaces: the same key.
        let typed = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq";
        assert_eq!(code(typed, 59), "287082");
    }

    #[test]
    fn rfc_4226_appendix_d_hotp_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *code);
        }
    }

    #[test]
    fn base32_rfc_4648_vectors() {
        for (encoded, plain) in [
            ("", ""),
            ("MY", "f"),
            ("MZXQ", "fo"),
            ("MZXW6", "foo"),
            ("MZXW6YQ", "foob"),
            ("MZXW6YTB", "fooba"),
            ("MZXW6YTBOI", "foobar"),
            ("MZXW6YTBOI======", "foobar"),
            ("mzxw 6ytb oi", "foobar"),
        ] {
            assert_eq!(
                base32_decode(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded:?}"
            );
        }
        assert_eq!(base32_decode("MZXW1"), None, "1 is not in the alphabet");
        assert_eq!(base32_decode("MZ"), None, "non-zero leftover bits");
    }

    #[test]
    fn steps_are_thirty_seconds_wide() {
        let secret = "JBSWY3DPEHPK3PXP";
        assert_eq!(code(secret, 60), code(secret, 89));
        assert_ne!(code(secret, 89), code(secret, 90));
        assert_eq!(step_of(89), 2);
        assert_eq!(code(secret, 90).len(), 6);
        let at = time::OffsetDateTime::from_unix_timestamp(1_000_000_000).unwrap();
        assert_eq!(
            code_steps_from(secret, at, -1),
            code(secret, 1_000_000_000 - 30)
        );
        assert_eq!(
            secret_of_uri("otpauth://totp/Idp:jane%40example.com?secret=ABCD&issuer=Idp")
                .as_deref(),
            Some("ABCD")
        );
    }
}
