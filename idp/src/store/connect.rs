//! Choosing the store from the database URL.

use std::sync::Arc;

use super::error::{Error, Result};
use super::{PostgresStore, SharedStore, SqliteStore};
use crate::config::DatabaseConfig;

/// Connects to the store the URL names.
pub async fn connect(config: &DatabaseConfig) -> Result<SharedStore> {
    match config.url.scheme() {
        Some("postgres" | "postgresql") => Ok(Arc::new(PostgresStore::connect(config).await?)),
        Some("sqlite") => Ok(Arc::new(SqliteStore::connect(config).await?)),
        _ => Err(Error::Unavailable("unsupported database URL scheme".into())),
    }
}
