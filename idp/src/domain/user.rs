//! Identifiers and secrets of user accounts.

use std::fmt;

use super::{Invalid, invalid};

/// The stable subject of a user: a UUID, never the email (which can change).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn parse(input: &str) -> Result<Self, Invalid> {
        uuid::Uuid::parse_str(input)
            .map(|u| Self(u.to_string()))
            .map_err(|_| invalid("not a user id"))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed, before hashing. Only bounds are checked here; the
/// configurable policy (classes, breached lists, strength) is the account
/// capability's job. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainPassword(String);

/// argon2 input beyond this length only costs time; refuse it up front.
pub const MAX_PASSWORD_CHARS: usize = 256;

impl PlainPassword {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.is_empty() {
            return Err(invalid("Enter a password."));
        }
        if input.chars().count() > MAX_PASSWORD_CHARS {
            return Err(invalid(format!(
                "Passwords can be at most {MAX_PASSWORD_CHARS} characters long."
            )));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainPassword([redacted])")
    }
}
