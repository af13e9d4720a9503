//! Password hashes made by other software, as imported accounts bring them
//! (issue 15): recognised by their standard encodings, checked against a
//! password, and never kept past the first correct sign-in (the caller then
//! stores the deployment's argon2id instead; [`LegacyHash::is_current`]).
//!
//! The digests come from the field's crates (`bcrypt`, `argon2`, `scrypt`,
//! `sha-crypt`, `pbkdf2`, `hmac`, `sha1`, `sha2`, `md-5`); what is written
//! here is only the reading of encodings no maintained crate reads (passlib's
//! PBKDF2 and scrypt strings, Django's, ASP.NET Identity's, LDAP's `{SSHA}`,
//! phpass and MD5-crypt, whose two short loops over MD5 are here too).
//!
//! Parsing refuses, with a reason that never repeats the hash: an unknown
//! format, malformed fields, and cost parameters far beyond what any of these
//! programs writes ([`limits`]): a stored hash decides how long a sign-in
//! computes, so an absurd one would let a single request take a core for
//! minutes.
//!
//! Checking is CPU-bound (tens of milliseconds for usual costs, seconds at
//! the limits): run it where the deployment's own hashing runs, off the
//! async workers.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha1::Sha1;
use sha2::{Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq as _;

use encoding::{
    BCRYPT64, CRYPT64, all_crypt64, decimal, fields, passlib_base64, php_trim, standard_base64,
};

mod cost;
mod encoding;
mod md5_schemes;

/// The cost limits. Each is several times the highest value the software
/// writes by default today (in brackets), so a real export is never
/// refused, while garbage such as bcrypt cost 31 or 2^32 PBKDF2 iterations
/// (hours to days of one core per attempt) is. The time of one check at the
/// limit was measured on the 2-core development machine under load (opt-level
/// 3); the deployment's hashing semaphore bounds how many run at once.
pub mod limits {
    /// bcrypt's cost, log2 of its rounds: about 9 s at 17. [PHP, WordPress
    /// 10, Laravel 10-12, Django 12; above 14 is rare.]
    pub const BCRYPT_COST: u32 = 17;
    /// PBKDF2 (passlib, Django, ASP.NET): about 25 s with SHA-256 at the
    /// limit, which only Django comes near. [Django 5-6: 1,000,000 to
    /// 1,200,000 SHA-256; ASP.NET Core 7+: 100,000 SHA-512; passlib 29,000.]
    pub const PBKDF2_ITERATIONS: u32 = 10_000_000;
    /// SHA-crypt rounds (the format allows 999,999,999): about 3.5 s with
    /// SHA-512. [glibc 5,000; passlib 535,000 SHA-256, 656,000 SHA-512.]
    pub const SHA_CRYPT_ROUNDS: u32 = 10_000_000;
    /// phpass's log2 of its MD5 rounds (the format allows 30): about 5 s.
    /// [WordPress 8, phpBB 10, Drupal 7 15.]
    pub const PHPASS_LOG2: u32 = 24;
    /// scrypt's memory, 128·N·r bytes. [passlib: N=2^16, r=8: 64 MiB.]
    pub const SCRYPT_MEMORY_BYTES: u64 = 256 << 20;
    /// scrypt's work, N·r·p: about 6.5 s. [passlib: 2^19.]
    pub const SCRYPT_WORK: u64 = 1 << 23;
    /// argon2's memory in KiB. [PHP 64 MiB, argon2-cffi 64 MiB, OWASP 19 MiB.]
    pub const ARGON2_MEMORY_KIB: u32 = 256 * 1024;
    /// argon2's memory times passes, in KiB: about 2 s. [PHP: 64 MiB × 4.]
    pub const ARGON2_WORK_KIB: u64 = 1 << 20;
    /// argon2's lanes. [1 to 4 everywhere.]
    pub const ARGON2_LANES: u32 = 16;
    /// No format here is longer than about 200 characters.
    pub const HASH_CHARS: usize = 1024;
}

/// The software or scheme a hash came from, as said in reports and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `$2a$`, `$2b$`, `$2y$` (PHP's `password_hash`, most frameworks).
    Bcrypt,
    /// `$wp$2y$`: WordPress 6.8+, bcrypt over an HMAC-SHA384 of the password.
    WordPress,
    Argon2id,
    Argon2i,
    /// `$scrypt$ln=…,r=…,p=…$salt$digest`, as passlib writes it.
    Scrypt,
    /// `$pbkdf2$`, `$pbkdf2-sha256$`, `$pbkdf2-sha512$` (passlib).
    PasslibPbkdf2,
    /// `pbkdf2_sha256$…`, `pbkdf2_sha1$…` (Django).
    DjangoPbkdf2,
    /// `$5$`, `$6$` (glibc's crypt, passlib).
    ShaCrypt,
    /// `$1$` (glibc's crypt, old Linux and PHP portals).
    Md5Crypt,
    /// `$P$`, `$H$`: phpass, WordPress before 6.8, phpBB and many PHP portals.
    Phpass,
    /// `{SSHA}`, `{SSHA256}`, `{SSHA512}` (OpenLDAP and other directories).
    LdapSsha,
    /// base64 of 0x00 | salt | key: ASP.NET Identity v2, PBKDF2-HMAC-SHA1.
    AspNetV2,
    /// base64 of 0x01 | prf | iterations | salt length | salt | key.
    AspNetV3,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bcrypt => "bcrypt",
            Self::WordPress => "WordPress bcrypt",
            Self::Argon2id => "argon2id",
            Self::Argon2i => "argon2i",
            Self::Scrypt => "scrypt",
            Self::PasslibPbkdf2 => "PBKDF2 (passlib)",
            Self::DjangoPbkdf2 => "PBKDF2 (Django)",
            Self::ShaCrypt => "SHA-crypt",
            Self::Md5Crypt => "MD5-crypt",
            Self::Phpass => "phpass",
            Self::LdapSsha => "LDAP salted SHA",
            Self::AspNetV2 => "ASP.NET Identity v2",
            Self::AspNetV3 => "ASP.NET Identity v3",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a stored hash cannot be used. Never contains the hash itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusedHash {
    #[error("the password hash is empty")]
    Empty,
    #[error("the password hash is longer than any known format")]
    TooLong,
    #[error("not a password hash format we know")]
    UnknownFormat,
    #[error("malformed {format} hash: {reason}")]
    Malformed {
        format: Format,
        reason: &'static str,
    },
    #[error(
        "{format} hash too costly to check: {parameter} is {value}, above our limit of {limit}"
    )]
    TooCostly {
        format: Format,
        parameter: &'static str,
        value: u64,
        limit: u64,
    },
}

