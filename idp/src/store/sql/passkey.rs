//! SQL of [`PasskeyStore`](crate::store::PasskeyStore).

use sqlx::FromRow;

use super::Ts;
use crate::domain::UserId;
use crate::store::StoredPasskey;

#[derive(FromRow)]
pub(in crate::store) struct PasskeyRow {
    passkey_id: String,
    user_id: String,
    name: String,
    credential_id: String,
    credential: String,
    created_at: Ts,
    last_used_at: Option<Ts>,
}

impl From<PasskeyRow> for StoredPasskey {
    fn from(r: PasskeyRow) -> Self {
        StoredPasskey {
            id: r.passkey_id,
            user_id: UserId::from_trusted(r.user_id),
            name: r.name,
            credential_id: r.credential_id,
            credential: r.credential,
            created_at: r.created_at.into(),
            last_used_at: r.last_used_at.map(Into::into),
        }
    }
}

/// Implements [`PasskeyStore`](crate::store::PasskeyStore) for a store with a `pool` field.
macro_rules! impl_passkey_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::PasskeyStore for $store {
            async fn passkeys(
                &self,
                user: &$crate::domain::UserId,
            ) -> $crate::store::Result<Vec<$crate::store::StoredPasskey>> {
                use $crate::store::sql::db_error;
                let rows = sqlx::query_as::<_, $crate::store::sql::passkey::PasskeyRow>(
                    "select passkey_id, user_id, name, credential_id, credential, created_at, last_used_at
                     from passkey where user_id = $1 order by created_at, passkey_id",
                )
                .bind(user.as_str())
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn add_passkey(
                &self,
                user: &$crate::domain::UserId,
                passkey: $crate::store::NewPasskey,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::StoredPasskey> {
                use $crate::store::sql::{Ts, db_error};
                sqlx::query(
                    "insert into passkey (passkey_id, user_id, name, credential_id, credential, created_at)
                     values ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&passkey.id)
                .bind(user.as_str())
                .bind(&passkey.name)
                .bind(&passkey.credential_id)
                .bind(&passkey.credential)
                .bind(Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok($crate::store::StoredPasskey {
                    id: passkey.id,
                    user_id: user.clone(),
                    name: passkey.name,
                    credential_id: passkey.credential_id,
                    credential: passkey.credential,
                    created_at: now,
                    last_used_at: None,
                })
            }

            async fn passkey_by_credential_id(
                &self,
                credential_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::StoredPasskey>> {
                use $crate::store::sql::db_error;
                let row = sqlx::query_as::<_, $crate::store::sql::passkey::PasskeyRow>(
                    "select passkey_id, user_id, name, credential_id, credential, created_at, last_used_at
                     from passkey where credential_id = $1",
                )
                .bind(credential_id)
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(row.map(Into::into))
            }

            async fn passkey_used(
                &self,
                id: &str,
                previous: &str,
                updated: Option<&str>,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::{Ts, db_error};
                // Compared with what was read: two sign-ins with one passkey
                // at once cannot both move its counter (one would put it back).
                let done = sqlx::query(
                    "update passkey set credential = coalesce($3, credential), last_used_at = $4
                     where passkey_id = $1 and credential = $2",
                )
                .bind(id)
                .bind(previous)
                .bind(updated)
                .bind(Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn rename_passkey(
                &self,
                user: &$crate::domain::UserId,
                id: &str,
                name: &str,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::db_error;
                let done = sqlx::query(
                    "update passkey set name = $3 where user_id = $1 and passkey_id = $2",
                )
                .bind(user.as_str())
                .bind(id)
                .bind(name)
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove_passkey(
                &self,
                user: &$crate::domain::UserId,
                id: &str,
                keep_last: bool,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::db_error;
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                // Removals of one account's passkeys take turns: the account's
                // row is written first (PostgreSQL locks it until the commit;
                // SQLite has one writer), so the delete below reads the count
                // and the password after any other removal has committed.
                // Read in one statement only, two removals at once under
                // READ COMMITTED would each see the other's passkey.
                sqlx::query("update user_account set updated_at = updated_at where user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let done = sqlx::query(
                    "delete from passkey where user_id = $1 and passkey_id = $2
                       and (not $3
                            or (select password_hash from user_account where user_id = $1) is not null
                            or (select count(*) from passkey where user_id = $1) > 1)",
                )
                .bind(user.as_str())
                .bind(id)
                .bind(keep_last)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

pub(in crate::store) use impl_passkey_store;
