//! The `revoked_access_token` table.

/// Implements [`RevocationStore`](crate::store::RevocationStore) for a store with a `pool` field.
macro_rules! impl_revocation_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::RevocationStore for $store {
            async fn revoke_access_token(
                &self,
                token: &$crate::store::RevokedToken,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::{Ts, db_error};
                sqlx::query(
                    "insert into revoked_access_token (jti, expires_at, created_at) values ($1, $2, $3)
                     on conflict (jti) do nothing",
                )
                .bind(&token.jti)
                .bind(Ts(token.expires_at))
                .bind(Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                // Revocations are rare: pruning here keeps the table to the
                // tokens still live, without a job of its own.
                sqlx::query("delete from revoked_access_token where expires_at <= $1")
                    .bind(Ts(now))
                    .execute(&mut *self.pool.conn().await?)
                    .await
                    .map_err(db_error)?;
                Ok(())
            }

            async fn revoked_access_tokens(
                &self,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Vec<$crate::store::RevokedToken>> {
                use $crate::store::sql::{Ts, db_error};
                let rows: Vec<(String, Ts)> = sqlx::query_as(
                    "select jti, expires_at from revoked_access_token where expires_at > $1",
                )
                .bind(Ts(now))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(rows
                    .into_iter()
                    .map(|(jti, expires_at)| $crate::store::RevokedToken {
                        jti,
                        expires_at: expires_at.into(),
                    })
                    .collect())
            }
        }
    };
}

pub(in crate::store) use impl_revocation_store;