/// A hash this module can check, parsed once.
#[derive(Clone)]
pub struct LegacyHash {
    format: Format,
    check: Check,
}

#[derive(Clone)]
enum Check {
    /// A `$2?$` string as the bcrypt crate reads it; for WordPress, what
    /// follows `$wp`.
    Bcrypt(String),
    WordPress(String),
    /// A PHC string, which the argon2 crate reads and checks.
    Argon2(String),
    Scrypt {
        params: scrypt::Params,
        salt: Vec<u8>,
        digest: Vec<u8>,
    },
    Pbkdf2 {
        prf: Prf,
        iterations: u32,
        salt: Vec<u8>,
        digest: Vec<u8>,
    },
    /// The `$5$`/`$6$` string, which the sha-crypt crate checks.
    ShaCrypt(String),
    Md5Crypt {
        salt: String,
        encoded: String,
    },
    Phpass {
        log2: u32,
        salt: String,
        encoded: String,
    },
    Ssha {
        prf: Prf,
        salt: Vec<u8>,
        digest: Vec<u8>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prf {
    Sha1,
    Sha256,
    Sha512,
}

impl Prf {
    fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

impl fmt::Debug for LegacyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyHash({}, [redacted])", self.format)
    }
}

impl LegacyHash {
    /// Recognises `stored` by its prefix (or, for ASP.NET Identity, its
    /// marker byte) and checks every field and cost parameter.
    pub fn parse(stored: &str) -> Result<Self, RefusedHash> {
        if stored.is_empty() {
            return Err(RefusedHash::Empty);
        }
        if stored.len() > limits::HASH_CHARS {
            return Err(RefusedHash::TooLong);
        }
        let (format, check) = if let Some(rest) = stored.strip_prefix("$wp") {
            let bcrypt = parse_bcrypt(rest, Format::WordPress)?;
            (Format::WordPress, Check::WordPress(bcrypt))
        } else if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            (
                Format::Bcrypt,
                Check::Bcrypt(parse_bcrypt(stored, Format::Bcrypt)?),
            )
        } else if stored.starts_with("$argon2") {
            parse_argon2(stored)?
        } else if let Some(rest) = stored.strip_prefix("$scrypt$") {
            (Format::Scrypt, parse_scrypt(rest)?)
        } else if let Some((prf, rest)) = strip_any(
            stored,
            &[
                ("$pbkdf2$", Prf::Sha1),
                ("$pbkdf2-sha256$", Prf::Sha256),
                ("$pbkdf2-sha512$", Prf::Sha512),
            ],
        ) {
            (Format::PasslibPbkdf2, parse_passlib_pbkdf2(prf, rest)?)
        } else if let Some((prf, rest)) = strip_any(
            stored,
            &[("pbkdf2_sha1$", Prf::Sha1), ("pbkdf2_sha256$", Prf::Sha256)],
        ) {
            (Format::DjangoPbkdf2, parse_django(prf, rest)?)
        } else if stored.starts_with("$5$") || stored.starts_with("$6$") {
            (Format::ShaCrypt, parse_sha_crypt(stored)?)
        } else if let Some(rest) = stored.strip_prefix("$1$") {
            (Format::Md5Crypt, parse_md5_crypt(rest)?)
        } else if stored.starts_with("$P$") || stored.starts_with("$H$") {
            (Format::Phpass, parse_phpass(stored)?)
        } else if let Some((prf, rest)) = strip_any(
            stored,
            &[
                ("{SSHA}", Prf::Sha1),
                ("{SSHA256}", Prf::Sha256),
                ("{SSHA512}", Prf::Sha512),
            ],
        ) {
            (Format::LdapSsha, parse_ssha(prf, rest)?)
        } else if let Some(bytes) = standard_base64(stored) {
            parse_aspnet(&bytes)?
        } else {
            return Err(RefusedHash::UnknownFormat);
        };
        Ok(Self { format, check })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether `password` is the one behind this hash, as the originating
    /// software would have said. Digests are compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        let pw = password.as_bytes();
        match &self.check {
            // Truncating at 72 bytes, as every bcrypt implementation does.
            Check::Bcrypt(hash) => bcrypt::verify(pw, hash).unwrap_or(false),
            Check::WordPress(hash) => {
                // wp_authenticate() trims the typed password before
                // wp_check_password(), and wp_hash_password() hashed it trimmed.
                let Ok(mut mac) = Hmac::<Sha384>::new_from_slice(b"wp-sha384") else {
                    return false;
                };
                mac.update(php_trim(password).as_bytes());
                let pre =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                bcrypt::verify(pre, hash).unwrap_or(false)
            }
            Check::Argon2(phc) => {
                use argon2::PasswordVerifier as _;
                argon2::Argon2::default()
                    .verify_password(pw, phc.as_str())
                    .is_ok()
            }
            Check::Scrypt {
                params,
                salt,
                digest,
            } => {
                let mut out = vec![0u8; digest.len()];
                scrypt::scrypt(pw, salt, params, &mut out).is_ok() && bool::from(out.ct_eq(digest))
            }
            Check::Pbkdf2 {
                prf,
                iterations,
                salt,
                digest,
            } => {
                let mut out = vec![0u8; digest.len()];
                match prf {
                    Prf::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(pw, salt, *iterations, &mut out),
                    Prf::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(pw, salt, *iterations, &mut out),
                    Prf::Sha512 => pbkdf2::pbkdf2_hmac::<Sha512>(pw, salt, *iterations, &mut out),
                }
                bool::from(out.ct_eq(digest))
            }
            Check::ShaCrypt(hash) => {
                use sha_crypt::PasswordVerifier as _;
                sha_crypt::ShaCrypt::default()
                    .verify_password(pw, hash.as_str())
                    .is_ok()
            }
            Check::Md5Crypt { salt, encoded } => {
                let computed = md5_schemes::md5_crypt_encoded(pw, salt.as_bytes());
                bool::from(computed.as_bytes().ct_eq(encoded.as_bytes()))
            }
            Check::Phpass {
                log2,
                salt,
                encoded,
            } => {
                let matches = |typed: &str| {
                    let computed =
                        md5_schemes::phpass_encoded(typed.as_bytes(), salt.as_bytes(), *log2);
                    bool::from(computed.as_bytes().ct_eq(encoded.as_bytes()))
                };
                // WordPress before 6.8 hashed the password trimmed (and its
                // sign-in trims what is typed); other PHP portals did not:
                // the password as typed, then trimmed when that differs.
                let trimmed = php_trim(password);
                matches(password) || (trimmed != password && matches(trimmed))
            }
            Check::Ssha { prf, salt, digest } => {
                let computed = match prf {
                    Prf::Sha1 => salted_digest::<Sha1>(pw, salt),
                    Prf::Sha256 => salted_digest::<Sha256>(pw, salt),
                    Prf::Sha512 => salted_digest::<Sha512>(pw, salt),
                };
                bool::from(computed.ct_eq(digest))
            }
        }
    }
}

