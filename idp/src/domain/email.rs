//! Email addresses as people type them: trimmed, NFKC-normalised, the domain
//! lowercased; compared case-insensitively through [`Email::key`].

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use super::{Invalid, invalid};

const MAX_LEN: usize = 254;

#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let normalised: String = input.trim().nfkc().collect();
        if normalised.is_empty() {
            return Err(invalid("Enter an email address."));
        }
        if normalised.chars().count() > MAX_LEN {
            return Err(invalid("That email address is too long."));
        }
        let Some((local, domain)) = normalised.rsplit_once('@') else {
            return Err(invalid("Enter an email address like name@example.com."));
        };
        let bad_char = |c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ',' | ';' | '\\')
        };
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || local.chars().any(bad_char)
            || domain.is_empty()
            || domain.chars().any(bad_char)
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(invalid("Enter an email address like name@example.com."));
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    /// Rebuilds an address read back from the store (already normalised).
    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive identity of the address: what uniqueness and
    /// lookups use.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// The mailbox that receives it, as far as limits are concerned: the
    /// key without a `+tag` in the local part (`jane+1@x` and `jane+2@x`
    /// reach the same inbox at most providers), so a flood cannot spread
    /// itself over tags. Not an identity: accounts stay distinct by `key`.
    pub fn mailbox_key(&self) -> String {
        let key = self.key();
        match key.rsplit_once('@') {
            Some((local, domain)) => {
                let base = local.split_once('+').map_or(local, |(b, _)| b);
                if base.is_empty() {
                    key.clone()
                } else {
                    format!("{base}@{domain}")
                }
            }
            None => key.clone(),
        }
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_share_their_mailbox_for_limits() {
        let key = |s: &str| Email::parse(s).unwrap().mailbox_key();
        assert_eq!(key("Jane+1@Example.com"), "jane@example.com");
        assert_eq!(key("jane+a+b@example.com"), "jane@example.com");
        assert_eq!(key("jane@example.com"), "jane@example.com");
        assert_eq!(key("+x@example.com"), "+x@example.com");
        assert_ne!(
            Email::parse("jane+1@example.com").unwrap().key(),
            Email::parse("jane+2@example.com").unwrap().key(),
            "accounts stay distinct"
        );
    }

    #[test]
    fn normalises_what_people_type() {
        let e = Email::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Jane.Doe@example.com");
        assert_eq!(e.key(), "jane.doe@example.com");
        // Fullwidth characters fold to ASCII under NFKC.
        let wide = Email::parse("ｊａｎｅ@example.com").unwrap();
        assert_eq!(wide.as_str(), "jane@example.com");
    }

    #[test]
    fn compares_case_insensitively_by_key() {
        let a = Email::parse("JANE@example.com").unwrap();
        let b = Email::parse("jane@EXAMPLE.com").unwrap();
        assert_eq!(a.key(), b.key());
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "a b@example.com",
            "jane@example..com",
            "<jane@example.com>",
            "jane@exa mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(300));
        assert!(Email::parse(&long).is_err());
    }
}
