//! The password policy: what a new password must satisfy on registration,
//! reset and change.
//!
//! Why it looks like this:
//! - Every rule is a config switch (`[password_policy]`), because deployments
//!   publish their own rules (seed 002: at least 8 characters, one uppercase
//!   letter, one digit, one special character, nothing easily guessed, not
//!   your own name) and the form must show exactly those rules up front
//!   ([`PasswordPolicy::describe`]) and report every one that failed
//!   ([`PasswordPolicy::check`]), not just the first.
//! - Composition rules alone let `Password123!` through, so the defaults lean on
//!   what actually resists guessing (NIST SP 800-63B §5.1.1.2): a list of known
//!   common passwords, the user's own name and email, and the zxcvbn strength
//!   estimate. All of it is offline: nothing about a password leaves the server.
//! - The common-password list ships with the binary (`data/common-passwords.txt`,
//!   the top 10,000 of zxcvbn's list) and is loaded into a set at the first
//!   password checked (about 280 KB that a node serving only sign-ins and
//!   tokens never needs; zxcvbn's own dictionaries load lazily too).

use std::collections::HashSet;
use std::sync::LazyLock;

/// The policy's settings and its hard length bound live with the rest of the
/// configuration; kept here under their old names too.
use crate::config::{PASSWORD_MAX_LENGTH as MAX_LENGTH, PasswordPolicyConfig};

/// Name parts and email local parts shorter than this are not held against a
/// password: a two-letter name such as "Jo" would refuse a great many of them.
const MIN_PERSONAL_LEN: usize = 3;

const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

/// The common-password set, built at its first use and shared by every policy.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON_PASSWORDS
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// The policy in force: its config (the common-password set is [`COMMON`]).
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    config: PasswordPolicyConfig,
}

impl PasswordPolicy {
    pub fn new(config: PasswordPolicyConfig) -> Self {
        Self { config }
    }

    /// Another policy sharing this one's common-password set (a portal's own
    /// policy costs no second copy of the list).
    pub fn with_config(&self, config: PasswordPolicyConfig) -> Self {
        Self { config }
    }

    pub fn config(&self) -> &PasswordPolicyConfig {
        &self.config
    }

    /// The rules as sentences to show up front on forms, in the order
    /// [`check`](Self::check) reports them.
    pub fn describe(&self) -> Vec<String> {
        let c = &self.config;
        let mut rules = vec![format!("At least {}", characters(c.min_length))];
        if c.require_uppercase {
            rules.push("At least one uppercase letter".to_owned());
        }
        if c.require_lowercase {
            rules.push("At least one lowercase letter".to_owned());
        }
        if c.require_digit {
            rules.push("At least one digit".to_owned());
        }
        if c.require_symbol {
            rules.push("At least one symbol, such as # $ % &".to_owned());
        }
        if c.reject_common {
            rules.push("Not a commonly used password".to_owned());
        }
        if c.reject_personal {
            rules.push("Does not contain your name or email address".to_owned());
        }
        if c.min_strength > 0 {
            rules.push(
                "Hard to guess: a few uncommon words work better than common words, \
                 dates or keyboard patterns"
                    .to_owned(),
            );
        }
        rules
    }

