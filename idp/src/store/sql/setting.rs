//! The `setting` table.

/// Implements [`SettingStore`](crate::store::SettingStore) for a store with a `pool` field.
macro_rules! impl_setting_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::SettingStore for $store {
            async fn setting(
                &self,
                name: &str,
            ) -> $crate::store::Result<Option<$crate::store::Setting>> {
                let row: Option<(String, bool)> =
                    sqlx::query_as("select value, encrypted from setting where name = $1")
                        .bind(name)
                        .fetch_optional(&mut *self.pool.conn().await?)
                        .await
                        .map_err($crate::store::sql::db_error)?;
                Ok(row.map(|(value, encrypted)| $crate::store::Setting { value, encrypted }))
            }

            async fn setting_or_insert(
                &self,
                name: &str,
                value: $crate::store::Setting,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::Setting> {
                // Nodes starting together: one insert wins, every node reads it.
                sqlx::query(
                    "insert into setting (name, value, encrypted, created_at) values ($1, $2, $3, $4)
                     on conflict (name) do nothing",
                )
                .bind(name)
                .bind(&value.value)
                .bind(value.encrypted)
                .bind($crate::store::sql::Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                $crate::store::SettingStore::setting(self, name)
                    .await?
                    .ok_or($crate::store::Error::NotFound)
            }
        }
    };
}

pub(in crate::store) use impl_setting_store;
