//! The `signing_key` table. The same SQL on both backends except how a
//! rotation is serialised: PostgreSQL takes a transaction-scoped advisory
//! lock (nodes rotating at once queue on it); SQLite opens the transaction
//! with `begin immediate`, which takes the database's single write lock
//! before the freshness check reads anything.

use sqlx::FromRow;
use sqlx::types::Json;

use super::{Ts, corrupt};
use crate::store::StoredKey;

#[derive(FromRow)]
pub(in crate::store) struct KeyRow {
    signing_key_id: String,
    alg: String,
    private_key: String,
    private_key_encrypted: bool,
    public_jwk: Json<serde_json::Value>,
    created_at: Ts,
    activates_at: Ts,
    retires_at: Option<Ts>,
    expires_at: Option<Ts>,
}

impl TryFrom<KeyRow> for StoredKey {
    type Error = crate::store::Error;

    fn try_from(r: KeyRow) -> Result<Self, Self::Error> {
        Ok(StoredKey {
            alg: r.alg.parse().map_err(|e| corrupt("signing key alg", e))?,
            kid: r.signing_key_id,
            private_key: r.private_key,
            private_key_encrypted: r.private_key_encrypted,
            public_jwk: r.public_jwk.0,
            created_at: r.created_at.into(),
            activates_at: r.activates_at.into(),
            retires_at: r.retires_at.map(Into::into),
            expires_at: r.expires_at.map(Into::into),
        })
    }
}

pub(in crate::store) fn rows_to_keys(rows: Vec<KeyRow>) -> crate::store::Result<Vec<StoredKey>> {
    rows.into_iter().map(StoredKey::try_from).collect()
}

/// PostgreSQL: a plain transaction, then this lock (released at commit or
/// rollback). The number only has to be unique among this database's
/// advisory locks.
pub(in crate::store) const BEGIN_POSTGRES: &str = "begin";
pub(in crate::store) const LOCK_POSTGRES: Option<&str> =
    Some("select pg_advisory_xact_lock(7020240901)");

/// SQLite: the write lock from the first statement on, so two rotations
/// cannot both pass the freshness check.
pub(in crate::store) const BEGIN_SQLITE: &str = "begin immediate";
pub(in crate::store) const LOCK_SQLITE: Option<&str> = None;

/// Implements [`KeyStore`](crate::store::KeyStore) for a store with a `pool`
/// field; `$begin` opens the rotation's transaction and `$lock`, when some,
/// runs first inside it.
macro_rules! impl_key_store {
    ($store:ty, $begin:expr, $lock:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::KeyStore for $store {
            async fn signing_keys(&self) -> $crate::store::Result<Vec<$crate::store::StoredKey>> {
                let rows = sqlx::query_as::<_, $crate::store::sql::keys::KeyRow>(
                    "select signing_key_id, alg, private_key, private_key_encrypted, public_jwk,
                            created_at, activates_at, retires_at, expires_at
                     from signing_key order by created_at, signing_key_id",
                )
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                $crate::store::sql::keys::rows_to_keys(rows)
            }

            async fn add_signing_keys_unless_fresh(
                &self,
                keys: Vec<$crate::store::StoredKey>,
                retire_previous_at: time::OffsetDateTime,
                expire_previous_at: time::OffsetDateTime,
                fresh_after: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin_with($begin).await.map_err(db_error)?;
                let lock: Option<&'static str> = $lock;
                if let Some(lock) = lock {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(db_error)?;
                }
                let fresh: Vec<(String,)> = sqlx::query_as(
                    "select distinct alg from signing_key where created_at > $1",
                )
                .bind(Ts(fresh_after))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                let all_fresh = keys
                    .iter()
                    .all(|k| fresh.iter().any(|(alg,)| alg == k.alg.as_str()));
                if all_fresh {
                    tx.rollback().await.map_err(db_error)?;
                    return Ok(false);
                }
                let mut algs: Vec<&'static str> = keys.iter().map(|k| k.alg.as_str()).collect();
                algs.sort_unstable();
                algs.dedup();
                for alg in algs {
                    sqlx::query(
                        "update signing_key set retires_at = $2, expires_at = $3
                         where alg = $1 and retires_at is null",
                    )
                    .bind(alg)
                    .bind(Ts(retire_previous_at))
                    .bind(Ts(expire_previous_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                }
                for k in &keys {
                    sqlx::query(
                        "insert into signing_key (signing_key_id, alg, private_key, private_key_encrypted,
                            public_jwk, created_at, activates_at, retires_at, expires_at)
                         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&k.kid)
                    .bind(k.alg.as_str())
                    .bind(&k.private_key)
                    .bind(k.private_key_encrypted)
                    .bind(sqlx::types::Json(&k.public_jwk))
                    .bind(Ts(k.created_at))
                    .bind(Ts(k.activates_at))
                    .bind(k.retires_at.map(Ts))
                    .bind(k.expires_at.map(Ts))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                }
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }
        }
    };
}
pub(in crate::store) use impl_key_store;