/// LDAP's salted SHA: the digest of the password followed by the salt.
fn salted_digest<D: sha2::Digest>(password: &[u8], salt: &[u8]) -> Vec<u8> {
    D::new()
        .chain_update(password)
        .chain_update(salt)
        .finalize()
        .to_vec()
}

fn strip_any<'a, T: Copy>(s: &'a str, prefixes: &[(&str, T)]) -> Option<(T, &'a str)> {
    prefixes
        .iter()
        .find_map(|(p, t)| s.strip_prefix(p).map(|rest| (*t, rest)))
}

fn malformed(format: Format, reason: &'static str) -> RefusedHash {
    RefusedHash::Malformed { format, reason }
}

fn too_costly(format: Format, parameter: &'static str, value: u64, limit: u64) -> RefusedHash {
    RefusedHash::TooCostly {
        format,
        parameter,
        value,
        limit,
    }
}

/// Parsed only enough to refuse what the bcrypt crate would fail on or what
/// costs too much; the crate reads the rest when checking.
fn parse_bcrypt(s: &str, format: Format) -> Result<String, RefusedHash> {
    let version = s.get(..4).unwrap_or("");
    if !["$2a$", "$2b$", "$2y$"].contains(&version) {
        return Err(malformed(format, "not a $2a$, $2b$ or $2y$ bcrypt string"));
    }
    if s.len() != 60 || !s.is_ascii() {
        return Err(malformed(format, "a bcrypt string is 60 characters"));
    }
    let cost = s
        .get(4..6)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse::<u32>().ok())
        .ok_or(malformed(format, "the cost is not two digits"))?;
    if s.as_bytes().get(6) != Some(&b'$') {
        return Err(malformed(format, "no '$' after the cost"));
    }
    if cost < 4 {
        return Err(malformed(format, "the cost is below bcrypt's minimum of 4"));
    }
    if cost > limits::BCRYPT_COST {
        let limit = u64::from(limits::BCRYPT_COST);
        return Err(too_costly(format, "the cost", u64::from(cost), limit));
    }
    // Decoded as strictly as the bcrypt crate will when checking: a string it
    // cannot read is malformed now rather than a wrong password later.
    let (salt, digest) = (s.get(7..29).unwrap_or(""), s.get(29..).unwrap_or(""));
    if BCRYPT64.decode(salt).is_err() || BCRYPT64.decode(digest).is_err() {
        return Err(malformed(
            format,
            "the salt and digest are not bcrypt's base64",
        ));
    }
    Ok(s.to_owned())
}

