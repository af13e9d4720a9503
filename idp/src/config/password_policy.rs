//! `[password_policy]`: what a new password must satisfy (the rules
//! themselves are applied by `credentials::policy`).

use serde::{Deserialize, Serialize};

/// Hard upper bound, whatever the config: longer inputs are refused before any
/// other work (argon2 and zxcvbn need not see megabytes of form data).
pub const PASSWORD_MAX_LENGTH: usize = 256;

/// Section `[password_policy]` of the main config.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordPolicyConfig {
    /// Minimum number of characters (not bytes).
    pub min_length: usize,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
    pub require_digit: bool,
    /// A symbol is any character that is neither alphanumeric nor whitespace.
    pub require_symbol: bool,
    /// Refuse passwords on the shipped list of common passwords.
    pub reject_common: bool,
    /// Refuse passwords that contain the user's name or email local part.
    pub reject_personal: bool,
    /// Minimum zxcvbn score, 0 (anything) to 4 (very hard to guess).
    pub min_strength: u8,
}

impl Default for PasswordPolicyConfig {
    fn default() -> Self {
        Self {
            min_length: 8,
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_symbol: false,
            reject_common: true,
            reject_personal: true,
            min_strength: 3,
        }
    }
}

impl PasswordPolicyConfig {
    /// Fails with the name of the first bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=PASSWORD_MAX_LENGTH).contains(&self.min_length) {
            return Err(format!(
                "password_policy.min_length: must be between 1 and {PASSWORD_MAX_LENGTH}"
            ));
        }
        if self.min_strength > 4 {
            return Err("password_policy.min_strength: must be between 0 and 4".to_owned());
        }
        Ok(())
    }

    /// The stricter of two policies, rule by rule: what a password must
    /// satisfy to meet both.
    pub fn strictest(&self, other: &Self) -> Self {
        Self {
            min_length: self.min_length.max(other.min_length),
            require_uppercase: self.require_uppercase || other.require_uppercase,
            require_lowercase: self.require_lowercase || other.require_lowercase,
            require_digit: self.require_digit || other.require_digit,
            require_symbol: self.require_symbol || other.require_symbol,
            reject_common: self.reject_common || other.reject_common,
            reject_personal: self.reject_personal || other.reject_personal,
            min_strength: self.min_strength.max(other.min_strength),
        }
    }
}
