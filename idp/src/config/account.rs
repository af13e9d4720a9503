//! `[account]` and `[mfa]`: what people may do with their accounts, and
//! two-step sign-in.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    /// Whether people may create their own accounts.
    pub registration_enabled: bool,
    /// Email domains our mail cannot reach: registration with them is refused
    /// with an explanation.
    pub blocked_email_domains: Vec<String>,
    /// How long a password-reset link works; a theme may set its own.
    pub reset_link_ttl_minutes: u64,
    pub verification_link_ttl_hours: u64,
    /// How long the link confirming a new email address works.
    pub email_change_link_ttl_minutes: u64,
    /// Reset mails sent per address, and requests accepted per client IP, per hour.
    pub reset_requests_per_email_per_hour: u64,
    pub reset_requests_per_ip_per_hour: u64,
    /// Registration and change-of-address mails sent to one address per
    /// hour (a verification link or "someone tried to use your address").
    pub mails_per_address_per_hour: u64,
    /// Registrations and change-of-address requests accepted per client IP per hour.
    pub mail_requests_per_ip_per_hour: u64,
    /// How old the sign-in of a session may be for it to change how the
    /// account signs in (two-step sign-in on or off, new recovery codes);
    /// older, the person proves it is them again.
    pub reauth_max_age_minutes: u64,
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            registration_enabled: true,
            blocked_email_domains: Vec::new(),
            reset_link_ttl_minutes: 60,
            verification_link_ttl_hours: 48,
            email_change_link_ttl_minutes: 60,
            reset_requests_per_email_per_hour: 5,
            reset_requests_per_ip_per_hour: 30,
            mails_per_address_per_hour: 3,
            mail_requests_per_ip_per_hour: 20,
            reauth_max_age_minutes: 5,
        }
    }
}

/// Two-step sign-in with an authenticator app (see docs/mfa.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Every sign-in needs the second step; users without TOTP enrol first.
    pub required: bool,
    /// The name authenticator apps show; empty means the issuer's host.
    pub issuer: String,
    /// How long a half-done sign-in (password right, code not yet) lasts.
    pub pending_ttl_secs: u64,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            required: false,
            issuer: String::new(),
            pending_ttl_secs: 300,
        }
    }
}

impl AccountConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=7 * 24 * 60).contains(&self.reset_link_ttl_minutes) {
            return Err(invalid(
                "account.reset_link_ttl_minutes",
                "must be between 5 and 10080",
            ));
        }
        if !(1..=24 * 30).contains(&self.verification_link_ttl_hours) {
            return Err(invalid(
                "account.verification_link_ttl_hours",
                "must be between 1 and 720",
            ));
        }
        if !(5..=7 * 24 * 60).contains(&self.email_change_link_ttl_minutes) {
            return Err(invalid(
                "account.email_change_link_ttl_minutes",
                "must be between 5 and 10080",
            ));
        }
        if !(1..=100).contains(&self.mails_per_address_per_hour) {
            return Err(invalid(
                "account.mails_per_address_per_hour",
                "must be between 1 and 100",
            ));
        }
        if !(1..=100_000).contains(&self.mail_requests_per_ip_per_hour) {
            return Err(invalid(
                "account.mail_requests_per_ip_per_hour",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=24 * 60).contains(&self.reauth_max_age_minutes) {
            return Err(invalid(
                "account.reauth_max_age_minutes",
                "must be between 1 and 1440",
            ));
        }
        if self
            .blocked_email_domains
            .iter()
            .any(|d| d.trim().is_empty() || d.contains('@'))
        {
            return Err(invalid(
                "account.blocked_email_domains",
                "entries are domains such as example.com",
            ));
        }
        Ok(())
    }
}

impl MfaConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(30..=3600).contains(&self.pending_ttl_secs) {
            return Err(invalid(
                "mfa.pending_ttl_secs",
                "must be between 30 and 3600",
            ));
        }
        if self.issuer.contains(':') {
            return Err(invalid("mfa.issuer", "must not contain ':'"));
        }
        Ok(())
    }
}