    /// Every failed rule, one message each, in the order of
    /// [`describe`](Self::describe); empty means accepted. `personal` holds the
    /// user's name and email address (either may be empty).
    pub fn check(&self, password: &str, personal: &[&str]) -> Vec<String> {
        let c = &self.config;
        let length = password.chars().count();
        if length > MAX_LENGTH {
            return vec![format!(
                "The password must be at most {MAX_LENGTH} characters long."
            )];
        }

        let mut failures = Vec::new();
        if length < c.min_length {
            failures.push(format!(
                "The password must be at least {} long.",
                characters(c.min_length)
            ));
        }
        if c.require_uppercase && !password.chars().any(char::is_uppercase) {
            failures.push("The password must contain at least one uppercase letter.".to_owned());
        }
        if c.require_lowercase && !password.chars().any(char::is_lowercase) {
            failures.push("The password must contain at least one lowercase letter.".to_owned());
        }
        if c.require_digit && !password.chars().any(char::is_numeric) {
            failures.push("The password must contain at least one digit.".to_owned());
        }
        if c.require_symbol && !password.chars().any(is_symbol) {
            failures
                .push("The password must contain at least one symbol, such as # $ % &.".to_owned());
        }

        let lowered = password.to_lowercase();
        if c.reject_common && self.is_common(&lowered) {
            failures.push(
                "This password is too common: it is on lists of frequently used passwords."
                    .to_owned(),
            );
        }
        let fragments = personal_fragments(personal);
        if c.reject_personal && fragments.iter().any(|f| lowered.contains(f.as_str())) {
            failures.push("The password must not contain your name or email address.".to_owned());
        }
        if c.min_strength > 0
            && let Some(message) = self.strength_failure(password, personal, &fragments)
        {
            failures.push(message);
        }
        failures
    }

    /// `lowered` is on the list, or is once trailing digits and symbols are
    /// removed (`Password123!` is `password` with the usual decoration).
    fn is_common(&self, lowered: &str) -> bool {
        let stem = lowered.trim_end_matches(|ch: char| ch.is_numeric() || is_symbol(ch));
        COMMON.contains(lowered) || (!stem.is_empty() && COMMON.contains(stem))
    }

    /// One line, whatever zxcvbn thinks: its warnings and suggestions are
    /// long English paragraphs that fill a phone screen, and the rules above
    /// the field already say what works.
    fn strength_failure(
        &self,
        password: &str,
        personal: &[&str],
        fragments: &[String],
    ) -> Option<String> {
        // zxcvbn matches user inputs as whole dictionary words: give it the name
        // parts and local part too, so "smith" counts as known even when the
        // full name is "Ann Smith".
        let inputs: Vec<&str> = personal
            .iter()
            .copied()
            .chain(fragments.iter().map(String::as_str))
            .collect();
        let estimate = zxcvbn::zxcvbn(password, &inputs);
        if u8::from(estimate.score()) >= self.config.min_strength {
            return None;
        }
        Some(STRENGTH_FAILURE.to_owned())
    }
}

const STRENGTH_FAILURE: &str = "This password is too easy to guess: add more words or characters.";

fn characters(n: usize) -> String {
    match n {
        1 => "1 character".to_owned(),
        n => format!("{n} characters"),
    }
}

/// Neither alphanumeric nor whitespace: punctuation, currency, emoji, ...
fn is_symbol(ch: char) -> bool {
    !ch.is_alphanumeric() && !ch.is_whitespace()
}

