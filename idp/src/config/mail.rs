//! `[mail]`: how mail leaves (files or SMTP), its retries and DKIM keys.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write each message as an `.eml` file under `mail.dir`.
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on loopback.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// The From header of every message.
    pub from: String,
    /// Folder for the file transport.
    pub dir: PathBuf,
    pub smtp: SmtpConfig,
    /// How often the outbox is checked for due mail when nothing wakes the
    /// worker (mail queued on this node wakes it at once).
    pub poll_interval_ms: u64,
    /// Delivery attempts before a message is marked failed; retries back off
    /// from 30 s, doubling, up to 1 h.
    pub max_attempts: u32,
    /// DKIM keys, one per sending domain: mail whose From is in `domain`
    /// is signed with it (`mail.from`'s domain and each theme's `mail_from`).
    pub dkim: Vec<DkimKeyConfig>,
}

/// `[[mail.dkim]]`: the key `selector._domainkey.<domain>` publishes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    pub domain: String,
    pub selector: String,
    /// `rsa`: a PKCS#1 PEM file (`BEGIN RSA PRIVATE KEY`); `ed25519`: the
    /// base64 of the 32-byte seed.
    pub private_key_file: PathBuf,
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    #[default]
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Identity Provider <no-reply@localhost>".into(),
            dir: PathBuf::from("data/mail"),
            smtp: SmtpConfig::default(),
            poll_interval_ms: 2000,
            max_attempts: 8,
            dkim: Vec::new(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_secs: 10,
        }
    }
}

impl MailConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.from.contains('@') {
            return Err(invalid(
                "mail.from",
                "must be an address such as `Name <user@example.com>`",
            ));
        }
        if self.transport == MailTransport::Smtp && self.smtp.host.trim().is_empty() {
            return Err(invalid(
                "mail.smtp.host",
                "must be set when mail.transport = \"smtp\"",
            ));
        }
        if !(1..=300).contains(&self.smtp.timeout_secs) {
            return Err(invalid(
                "mail.smtp.timeout_secs",
                "must be between 1 and 300",
            ));
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(invalid(
                "mail.poll_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        if !(1..=50).contains(&self.max_attempts) {
            return Err(invalid("mail.max_attempts", "must be between 1 and 50"));
        }
        Ok(())
    }
}
