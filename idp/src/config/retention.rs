//! `[retention]`: how long rows are kept once they have served, and how the
//! job that deletes them paces itself.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Each node tries a pass this often (app clock); one node prunes at a time.
    pub interval_minutes: u64,
    /// Rows deleted per statement.
    pub batch_size: u32,
    /// Pause between two batches, so other writers get their turn.
    pub batch_pause_ms: u64,
    /// Delivered mail is kept this long after it was sent.
    pub sent_mail_days: u64,
    /// Mail that failed for good is kept this long after its last attempt.
    pub failed_mail_days: u64,
    /// Audit events are kept this long; 0 keeps them forever.
    pub audit_days: u64,
    /// Refresh tokens are kept this long after their family ended (every
    /// token of it expired or revoked); a family still live keeps all its
    /// tokens, which reuse detection needs.
    pub refresh_token_days: u64,
    /// Password-reset and email-verification links are kept this long after
    /// they were used or expired.
    pub link_days: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            interval_minutes: 60,
            batch_size: 1000,
            batch_pause_ms: 100,
            sent_mail_days: 30,
            failed_mail_days: 90,
            audit_days: 400,
            refresh_token_days: 7,
            link_days: 7,
        }
    }
}

impl RetentionConfig {
    /// The first value out of range, as `retention.key: must be ...`.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, u64, u64, u64); 8] = [
            ("interval_minutes", self.interval_minutes, 1, 7 * 24 * 60),
            ("batch_size", u64::from(self.batch_size), 1, 100_000),
            ("batch_pause_ms", self.batch_pause_ms, 0, 60_000),
            ("sent_mail_days", self.sent_mail_days, 1, 3650),
            ("failed_mail_days", self.failed_mail_days, 1, 3650),
            ("audit_days", self.audit_days, 0, 36_500),
            ("refresh_token_days", self.refresh_token_days, 1, 3650),
            ("link_days", self.link_days, 1, 3650),
        ];
        for (key, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                let forever = if key == "audit_days" {
                    " (0 keeps them forever)"
                } else {
                    ""
                };
                return Err(format!(
                    "retention.{key}: must be between {min} and {max}{forever}"
                ));
            }
        }
        Ok(())
    }
}