/// The lowercased pieces of the user's identity that a password must not
/// contain: for an email (anything with `@`) its local part and the words in
/// it, for a name the full name and each of its words; pieces shorter than
/// [`MIN_PERSONAL_LEN`] characters are dropped.
fn personal_fragments(personal: &[&str]) -> Vec<String> {
    let mut fragments: Vec<String> = Vec::new();
    let mut add = |piece: &str| {
        let piece = piece.trim().to_lowercase();
        if piece.chars().count() >= MIN_PERSONAL_LEN && !fragments.contains(&piece) {
            fragments.push(piece);
        }
    };
    for item in personal {
        let whole = match item.rsplit_once('@') {
            Some((local, _domain)) => local,
            None => item,
        };
        add(whole);
        for word in whole.split(|ch: char| !ch.is_alphanumeric()) {
            add(word);
        }
    }
    fragments
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every rule off: each test turns on the one it exercises.
    fn nothing() -> PasswordPolicyConfig {
        PasswordPolicyConfig {
            min_length: 1,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
            reject_common: false,
            reject_personal: false,
            min_strength: 0,
        }
    }

    /// Seed 002: at least 8 characters, 1 uppercase letter, 1 number, 1 special
    /// character, no easily guessed password, not your own name.
    fn seed_002() -> PasswordPolicyConfig {
        PasswordPolicyConfig {
            min_length: 8,
            require_uppercase: true,
            require_digit: true,
            require_symbol: true,
            ..PasswordPolicyConfig::default()
        }
    }

    fn only(password: &str, config: PasswordPolicyConfig) -> Vec<String> {
        PasswordPolicy::new(config).check(password, &["Ann Smith", "ann.smith@example.com"])
    }

    #[test]
    fn list_is_loaded_without_its_comment() {
        assert_eq!(COMMON.len(), 10_000);
        assert!(COMMON.contains("password"));
        assert!(!COMMON.iter().any(|p| p.starts_with('#')));
    }

    #[test]
    fn everything_off_accepts_anything_non_empty() {
        assert!(only("x", nothing()).is_empty());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let config = PasswordPolicyConfig {
            min_length: 8,
            ..nothing()
        };
        assert_eq!(
            only("ééééééé", config.clone()),
            ["The password must be at least 8 characters long."]
        );
        assert!(only("éééééééé", config).is_empty());
    }

    #[test]
    fn too_long_is_refused_whatever_the_config() {
        let long = "a".repeat(MAX_LENGTH + 1);
        assert_eq!(
            only(&long, nothing()),
            ["The password must be at most 256 characters long."]
        );
        assert!(only(&"a".repeat(MAX_LENGTH), nothing()).is_empty());
    }

    #[test]
    fn each_class_rule_fails_alone() {
        let cases = [
            (
                PasswordPolicyConfig {
                    require_uppercase: true,
                    ..nothing()
                },
                "lower 1 #",
                "The password must contain at least one uppercase letter.",
            ),
            (
                PasswordPolicyConfig {
                    require_lowercase: true,
                    ..nothing()
                },
                "UPPER 1 #",
                "The password must contain at least one lowercase letter.",
            ),
            (
                PasswordPolicyConfig {
                    require_digit: true,
                    ..nothing()
                },
                "Letters #",
                "The password must contain at least one digit.",
            ),
            (
                PasswordPolicyConfig {
                    require_symbol: true,
                    ..nothing()
                },
                "Letters and 1 space",
                "The password must contain at least one symbol, such as # $ % &.",
            ),
        ];
        for (config, password, message) in cases {
            assert_eq!(only(password, config.clone()), [message], "{password}");
            // The same rule passes once the class is present.
            assert!(only("Aa1#", config).is_empty());
        }
    }

    #[test]
    fn common_passwords_are_refused_with_decoration_and_any_case() {
        let config = PasswordPolicyConfig {
            reject_common: true,
            ..nothing()
        };
        let message = ["This password is too common: it is on lists of frequently used passwords."];
        for password in [
            "password123",
            "Password123!",
            "DRAGON",
            "letmein!!",
            "qwerty",
        ] {
            assert_eq!(only(password, config.clone()), message, "{password}");
        }
        assert!(only("violet-anchor-tundra", config.clone()).is_empty());
        // Only trailing decoration is stripped, and an all-digit stem is not "empty = common".
        assert!(only("!!!", config).is_empty());
    }

    #[test]
    fn personal_information_is_refused() {
        let config = PasswordPolicyConfig {
            reject_personal: true,
            ..nothing()
        };
        let message = ["The password must not contain your name or email address."];
        for password in [
            "ann smith forever",
            "SMITH-is-great",
            "xxAnnxx",
            "my ann.smith mail",
        ] {
            assert_eq!(only(password, config.clone()), message, "{password}");
        }
        // The local part alone, when the name says something else.
        let policy = PasswordPolicy::new(config.clone());
        assert_eq!(
            policy.check("zz-kwozniak-zz", &["Kasia", "kwozniak@example.com"]),
            message
        );
        // Name parts under three letters are not held against the password.
        assert!(
            policy
                .check("joy of lo-fi", &["Jo Li", "jl@example.com"])
                .is_empty()
        );
        assert!(only("unrelated words here", config).is_empty());
    }

    #[test]
    fn weak_password_fails_strength_alone_in_one_line() {
        let config = PasswordPolicyConfig {
            min_strength: 3,
            ..nothing()
        };
        // zxcvbn's warnings and suggestions are not appended: one line each.
        assert_eq!(only("abcdefgh", config), [STRENGTH_FAILURE]);
    }

    #[test]
    fn strength_sees_the_users_own_name() {
        let config = PasswordPolicyConfig {
            min_strength: 3,
            ..nothing()
        };
        let policy = PasswordPolicy::new(config);
        let with_name = policy.check("Wojciechowska1", &["Maria Wojciechowska"]);
        assert_eq!(with_name.len(), 1, "{with_name:?}");
    }

    #[test]
    fn no_zxcvbn_advice_contradicts_a_required_class() {
        let config = PasswordPolicyConfig {
            require_symbol: true,
            min_strength: 3,
            ..nothing()
        };
        let failures = only("abcdefgh", config);
        assert_eq!(failures.len(), 2);
        assert!(!failures[1].contains("No need for symbols"), "{failures:?}");
    }

    #[test]
    fn strictest_takes_each_rule_from_the_stricter_side() {
        let merged = PasswordPolicyConfig::default().strictest(&PasswordPolicyConfig {
            min_length: 12,
            min_strength: 0,
            ..seed_002()
        });
        assert_eq!(
            merged,
            PasswordPolicyConfig {
                min_length: 12,
                min_strength: 3,
                ..seed_002()
            }
        );
    }

    #[test]
    fn seed_002_example_is_refused() {
        let policy = PasswordPolicy::new(seed_002());
        let failures = policy.check("password123", &["Ann Smith", "ann@example.com"]);
        assert!(
            failures.contains(&"The password must contain at least one uppercase letter.".into())
        );
        assert!(failures.contains(
            &"This password is too common: it is on lists of frequently used passwords.".into()
        ));
        // Decorating it to pass the class rules does not help.
        let failures = policy.check("Password123!", &["Ann Smith", "ann@example.com"]);
        assert!(!failures.is_empty());
        assert!(
            failures[0].starts_with("This password is too common"),
            "{failures:?}"
        );
    }

    #[test]
    fn seed_002_refuses_own_name() {
        let policy = PasswordPolicy::new(seed_002());
        let failures = policy.check("Smith#2024!", &["Ann Smith", "ann@example.com"]);
        assert!(
            failures.contains(&"The password must not contain your name or email address.".into()),
            "{failures:?}"
        );
    }

    #[test]
    fn strong_passphrase_is_accepted() {
        let personal = ["Ann Smith", "ann.smith@example.com"];
        for config in [PasswordPolicyConfig::default(), seed_002()] {
            let policy = PasswordPolicy::new(config);
            assert_eq!(
                policy.check("Violet-Anchor-Tundra-47", &personal),
                Vec::<String>::new()
            );
        }
    }

    #[test]
    fn describe_lists_exactly_the_enabled_rules() {
        assert_eq!(
            PasswordPolicy::new(nothing()).describe(),
            ["At least 1 character"]
        );
        let default = PasswordPolicy::new(PasswordPolicyConfig::default()).describe();
        assert_eq!(
            default,
            [
                "At least 8 characters",
                "Not a commonly used password",
                "Does not contain your name or email address",
                "Hard to guess: a few uncommon words work better than common words, \
                 dates or keyboard patterns",
            ]
        );
        let seed = PasswordPolicy::new(seed_002()).describe();
        assert_eq!(seed.len(), 7);
        assert_eq!(
            seed[..4],
            [
                "At least 8 characters",
                "At least one uppercase letter",
                "At least one digit",
                "At least one symbol, such as # $ % &",
            ]
        );
        let all = PasswordPolicyConfig {
            require_lowercase: true,
            ..seed_002()
        };
        assert_eq!(PasswordPolicy::new(all).describe().len(), 8);
    }
}
