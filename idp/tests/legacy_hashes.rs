//! Imported password hashes (credentials/legacy.rs, issue 15) against
//! hashes made by other implementations: every fixture verifies with its
//! password and no other, each malformed or too costly form is refused with
//! its reason, and nothing panics on garbage.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use idp::credentials::legacy::{Format, LegacyHash, RefusedHash};

/// Written by tests/fixtures/legacy-hashes/generate.py (passlib, bcrypt,
/// argon2-cffi and Python's standard library).
const FIXTURES: &str = include_str!("../../tests/fixtures/legacy-hashes/hashes.jsonl");

struct Fixture {
    format: String,
    password: String,
    hash: String,
}

fn fixtures() -> Vec<Fixture> {
    FIXTURES
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let field = |k: &str| v[k].as_str().unwrap().to_owned();
            Fixture {
                format: field("format"),
                password: field("password"),
                hash: field("hash"),
            }
        })
        .collect()
}

fn expected_format(fixture: &str) -> Format {
    match fixture {
        f if f.starts_with("bcrypt-") => Format::Bcrypt,
        "wordpress" => Format::WordPress,
        "argon2id" => Format::Argon2id,
        "argon2i" => Format::Argon2i,
        "scrypt" => Format::Scrypt,
        f if f.starts_with("pbkdf2-") => Format::PasslibPbkdf2,
        f if f.starts_with("django-") => Format::DjangoPbkdf2,
        f if f.starts_with("sha256-crypt") || f.starts_with("sha512-crypt") => Format::ShaCrypt,
        "md5-crypt" => Format::Md5Crypt,
        f if f.starts_with("phpass-") => Format::Phpass,
        f if f.starts_with("ssha") => Format::LdapSsha,
        "aspnet-v2" => Format::AspNetV2,
        f if f.starts_with("aspnet-v3-") => Format::AspNetV3,
        other => panic!("a fixture format the test does not know: {other}"),
    }
}

#[test]
fn every_fixture_verifies_with_its_password_only() {
    let all = fixtures();
    let kinds: std::collections::BTreeSet<&str> = all.iter().map(|f| f.format.as_str()).collect();
    assert_eq!(kinds.len(), 26, "{kinds:?}");
    for f in &all {
        let parsed =
            LegacyHash::parse(&f.hash).unwrap_or_else(|e| panic!("{} ({}): {e}", f.format, f.hash));
        assert_eq!(parsed.format(), expected_format(&f.format), "{}", f.hash);
        // The fixtures' argon2 parameters; at any others, none is current.
        let theirs = argon2::Params::new(64, 1, 1, None).unwrap();
        assert_eq!(parsed.is_current(&theirs), f.format == "argon2id");
        assert!(!parsed.is_current(&argon2::Params::default()));
        assert!(
            parsed.verify(&f.password),
            "{}: {:?} {}",
            f.format,
            f.password,
            f.hash
        );
        for wrong in [
            format!("{}x", f.password),
            f.password.to_uppercase(),
            String::new(),
        ] {
            if wrong != f.password {
                assert!(!parsed.verify(&wrong), "{}: {wrong:?} {}", f.format, f.hash);
            }
        }
        let shown = format!("{parsed:?}");
        assert!(!shown.contains(&f.hash[f.hash.len() - 8..]), "{shown}");
    }
}

#[test]
fn older_wordpress_hashes_accept_the_password_with_the_spaces_its_sign_in_trimmed() {
    for f in fixtures()
        .into_iter()
        .filter(|f| f.format.starts_with("phpass"))
    {
        let parsed = LegacyHash::parse(&f.hash).unwrap();
        assert_eq!(
            f.password,
            f.password.trim(),
            "a fixture without spaces around"
        );
        assert!(parsed.verify(&format!(" {}\n", f.password)), "{}", f.hash);
        assert!(!parsed.verify(&format!(" {}x", f.password)), "{}", f.hash);
    }
}

#[test]
fn wordpress_trims_the_typed_password_as_its_sign_in_does() {
    let f = fixtures()
        .into_iter()
        .find(|f| f.format == "wordpress" && f.password.ends_with(' '))
        .unwrap();
    let parsed = LegacyHash::parse(&f.hash).unwrap();
    assert!(parsed.verify(&f.password));
    assert!(parsed.verify(f.password.trim_end()));
    assert!(parsed.verify(&format!("\t{}\n", f.password.trim_end())));
    // More than bcrypt's 72 bytes count, thanks to the pre-hash.
    assert!(!parsed.verify(&format!("{}!", f.password.trim_end())));
}

