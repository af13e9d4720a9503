//! `[captcha]`: how hard the proof-of-work challenge is and how long it
//! lasts (the challenge itself is `credentials::captcha`).

use serde::{Deserialize, Serialize};

/// Section `[captcha]` of the main config.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptchaConfig {
    /// Leading zero bits asked of the hash, 1 to 28. Each bit doubles the
    /// client's work: 16 is well under a second in a browser.
    pub difficulty: u8,
    /// How long an issued challenge can be answered.
    pub ttl_secs: u64,
}

impl Default for CaptchaConfig {
    fn default() -> Self {
        Self {
            difficulty: 16,
            ttl_secs: 600,
        }
    }
}

impl CaptchaConfig {
    /// Fails with the name of the first bad key.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=28).contains(&self.difficulty) {
            return Err("captcha.difficulty: must be between 1 and 28".to_owned());
        }
        if self.ttl_secs == 0 {
            return Err("captcha.ttl_secs: must be at least 1".to_owned());
        }
        Ok(())
    }
}
