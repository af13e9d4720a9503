//! PostgreSQL: the production store, shared by every node.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use super::breaker::Guarded;
use super::sql::{
    account::impl_account_store, audit::impl_audit_store, client::impl_client_store, db_error,
    mail::impl_mail_store, user::impl_user_store,
};
use super::{Result, Store};
use crate::config::DatabaseConfig;

static MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Debug, Clone)]
pub struct PostgresStore {
    /// Every call goes through the breaker: it fails fast while the
    /// database is unreachable (see `store::breaker`).
    pool: Guarded<sqlx::Postgres>,
}

impl PostgresStore {
    pub async fn connect(config: &DatabaseConfig) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(config.connect_timeout_secs))
            .connect(config.url.expose())
            .await
            .map_err(db_error)?;
        Ok(Self {
            pool: Guarded::new(pool),
        })
    }
}

impl_user_store!(PostgresStore, super::sql::user::SEARCH_USERS_POSTGRES);
impl_client_store!(PostgresStore);
super::sql::external_id::impl_external_id_store!(PostgresStore);
impl_audit_store!(PostgresStore);
impl_account_store!(PostgresStore);
super::sql::mfa::impl_mfa_store!(PostgresStore);
super::sql::passkey::impl_passkey_store!(PostgresStore);
super::sql::oauth::impl_oauth_store!(PostgresStore);
super::sql::setting::impl_setting_store!(PostgresStore);
super::sql::revocation::impl_revocation_store!(PostgresStore);
super::sql::stats::impl_stats_store!(PostgresStore);
super::sql::import::impl_import_store!(PostgresStore);
super::sql::keys::impl_key_store!(
    PostgresStore,
    super::sql::keys::BEGIN_POSTGRES,
    super::sql::keys::LOCK_POSTGRES
);
impl_mail_store!(PostgresStore, super::sql::mail::CLAIM_POSTGRES);

#[async_trait::async_trait]
impl super::RetentionStore for PostgresStore {
    async fn begin_pruning(&self) -> Result<Option<Box<dyn super::PruneSession>>> {
        let session = super::sql::retention::PgPruneSession::begin(self.pool.pool()).await?;
        Ok(session.map(|s| Box::new(s) as Box<dyn super::PruneSession>))
    }
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        // sqlx takes an advisory lock, so nodes starting together migrate once.
        MIGRATOR
            .run(self.pool.pool())
            .await
            .map_err(|e| super::Error::Database(e.to_string()))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("select 1")
            .execute(&mut *self.pool.conn().await?)
            .await
            .map(|_| ())
            .map_err(db_error)
    }
}

impl super::sql::oauth::HasDb for PostgresStore {
    type Db = sqlx::Postgres;
}