fn parse_argon2(s: &str) -> Result<(Format, Check), RefusedHash> {
    use argon2::password_hash::phc::PasswordHash;
    let format = if s.starts_with("$argon2id$") {
        Format::Argon2id
    } else if s.starts_with("$argon2i$") {
        Format::Argon2i
    } else {
        return Err(RefusedHash::UnknownFormat);
    };
    let phc = PasswordHash::new(s).map_err(|_| malformed(format, "not a PHC string"))?;
    let params = argon2::Params::try_from(&phc)
        .map_err(|_| malformed(format, "missing or invalid m, t, p parameters"))?;
    if phc.salt.is_none() || phc.hash.is_none() {
        return Err(malformed(format, "no salt or no digest"));
    }
    if !matches!(phc.version, None | Some(0x10) | Some(0x13)) {
        return Err(malformed(format, "the version is neither 16 nor 19"));
    }
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    if m > limits::ARGON2_MEMORY_KIB {
        let limit = u64::from(limits::ARGON2_MEMORY_KIB);
        return Err(too_costly(
            format,
            "the memory (m, KiB)",
            u64::from(m),
            limit,
        ));
    }
    if u64::from(m) * u64::from(t) > limits::ARGON2_WORK_KIB {
        let value = u64::from(m) * u64::from(t);
        return Err(too_costly(
            format,
            "the memory times passes (m·t)",
            value,
            limits::ARGON2_WORK_KIB,
        ));
    }
    if p > limits::ARGON2_LANES {
        let limit = u64::from(limits::ARGON2_LANES);
        return Err(too_costly(format, "the lanes (p)", u64::from(p), limit));
    }
    Ok((format, Check::Argon2(s.to_owned())))
}

