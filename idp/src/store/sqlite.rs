//! SQLite: the embedded default, one file under `data/`, one node.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::breaker::Guarded;
use super::sql::{
    account::impl_account_store, audit::impl_audit_store, client::impl_client_store, db_error,
    mail::impl_mail_store, user::impl_user_store,
};
use super::{Error, Result, Store};
use crate::config::DatabaseConfig;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Every call goes through the breaker: it fails fast while the
    /// database is unreachable (see `store::breaker`).
    pool: Guarded<sqlx::Sqlite>,
}

impl SqliteStore {
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(config.url.expose())
            .map_err(|e| Error::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(config.connect_timeout_secs));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(config.connect_timeout_secs))
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(Self {
            pool: Guarded::new(pool),
        })
    }
}

impl_user_store!(SqliteStore, super::sql::user::SEARCH_USERS_SQLITE);
impl_client_store!(SqliteStore);
super::sql::external_id::impl_external_id_store!(SqliteStore);
impl_audit_store!(SqliteStore);
impl_account_store!(SqliteStore);
super::sql::mfa::impl_mfa_store!(SqliteStore);
super::sql::passkey::impl_passkey_store!(SqliteStore);
super::sql::oauth::impl_oauth_store!(SqliteStore);
super::sql::setting::impl_setting_store!(SqliteStore);
super::sql::revocation::impl_revocation_store!(SqliteStore);
super::sql::stats::impl_stats_store!(SqliteStore);
super::sql::import::impl_import_store!(SqliteStore);
super::sql::keys::impl_key_store!(
    SqliteStore,
    super::sql::keys::BEGIN_SQLITE,
    super::sql::keys::LOCK_SQLITE
);
impl_mail_store!(SqliteStore, super::sql::mail::CLAIM_SQLITE);

#[async_trait::async_trait]
impl super::RetentionStore for SqliteStore {
    async fn begin_pruning(&self) -> Result<Option<Box<dyn super::PruneSession>>> {
        Ok(Some(Box::new(super::sql::retention::SqlitePruneSession(
            self.pool.pool().clone(),
        ))))
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(self.pool.pool())
            .await
            .map_err(|e| Error::Database(e.to_string()))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1")
            .execute(&mut *self.pool.conn().await?)
            .await
            .map(|_| ())
            .map_err(db_error)
    }
}

impl super::sql::oauth::HasDb for SqliteStore {
    type Db = sqlx::Sqlite;
}
