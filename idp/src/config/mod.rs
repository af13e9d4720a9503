//! Typed configuration: a TOML file, then `IDP__SECTION__KEY` environment
//! variables (and `IDP__SECTION__KEY_FILE` to read a value from a file, for
//! secrets), checked by [`Config::validate`] before anything starts.
//!
//! Without a file the defaults are the embedded mode: SQLite under `data/`,
//! the in-process ephemeral store, mail written to files.

mod account;
mod admin;
mod captcha;
mod database;
mod error;
mod keys;
mod lockout;
mod logging;
mod mail;
mod migration;
mod password_policy;
mod redis;
mod retention;
mod secret;
mod server;
mod session;
#[cfg(test)]
mod tests;
mod themes;

use std::path::Path;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

// Each section in its own file; `self::` because `admin` and `redis` are
// also crates.
pub use self::account::{AccountConfig, MfaConfig};
pub use self::admin::{AdminConfig, ConsoleConfig};
pub use self::captcha::CaptchaConfig;
pub use self::database::DatabaseConfig;
pub use self::error::ConfigError;
use self::error::explain;
pub use self::keys::{JWKS_MAX_AGE_SECS, KeysConfig};
pub use self::lockout::{LockMode, LockoutConfig, PasswordHashingConfig};
pub use self::logging::{LogConfig, LogFormat};
pub use self::mail::{
    DkimAlgorithm, DkimKeyConfig, MailConfig, MailTransport, SmtpConfig, SmtpTls,
};
pub use self::migration::{Hook, MIGRATION_HOOK_MAX_TIMEOUT_MS, MigrationHookConfig, PortalHook};
pub use self::password_policy::{PASSWORD_MAX_LENGTH, PasswordPolicyConfig};
pub use self::redis::{RedisConfig, SentinelConfig};
pub use self::retention::RetentionConfig;
pub use self::secret::{ConnectionUrl, Secret};
pub use self::server::ServerConfig;
pub use self::session::{SessionConfig, TokensConfig};
pub use self::themes::ThemesConfig;

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/idp.toml";
const ENV_PREFIX: &str = "IDP__";
const FILE_SUFFIX: &str = "_FILE";

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub mail: MailConfig,
    pub password_hashing: PasswordHashingConfig,
    pub password_policy: PasswordPolicyConfig,
    pub captcha: CaptchaConfig,
    pub session: SessionConfig,
    pub tokens: TokensConfig,
    pub account: AccountConfig,
    pub lockout: LockoutConfig,
    pub mfa: MfaConfig,
    pub themes: ThemesConfig,
    pub keys: KeysConfig,
    pub retention: RetentionConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub migration_hook: MigrationHookConfig,
}

impl Config {
    /// The time zone the admin console shows times in.
    pub fn console_time_zone(&self) -> &str {
        self.admin
            .console
            .time_zone
            .as_deref()
            .unwrap_or(&self.lockout.time_zone)
    }

    /// Reads the file (the explicit one must exist; the default path may be
    /// absent), applies the environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(path, std::env::vars())
    }

    /// [`Config::load`] with the environment given, for tests.
    pub fn load_from(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_path_buf())),
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_PATH).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_PATH));
            }
            None => {}
        }
        // Which variable set which key, to name it in an error.
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (name, raw) in env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)) {
            let (path, from_file) = match name.strip_suffix(FILE_SUFFIX) {
                Some(stem) => (stem, true),
                None => (name.as_str(), false),
            };
            let key = path[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            from_env.push((key.clone(), name.clone()));
            if from_file {
                let value = std::fs::read_to_string(&raw).map_err(|e| ConfigError::Unreadable {
                    path: format!("{raw} (from {name})"),
                    reason: e.to_string(),
                })?;
                let value = value.trim_end_matches(['\n', '\r']).to_string();
                figment = figment.merge((key, value));
            } else {
                // Parsed like figment's own `Env`: numbers and booleans become typed.
                let value: figment::value::Value =
                    raw.parse().unwrap_or_else(|_| raw.clone().into());
                figment = figment.merge((key, value));
            }
        }
        let config: Config = figment.extract().map_err(|e| explain(e, &from_env))?;
        config.validate()?;
        Ok(config)
    }

    /// Fails on the first value that cannot work, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // Section by section, in the order the checks have always run: with
        // several mistakes, the first one reported stays the same.
        self.server.validate()?;
        self.admin.validate(self.server.listen)?;
        self.mfa.validate()?;
        self.database.validate()?;
        self.redis.validate()?;
        self.mail.validate()?;
        self.password_hashing.validate()?;
        self.server.validate_proxy_hops()?;
        self.password_policy.validate().map_err(ConfigError::Rule)?;
        self.captcha.validate().map_err(ConfigError::Rule)?;
        self.session.validate()?;
        self.tokens.validate()?;
        self.account.validate()?;
        self.lockout.validate_window()?;
        self.admin.console.validate_time_zone()?;
        self.lockout.validate_ip_limit()?;
        self.keys.validate()?;
        self.retention.validate().map_err(ConfigError::Rule)?;
        self.migration_hook.validate()?;
        self.log.validate()
    }

    /// The effective configuration as TOML, secrets redacted (`idp check-config`).
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}
