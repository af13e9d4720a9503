//! `[database]`: the durable store.

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use super::secret::ConnectionUrl;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (embedded) or `postgres://user:password@host/db`.
    pub url: ConnectionUrl,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Apply pending migrations when `idp serve` starts.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: ConnectionUrl::new("sqlite://data/idp.db"),
            max_connections: 10,
            connect_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        match self.url.scheme() {
            Some("postgres" | "postgresql" | "sqlite") => {}
            _ => {
                return Err(invalid(
                    "database.url",
                    "must start with postgres:// or sqlite://",
                ));
            }
        }
        if !(1..=1000).contains(&self.max_connections) {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=120).contains(&self.connect_timeout_secs) {
            return Err(invalid(
                "database.connect_timeout_secs",
                "must be between 1 and 120",
            ));
        }
        Ok(())
    }
}