/// `ln=…,r=…,p=…$salt$digest`, salt and digest in base64 without padding
/// (passlib's, which also reads its `.` for `+`).
fn parse_scrypt(rest: &str) -> Result<Check, RefusedHash> {
    let format = Format::Scrypt;
    let [params, salt, digest] =
        fields::<3>(rest).ok_or(malformed(format, "not ln=…,r=…,p=…$salt$digest"))?;
    let mut ln = None;
    let mut r = None;
    let mut p = None;
    for pair in params.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or(malformed(format, "a parameter is not key=value"))?;
        let value = decimal(value).ok_or(malformed(format, "a parameter is not a number"))?;
        let slot = match key {
            "ln" => &mut ln,
            "r" => &mut r,
            "p" => &mut p,
            _ => return Err(malformed(format, "a parameter other than ln, r, p")),
        };
        if slot.replace(value).is_some() {
            return Err(malformed(format, "a parameter given twice"));
        }
    }
    let (Some(ln), Some(r), Some(p)) = (ln, r, p) else {
        return Err(malformed(format, "ln, r or p missing"));
    };
    if ln == 0 || ln >= 64 || r == 0 || p == 0 {
        return Err(malformed(
            format,
            "ln, r and p must be positive (ln below 64)",
        ));
    }
    let n = 1u64 << ln;
    let memory = 128u64.saturating_mul(n).saturating_mul(r);
    if memory > limits::SCRYPT_MEMORY_BYTES {
        return Err(too_costly(
            format,
            "the memory (128·N·r bytes)",
            memory,
            limits::SCRYPT_MEMORY_BYTES,
        ));
    }
    let work = n.saturating_mul(r).saturating_mul(p);
    if work > limits::SCRYPT_WORK {
        return Err(too_costly(
            format,
            "the work (N·r·p)",
            work,
            limits::SCRYPT_WORK,
        ));
    }
    let (Ok(log_n), Ok(r), Ok(p)) = (u8::try_from(ln), u32::try_from(r), u32::try_from(p)) else {
        return Err(malformed(format, "ln, r or p out of range"));
    };
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|_| malformed(format, "parameters scrypt refuses"))?;
    let salt = passlib_base64(salt).ok_or(malformed(format, "the salt is not base64"))?;
    let digest = passlib_base64(digest).ok_or(malformed(format, "the digest is not base64"))?;
    if !(16..=64).contains(&digest.len()) {
        return Err(malformed(format, "the digest is not 16 to 64 bytes"));
    }
    Ok(Check::Scrypt {
        params,
        salt,
        digest,
    })
}

/// `iterations$salt$digest`, salt and digest in passlib's "adapted base64"
/// (`.` for `+`, no padding).
fn parse_passlib_pbkdf2(prf: Prf, rest: &str) -> Result<Check, RefusedHash> {
    let format = Format::PasslibPbkdf2;
    let [iterations, salt, digest] =
        fields::<3>(rest).ok_or(malformed(format, "not iterations$salt$digest"))?;
    let iterations =
        decimal(iterations).ok_or(malformed(format, "the iteration count is not a number"))?;
    let iterations = iterations_of(format, iterations)?;
    let salt = passlib_base64(salt).ok_or(malformed(format, "the salt is not passlib's base64"))?;
    let digest =
        passlib_base64(digest).ok_or(malformed(format, "the digest is not passlib's base64"))?;
    if digest.len() != prf.len() {
        return Err(malformed(
            format,
            "the digest is not the length of its hash function",
        ));
    }
    Ok(Check::Pbkdf2 {
        prf,
        iterations,
        salt,
        digest,
    })
}

