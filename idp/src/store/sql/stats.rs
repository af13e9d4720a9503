//! SQL of [`StatsStore`](crate::store::StatsStore): counts for the admin dashboard.

/// Implements [`StatsStore`](crate::store::StatsStore) for a store with a `pool` field.
macro_rules! impl_stats_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::StatsStore for $store {
            async fn summary(
                &self,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::Summary> {
                // One round trip; booleans are tested bare so that SQLite's
                // 0/1 and PostgreSQL's boolean read alike.
                let row: (i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
                    "select
                         (select count(*) from user_account),
                         (select count(*) from user_account where is_admin),
                         (select count(*) from user_account where disabled),
                         (select count(*) from user_account where locked_until > $1),
                         (select count(*) from client),
                         (select count(*) from mail_outbox where status = 'pending'),
                         (select count(*) from mail_outbox where status = 'failed'),
                         (select count(*) from mail_outbox where status = 'sent')",
                )
                .bind($crate::store::sql::Ts(now))
                .fetch_one(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                Ok($crate::store::Summary {
                    users: n(row.0),
                    admins: n(row.1),
                    disabled: n(row.2),
                    locked: n(row.3),
                    clients: n(row.4),
                    mail_pending: n(row.5),
                    mail_failed: n(row.6),
                    mail_sent: n(row.7),
                })
            }
        }
    };
}
pub(in crate::store) use impl_stats_store;