fn refused(hash: &str) -> RefusedHash {
    match LegacyHash::parse(hash) {
        Ok(h) => panic!("accepted {hash}: {h:?}"),
        Err(e) => {
            if hash.len() > 12 {
                assert!(!e.to_string().contains(hash), "{e}");
            }
            e
        }
    }
}

fn assert_malformed(hash: &str, format: Format, reason_part: &str) {
    match refused(hash) {
        RefusedHash::Malformed { format: f, reason } => {
            assert_eq!(f, format, "{hash}");
            assert!(reason.contains(reason_part), "{hash}: {reason}");
        }
        other => panic!("{hash}: {other:?}"),
    }
}

fn assert_too_costly(hash: &str, format: Format, value: u64) {
    match refused(hash) {
        RefusedHash::TooCostly {
            format: f,
            value: v,
            limit,
            ..
        } => {
            assert_eq!((f, v), (format, value), "{hash}");
            assert!(v > limit);
        }
        other => panic!("{hash}: {other:?}"),
    }
}

const BCRYPT: &str = "$2b$04$8bGLr8F.E8kb.D4n2.ZZDeLCS4PWY25KL8QuS0PpA8QMlntbyBlcW";

#[test]
fn unknown_forms_are_refused_as_such() {
    assert_eq!(refused(""), RefusedHash::Empty);
    assert_eq!(refused(&"a".repeat(2000)), RefusedHash::TooLong);
    for unknown in [
        "password",
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "$2x$04$8bGLr8F.E8kb.D4n2.ZZDeLCS4PWY25KL8QuS0PpA8QMlntbyBlcW",
        "$argon2d$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "$apr1$abc$def",
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "sha1$salt$hash",
        "$7$C6..../....SodiumChloride$kBGj9fHznVYFQMEn/qDCfrDevf9YDtcDdKvEqHJLV8D",
        // base64, but neither ASP.NET marker
        "AgAAAAEAACcQAAAAEA==",
    ] {
        assert_eq!(refused(unknown), RefusedHash::UnknownFormat, "{unknown}");
    }
}

#[test]
fn malformed_fields_are_refused_with_their_reason() {
    use Format::*;
    assert_malformed(&BCRYPT[..59], Bcrypt, "60 characters");
    assert_malformed(&BCRYPT.replace("$04$", "$4a$"), Bcrypt, "two digits");
    assert_malformed(&BCRYPT.replace("$04$", "$03$"), Bcrypt, "minimum");
    assert_malformed(&BCRYPT.replace("$04$8", "$04$!"), Bcrypt, "base64");
    assert_malformed(&format!("$wp{}", &BCRYPT[..50]), WordPress, "60 characters");
    assert_malformed("$wp$1$abc$def", WordPress, "bcrypt string");
    assert_malformed(
        "$argon2id$v=19$m=x,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        Argon2id,
        "parameters",
    );
    assert_malformed("$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ", Argon2i, "digest");
    assert_malformed(
        "$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        Argon2id,
        "version",
    );
    assert_malformed(
        "$scrypt$ln=4,r=8$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        Scrypt,
        "missing",
    );
    assert_malformed(
        "$scrypt$ln=4,r=8,p=1,x=2$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        Scrypt,
        "other than",
    );
    assert_malformed("$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA", Scrypt, "16 to 64");
    assert_malformed("$scrypt$ln=4,r=8,p=1$c2FsdA", Scrypt, "ln=");
    assert_malformed("$pbkdf2-sha256$1000$c2FsdA$aGFzaA", PasslibPbkdf2, "length");
    assert_malformed(
        "$pbkdf2-sha256$-5$c2FsdA$aGFzaA",
        PasslibPbkdf2,
        "not a number",
    );
    assert_malformed("$pbkdf2-sha256$0$c2FsdA$aGFzaA", PasslibPbkdf2, "zero");
    assert_malformed("$pbkdf2-sha512$1000$c2F!dA$aGFzaA", PasslibPbkdf2, "salt");
    assert_malformed(
        "pbkdf2_sha256$1000$$aGFzaA==",
        DjangoPbkdf2,
        "salt is empty",
    );
    assert_malformed(
        "pbkdf2_sha256$1000$salt",
        DjangoPbkdf2,
        "iterations$salt$digest",
    );
    assert_malformed("pbkdf2_sha256$1000$salt$%%%", DjangoPbkdf2, "base64");
    assert_malformed("$5$rounds=999$salt$digest", ShaCrypt, "minimum of 1000");
    assert_malformed("$5$rounds=x$salt$digest", ShaCrypt, "not a number");
    assert_malformed("$6$saltsaltsaltsaltsalt$digest", ShaCrypt, "16 characters");
    assert_malformed("$5$salt$tooshort", ShaCrypt, "right length");
    assert_malformed(
        "$1$saltsaltsalt$Kn6IzN9SODTJrAcS1dq11",
        Md5Crypt,
        "8 characters",
    );
    assert_malformed("$1$salt$Kn6IzN9SODTJrAcS1dq11", Md5Crypt, "22 characters");
    assert_malformed("$1$salt", Md5Crypt, "$1$salt$digest");
    assert_malformed("$P$BEhD13yljDbvUnz8x1vY.rQvi3dbOS", Phpass, "34 characters");
    assert_malformed("$P$4EhD13yljDbvUnz8x1vY.rQvi3dbOS/", Phpass, "2^7 to 2^30");
    assert_malformed("$P$BEhD13yljDbvUnz8x1vY.rQvi3db!S/", Phpass, "base64");
    assert_malformed("{SSHA}z6SnVyErNq+w+Ne3OAutdCc0vK4=", LdapSsha, "no salt");
    assert_malformed("{SSHA512}***", LdapSsha, "not base64");
    assert_malformed("AAAA", AspNetV2, "49 bytes");
    assert_malformed("AQAAAAE=", AspNetV3, "header");
    assert_malformed(
        "AQAAAAUAACcQAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        AspNetV3,
        "pseudo-random",
    );
    // salt length 8
    assert_malformed(
        "AQAAAAEAACcQAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        AspNetV3,
        "salt",
    );
    // salt 16, key 8
    assert_malformed(
        "AQAAAAEAACcQAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        AspNetV3,
        "key",
    );
}

