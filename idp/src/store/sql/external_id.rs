//! SQL of [`ExternalIdStore`](crate::store::ExternalIdStore).

use sqlx::FromRow;

use super::Ts;
use crate::store::ExternalId;

#[derive(FromRow)]
pub(in crate::store) struct ExternalIdRow {
    portal: String,
    external_id: String,
    created_at: Ts,
}

impl From<ExternalIdRow> for ExternalId {
    fn from(r: ExternalIdRow) -> Self {
        ExternalId {
            portal: r.portal,
            external_id: r.external_id,
            created_at: r.created_at.into(),
        }
    }
}

/// Implements [`ExternalIdStore`](crate::store::ExternalIdStore) for a store with a `pool` field.
macro_rules! impl_external_id_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ExternalIdStore for $store {
            async fn external_ids(
                &self,
                user: &$crate::domain::UserId,
            ) -> $crate::store::Result<Vec<$crate::store::ExternalId>> {
                // The primary key (user_id, portal) serves this lookup.
                let rows = sqlx::query_as::<_, $crate::store::sql::external_id::ExternalIdRow>(
                    "select portal, external_id, created_at from user_external_id
                     where user_id = $1 order by portal",
                )
                .bind(user.as_str())
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                Ok(rows.into_iter().map(Into::into).collect())
            }

            async fn add_external_id(
                &self,
                user: &$crate::domain::UserId,
                portal: &str,
                external_id: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                // Only a clash on (user_id, portal) is "already there"; one on
                // (portal, external_id) stays a conflict.
                let done = sqlx::query(
                    "insert into user_external_id (user_id, portal, external_id, created_at)
                     values ($1, $2, $3, $4)
                     on conflict (user_id, portal) do nothing",
                )
                .bind(user.as_str())
                .bind(portal)
                .bind(external_id)
                .bind($crate::store::sql::Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(in crate::store) use impl_external_id_store;