/// `iterations$salt$digest`: the salt is used as it is written, the digest
/// is standard base64.
fn parse_django(prf: Prf, rest: &str) -> Result<Check, RefusedHash> {
    let format = Format::DjangoPbkdf2;
    let [iterations, salt, digest] =
        fields::<3>(rest).ok_or(malformed(format, "not algorithm$iterations$salt$digest"))?;
    let iterations =
        decimal(iterations).ok_or(malformed(format, "the iteration count is not a number"))?;
    let iterations = iterations_of(format, iterations)?;
    if salt.is_empty() {
        return Err(malformed(format, "the salt is empty"));
    }
    let digest = standard_base64(digest).ok_or(malformed(format, "the digest is not base64"))?;
    if digest.len() != prf.len() {
        return Err(malformed(
            format,
            "the digest is not the length of its hash function",
        ));
    }
    Ok(Check::Pbkdf2 {
        prf,
        iterations,
        salt: salt.as_bytes().to_vec(),
        digest,
    })
}

fn iterations_of(format: Format, n: u64) -> Result<u32, RefusedHash> {
    if n == 0 {
        return Err(malformed(format, "the iteration count is zero"));
    }
    let limit = u64::from(limits::PBKDF2_ITERATIONS);
    if n > limit {
        return Err(too_costly(format, "the iteration count", n, limit));
    }
    u32::try_from(n).map_err(|_| too_costly(format, "the iteration count", n, limit))
}

/// `$5$[rounds=N$]salt$digest`; the sha-crypt crate checks it.
fn parse_sha_crypt(s: &str) -> Result<Check, RefusedHash> {
    let format = Format::ShaCrypt;
    let digest_len = if s.starts_with("$5$") { 43 } else { 86 };
    let rest = s.get(3..).unwrap_or("");
    let (rounds, rest) = match rest.strip_prefix("rounds=") {
        Some(r) => {
            let (n, rest) = r
                .split_once('$')
                .ok_or(malformed(format, "nothing after the rounds"))?;
            (
                Some(decimal(n).ok_or(malformed(format, "the rounds are not a number"))?),
                rest,
            )
        }
        None => (None, rest),
    };
    if let Some(n) = rounds {
        // glibc writes what it used, at least 1000.
        if n < 1000 {
            return Err(malformed(
                format,
                "the rounds are below the format's minimum of 1000",
            ));
        }
        let limit = u64::from(limits::SHA_CRYPT_ROUNDS);
        if n > limit {
            return Err(too_costly(format, "the rounds", n, limit));
        }
    }
    let [salt, digest] = fields::<2>(rest).ok_or(malformed(format, "not salt$digest"))?;
    if salt.len() > 16 || !salt.is_ascii() {
        return Err(malformed(format, "the salt is not at most 16 characters"));
    }
    if digest.len() != digest_len || !all_crypt64(digest) {
        return Err(malformed(
            format,
            "the digest is not crypt's base64 of the right length",
        ));
    }
    Ok(Check::ShaCrypt(s.to_owned()))
}

/// `salt$digest` after `$1$`: at most 8 salt characters, 22 of digest.
fn parse_md5_crypt(rest: &str) -> Result<Check, RefusedHash> {
    let format = Format::Md5Crypt;
    let [salt, encoded] = fields::<2>(rest).ok_or(malformed(format, "not $1$salt$digest"))?;
    if salt.len() > 8 || !salt.is_ascii() {
        return Err(malformed(format, "the salt is not at most 8 characters"));
    }
    if encoded.len() != 22 || !all_crypt64(encoded) {
        return Err(malformed(
            format,
            "the digest is not 22 characters of crypt's base64",
        ));
    }
    Ok(Check::Md5Crypt {
        salt: salt.to_owned(),
        encoded: encoded.to_owned(),
    })
}

