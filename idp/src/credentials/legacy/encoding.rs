//! The text encodings of the hashes in [`super`]: crypt(3)'s and bcrypt's
//! base64, passlib's, standard base64 as Python and .NET decode it, and the
//! small field readers every format shares.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The alphabet of crypt(3)'s own base64 (bcrypt uses it in another order).
pub(super) const CRYPT64: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(super) fn all_crypt64(s: &str) -> bool {
    s.bytes().all(|b| CRYPT64.contains(&b))
}

/// crypt(3)'s base64: `n` characters of `v`, low bits first.
pub(super) fn push64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(CRYPT64[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

/// Exactly `N` fields separated by `$`.
pub(super) fn fields<const N: usize>(s: &str) -> Option<[&str; N]> {
    let parts: Vec<&str> = s.split('$').collect();
    parts.try_into().ok()
}

/// A plain decimal number (no sign, no spaces, no leading `+`); a value
/// too large for the format is for the caller to refuse as too costly.
pub(super) fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// bcrypt's base64 as the bcrypt crate decodes it (strict about trailing bits).
pub(super) const BCRYPT64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::BCRYPT,
    base64::engine::general_purpose::NO_PAD,
);

/// Standard base64, padding optional, trailing bits ignored (as Python's
/// and .NET's decoders do).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

pub(super) fn standard_base64(s: &str) -> Option<Vec<u8>> {
    LENIENT.decode(s).ok()
}

/// passlib's base64: `.` or `+` for 62, no padding.
pub(super) fn passlib_base64(s: &str) -> Option<Vec<u8>> {
    if s.contains('=') {
        return None;
    }
    standard_base64(&s.replace('.', "+"))
}

/// PHP's trim(): space, tab, newline, carriage return, NUL, vertical tab.
pub(super) fn php_trim(s: &str) -> &str {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0b'])
}
