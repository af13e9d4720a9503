//! TOTP codes (RFC 6238 through totp-rs), the secrets behind them, and
//! recovery codes. Pure functions: storage and pages are elsewhere.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::credentials::totp_secret::MIN_SECRET_BYTES;
use crate::crypto::sha256_hex;

/// What every authenticator app understands: 6 digits, 30-second steps,
/// HMAC-SHA-1; a code of the step before or after is accepted.
pub const DIGITS: u32 = 6;
pub const PERIOD_SECS: u32 = 30;
const SKEW_STEPS: u16 = 1;
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Secrets of 80 bits (`MIN_SECRET_BYTES`) work when imported: totp-rs's
/// checking builder refuses less than 128.
const RFC_MIN_SECRET_BYTES: usize = 16;
/// 80 bits per recovery code: random enough for a plain SHA-256 at rest.
const RECOVERY_BYTES: usize = 10;
pub const RECOVERY_CODES: usize = 10;

/// A fresh secret, base32 (32 characters).
pub fn new_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    Secret::from(bytes.to_vec()).to_base32()
}

fn totp(secret_base32: &str, account: &str, issuer: &str) -> Option<Totp> {
    let secret = Secret::try_from_base32(secret_base32).ok()?;
    let short = (MIN_SECRET_BYTES..RFC_MIN_SECRET_BYTES).contains(&secret.as_bytes().len());
    let builder = Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS as u8)
        .with_step_duration(u64::from(PERIOD_SECS))
        .with_skew(SKEW_STEPS)
        .with_secret(secret)
        .with_account_name(account.replace(':', ""))
        .with_issuer(Some(issuer.replace(':', "")));
    // Unchecked only for the length: the other settings are the constants
    // above, and the names have no ':' left.
    if short {
        Some(builder.build_noncompliant())
    } else {
        builder.build().ok()
    }
}

/// The time step the 6-digit `code` belongs to at `unix_time`, if it is right.
pub fn matching_step(secret_base32: &str, code: &str, unix_time: i64) -> Option<i64> {
    let totp = totp(secret_base32, "", "")?;
    let time = u64::try_from(unix_time).ok()?;
    totp.check(code, time).and_then(|s| i64::try_from(s).ok())
}

/// The `otpauth://totp/...` URI apps scan.
pub fn otpauth_uri(secret_base32: &str, account: &str, issuer: &str) -> Option<String> {
    totp(secret_base32, account, issuer)?.to_url().ok()
}

/// The URI as an inline `<svg>` element (no XML declaration).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg")?;
    Some(svg[start..].to_owned())
}

/// The key in groups of four, for typing by hand.
pub fn grouped(secret_base32: &str) -> String {
    secret_base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a person typed into the code box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeInput {
    /// Six digits.
    Totp(String),
    /// A recovery code, normalised (upper case, no separators).
    Recovery(String),
    Malformed,
}

pub fn parse_code(input: &str) -> CodeInput {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if compact.len() == DIGITS as usize && compact.bytes().all(|b| b.is_ascii_digit()) {
        return CodeInput::Totp(compact);
    }
    let upper = compact.to_ascii_uppercase();
    if upper.len() == 16
        && upper
            .bytes()
            .all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7'))
    {
        return CodeInput::Recovery(upper);
    }
    CodeInput::Malformed
}

/// Fresh recovery codes as shown (`xxxx-xxxx-xxxx-xxxx`) and their hashes as stored.
pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            let code = Secret::from(bytes.to_vec()).to_base32();
            let shown = grouped(&code.to_ascii_lowercase()).replace(' ', "-");
            (shown, recovery_hash(&code))
        })
        .unzip()
}

/// The stored form of a normalised recovery code.
pub fn recovery_hash(normalised: &str) -> String {
    sha256_hex(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_160_bits_of_base32() {
        let s = new_secret();
        assert_eq!(s.len(), 32);
        assert_ne!(s, new_secret());
        assert_eq!(grouped(&s).split(' ').count(), 8);
    }

    #[test]
    fn codes_of_the_neighbouring_steps_match_and_others_do_not() {
        // RFC 6238 appendix B's SHA-1 key; 6-digit codes are the last 6 of the 8-digit vectors.
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        assert_eq!(matching_step(&secret, "287082", 59), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(&secret, "287082", 59 + 60), None);
        assert_eq!(
            matching_step(&secret, "081804", 1_111_111_109),
            Some(37_037_036)
        );
        assert_eq!(matching_step(&secret, "000000", 59), None);
    }

    #[test]
    fn imported_80_bit_secrets_work_and_shorter_ones_do_not() {
        // Codes from pyotp (tests/fixtures/legacy-hashes/generate.py).
        let fixtures = include_str!("../../../tests/fixtures/legacy-hashes/totp.jsonl");
        for line in fixtures.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let (secret, code) = (v["secret"].as_str().unwrap(), v["code"].as_str().unwrap());
            let time = v["time"].as_i64().unwrap();
            assert_eq!(secret.len(), 16);
            assert_eq!(matching_step(secret, code, time), Some(time / 30), "{line}");
            assert!(otpauth_uri(secret, "jane@example.com", "id").is_some());
        }
        let short = Secret::from(b"12345678".to_vec()).to_base32();
        assert_eq!(matching_step(&short, "000000", 59), None);
    }

    #[test]
    fn input_is_read_as_a_code_a_recovery_code_or_nothing() {
        assert_eq!(parse_code(" 123 456 "), CodeInput::Totp("123456".into()));
        assert_eq!(
            parse_code("abcd-efgh-ijkl-mnop"),
            CodeInput::Recovery("ABCDEFGHIJKLMNOP".into())
        );
        for bad in ["", "12345", "1234567", "abcdef", "abcd-efgh-ijkl-mno1"] {
            assert_eq!(parse_code(bad), CodeInput::Malformed, "{bad}");
        }
    }

    #[test]
    fn recovery_codes_are_shown_grouped_and_stored_hashed() {
        let (shown, hashes) = new_recovery_codes();
        assert_eq!(shown.len(), 10);
        assert_eq!(shown[0].len(), 19);
        let CodeInput::Recovery(n) = parse_code(&shown[0]) else {
            panic!("not a recovery code: {}", shown[0]);
        };
        assert_eq!(recovery_hash(&n), hashes[0]);
        assert!(!hashes[0].contains(&n));
    }

    #[test]
    fn the_uri_and_qr_code_name_issuer_and_account() {
        let s = new_secret();
        let uri = otpauth_uri(&s, "jane@example.com", "id.example.com:8443").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={s}")));
        assert!(uri.contains("issuer=id.example.com8443"), "{uri}");
        assert!(uri.contains("jane%40example.com"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"));
    }
}