/// `$P$` or `$H$`, one character of log2 rounds, 8 of salt, 22 of digest.
fn parse_phpass(s: &str) -> Result<Check, RefusedHash> {
    let format = Format::Phpass;
    if s.len() != 34 || !s.is_ascii() {
        return Err(malformed(format, "a phpass string is 34 characters"));
    }
    let log2 = s
        .as_bytes()
        .get(3)
        .and_then(|c| CRYPT64.iter().position(|x| x == c))
        .ok_or(malformed(
            format,
            "the rounds character is not crypt's base64",
        ))?;
    let log2 = u32::try_from(log2).unwrap_or(u32::MAX);
    if !(7..=30).contains(&log2) {
        return Err(malformed(
            format,
            "the rounds are outside phpass's 2^7 to 2^30",
        ));
    }
    if log2 > limits::PHPASS_LOG2 {
        let limit = u64::from(limits::PHPASS_LOG2);
        return Err(too_costly(
            format,
            "the log2 of the rounds",
            u64::from(log2),
            limit,
        ));
    }
    let (salt, encoded) = (s.get(4..12).unwrap_or(""), s.get(12..).unwrap_or(""));
    if !all_crypt64(encoded) {
        return Err(malformed(format, "the digest is not crypt's base64"));
    }
    Ok(Check::Phpass {
        log2,
        salt: salt.to_owned(),
        encoded: encoded.to_owned(),
    })
}

/// base64 of digest | salt.
fn parse_ssha(prf: Prf, rest: &str) -> Result<Check, RefusedHash> {
    let format = Format::LdapSsha;
    let mut bytes = standard_base64(rest).ok_or(malformed(format, "not base64"))?;
    if bytes.len() <= prf.len() {
        return Err(malformed(format, "no salt after the digest"));
    }
    let salt = bytes.split_off(prf.len());
    Ok(Check::Ssha {
        prf,
        salt,
        digest: bytes,
    })
}

/// ASP.NET Identity's PasswordHasher: v2 is 0x00 | salt (16) | key (32),
/// PBKDF2-HMAC-SHA1 with 1000 iterations; v3 is 0x01 | prf | iterations |
/// salt length (big-endian u32s) | salt | key. The same limits as ASP.NET
/// applies when it reads them: salt and key of at least 16 bytes.
fn parse_aspnet(bytes: &[u8]) -> Result<(Format, Check), RefusedHash> {
    match bytes.first() {
        Some(0x00) => {
            let format = Format::AspNetV2;
            if bytes.len() != 1 + 16 + 32 {
                return Err(malformed(
                    format,
                    "not 49 bytes (marker, 16 of salt, 32 of key)",
                ));
            }
            let (salt, digest) = bytes[1..].split_at(16);
            let check = Check::Pbkdf2 {
                prf: Prf::Sha1,
                iterations: 1000,
                salt: salt.to_vec(),
                digest: digest.to_vec(),
            };
            Ok((format, check))
        }
        Some(0x01) => {
            let format = Format::AspNetV3;
            let word = |i: usize| -> Option<u32> {
                let b = bytes.get(1 + 4 * i..5 + 4 * i)?;
                Some(u32::from_be_bytes(b.try_into().ok()?))
            };
            let (Some(prf), Some(iterations), Some(salt_len)) = (word(0), word(1), word(2)) else {
                return Err(malformed(format, "shorter than its 13-byte header"));
            };
            let prf = match prf {
                0 => Prf::Sha1,
                1 => Prf::Sha256,
                2 => Prf::Sha512,
                _ => return Err(malformed(format, "an unknown pseudo-random function")),
            };
            let iterations = iterations_of(format, u64::from(iterations))?;
            let body = &bytes[13..];
            let salt_len = usize::try_from(salt_len).unwrap_or(usize::MAX);
            if salt_len < 16 || salt_len > body.len() {
                return Err(malformed(
                    format,
                    "the salt is shorter than 16 bytes or longer than the hash",
                ));
            }
            let (salt, digest) = body.split_at(salt_len);
            if digest.len() < 16 {
                return Err(malformed(format, "the key is shorter than 16 bytes"));
            }
            let check = Check::Pbkdf2 {
                prf,
                iterations,
                salt: salt.to_vec(),
                digest: digest.to_vec(),
            };
            Ok((format, check))
        }
        _ => Err(RefusedHash::UnknownFormat),
    }
}