#[test]
fn absurd_costs_are_refused_before_any_hashing() {
    use Format::*;
    assert_too_costly(&BCRYPT.replace("$04$", "$18$"), Bcrypt, 18);
    assert_too_costly(&BCRYPT.replace("$04$", "$31$"), Bcrypt, 31);
    assert_too_costly(
        &format!("$wp{}", BCRYPT.replace("$2b$04$", "$2y$20$")),
        WordPress,
        20,
    );
    assert_too_costly(
        "$pbkdf2-sha256$10000001$c2FsdA$aGFzaA",
        PasslibPbkdf2,
        10_000_001,
    );
    assert_too_costly(
        "pbkdf2_sha256$99999999999$salt$aGFzaA==",
        DjangoPbkdf2,
        99_999_999_999,
    );
    // v3, SHA-256, 2^31 iterations
    assert_too_costly(
        "AQAAAAGAAAAAAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==",
        AspNetV3,
        1 << 31,
    );
    assert_too_costly(
        "$scrypt$ln=22,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        Scrypt,
        128 << 25,
    );
    assert_too_costly(
        "$scrypt$ln=16,r=8,p=64$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        Scrypt,
        1 << 25,
    );
    assert_too_costly(
        "$scrypt$ln=63,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
        Scrypt,
        u64::MAX,
    );
    assert_too_costly(
        "$argon2id$v=19$m=1048576,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        Argon2id,
        1 << 20,
    );
    assert_too_costly(
        "$argon2id$v=19$m=65536,t=100,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        Argon2id,
        6_553_600,
    );
    assert_too_costly(
        "$argon2i$v=19$m=65536,t=1,p=64$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        Argon2i,
        64,
    );
    let digest = "a".repeat(43);
    assert_too_costly(
        &format!("$5$rounds=999999999$salt${digest}"),
        ShaCrypt,
        999_999_999,
    );
    // 'N' is 2^25.
    assert_too_costly("$P$NEhD13yljDbvUnz8x1vY.rQvi3dbOS/", Phpass, 25);
}

#[test]
fn garbage_never_panics() {
    // Every truncation and many one-character mutations of the fixtures are
    // parsed; one in 32 of those accepted is also checked (checking is what
    // costs, and a parameter that parses is checked the same way each time).
    let mut accepted = 0usize;
    let mut try_one = |candidate: &str, password: &str| {
        if let Ok(h) = LegacyHash::parse(candidate) {
            accepted += 1;
            if accepted.is_multiple_of(32) {
                h.verify(password);
            }
        }
    };
    for f in fixtures() {
        let hash = f.hash.as_str();
        for end in 0..hash.len() {
            if let Some(prefix) = hash.get(..end) {
                try_one(prefix, &f.password);
            }
        }
        let chars: Vec<char> = hash.chars().collect();
        for i in 0..chars.len() {
            for c in ['$', '0', 'z', '.', '=', ',', 'é', '\0'] {
                let mut mutated = chars.clone();
                mutated[i] = c;
                let mutated: String = mutated.into_iter().collect();
                try_one(&mutated, "not the password");
            }
        }
    }
    assert!(accepted > 1000, "{accepted}");
}
