//! SQL of [`ImportStore`](crate::store::ImportStore): look-ups by lists of
//! keys, and multi-row inserts, so that a batch of a few hundred accounts is
//! a handful of statements in one transaction (issue 15: 100,000 records in
//! well under a minute).
//!
//! The look-ups are not kept as prepared statements (`persistent(false)`):
//! PostgreSQL then plans each with its values. A kept one gets a generic
//! plan after five runs, which for `portal = $1 and external_id in (…)` read
//! the whole table (0.6 s a batch at 100,000 rows instead of milliseconds;
//! 78 s for the benchmark's import instead of 7).

/// Rows per multi-row statement: 9 parameters a row stays far below both
/// backends' limits on parameters (PostgreSQL 65,535; SQLite 32,766).
pub(in crate::store) const ROWS_PER_STATEMENT: usize = 500;

/// Implements [`ImportStore`](crate::store::ImportStore) for a store with a `pool` field.
macro_rules! impl_import_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ImportStore for $store {
            async fn existing_accounts(
                &self,
                email_keys: &[String],
            ) -> $crate::store::Result<
                std::collections::HashMap<String, $crate::store::ExistingAccount>,
            > {
                use $crate::store::sql::db_error;
                use $crate::store::sql::import::ROWS_PER_STATEMENT;
                let mut found = std::collections::HashMap::new();
                let mut conn = self.pool.conn().await?;
                for keys in email_keys.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::new(
                        "select u.user_id, u.email_key, u.is_admin, x.portal, x.external_id
                         from user_account u
                         left join user_external_id x on x.user_id = u.user_id
                         where u.email_key in (",
                    );
                    let mut list = q.separated(", ");
                    for key in keys {
                        list.push_bind(key.as_str());
                    }
                    q.push(")");
                    let rows: Vec<(String, String, bool, Option<String>, Option<String>)> = q
                        .build_query_as()
                        .persistent(false)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(db_error)?;
                    for (user_id, key, is_admin, portal, external_id) in rows {
                        let account =
                            found
                                .entry(key)
                                .or_insert_with(|| $crate::store::ExistingAccount {
                                    user_id: $crate::domain::UserId::from_trusted(user_id),
                                    is_admin,
                                    external_ids: std::collections::HashMap::new(),
                                });
                        if let (Some(portal), Some(external_id)) = (portal, external_id) {
                            account.external_ids.insert(portal, external_id);
                        }
                    }
                }
                Ok(found)
            }

            async fn external_id_owners(
                &self,
                portal: &str,
                external_ids: &[String],
            ) -> $crate::store::Result<std::collections::HashMap<String, $crate::domain::UserId>>
            {
                use $crate::store::sql::db_error;
                use $crate::store::sql::import::ROWS_PER_STATEMENT;
                let mut found = std::collections::HashMap::new();
                let mut conn = self.pool.conn().await?;
                for ids in external_ids.chunks(ROWS_PER_STATEMENT) {
                    // The unique index on (portal, external_id) serves this.
                    let mut q = sqlx::QueryBuilder::new(
                        "select external_id, user_id from user_external_id where portal = ",
                    );
                    q.push_bind(portal).push(" and external_id in (");
                    let mut list = q.separated(", ");
                    for id in ids {
                        list.push_bind(id.as_str());
                    }
                    q.push(")");
                    let rows: Vec<(String, String)> = q
                        .build_query_as()
                        .persistent(false)
                        .fetch_all(&mut *conn)
                        .await
                        .map_err(db_error)?;
                    for (external_id, user_id) in rows {
                        found.insert(external_id, $crate::domain::UserId::from_trusted(user_id));
                    }
                }
                Ok(found)
            }

            async fn write_import(
                &self,
                writes: &[$crate::store::ImportWrite],
                now: time::OffsetDateTime,
                whole: bool,
            ) -> $crate::store::Result<Vec<usize>> {
                use $crate::store::sql::db_error;
                let all: Vec<&$crate::store::ImportWrite> = writes.iter().collect();
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                match $crate::store::sql::import::write_batch!(&mut tx, &all, now) {
                    Ok(()) => {
                        tx.commit().await.map_err(db_error)?;
                        return Ok(Vec::new());
                    }
                    Err($crate::store::Error::Conflict) if !whole => {}
                    Err(e) => return Err(e),
                }
                drop(tx);
                // Something was taken meanwhile: one transaction per record,
                // so that only the colliding ones are left out.
                let mut collided = Vec::new();
                for (index, write) in writes.iter().enumerate() {
                    let mut tx = self.pool.begin().await.map_err(db_error)?;
                    match $crate::store::sql::import::write_batch!(&mut tx, &[write], now) {
                        Ok(()) => tx.commit().await.map_err(db_error)?,
                        Err($crate::store::Error::Conflict) => collided.push(index),
                        Err(e) => return Err(e),
                    }
                }
                Ok(collided)
            }
        }
    };
}
pub(in crate::store) use impl_import_store;

/// Writes `$writes` (a slice of `&ImportWrite`) in the transaction `$tx`:
/// multi-row inserts for the new accounts, their authenticators, external
/// ids and audit events; one statement per updated account.
macro_rules! write_batch {
    ($tx:expr, $writes:expr, $now:expr) => {{
        use $crate::store::ImportAction;
        use $crate::store::sql::import::ROWS_PER_STATEMENT;
        use $crate::store::sql::{Ts, db_error};
        let tx = $tx;
        let writes: &[&$crate::store::ImportWrite] = $writes;
        let now = Ts($now);
        async {
            let created: Vec<_> = writes
                .iter()
                .filter(|w| w.action == ImportAction::Create)
                .collect();
            for chunk in created.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into user_account (user_id, email, email_key, name, email_verified, password_hash, is_admin, created_at, updated_at) ",
                );
                q.push_values(chunk, |mut row, w| {
                    row.push_bind(w.user.id.as_str())
                        .push_bind(w.user.email.as_str())
                        .push_bind(w.user.email.key())
                        .push_bind(w.user.name.as_deref().unwrap_or_default())
                        .push_bind(w.user.email_verified.unwrap_or(false))
                        .push_bind(w.user.password_hash.as_deref())
                        .push_bind(false)
                        .push_bind(Ts(w.user.created_at))
                        .push_bind(now);
                });
                q.build().execute(&mut **tx).await.map_err(db_error)?;
            }
            for w in writes.iter().filter(|w| w.action == ImportAction::Update) {
                sqlx::query(
                    "update user_account set name = coalesce($2, name),
                         email_verified = coalesce($3, email_verified),
                         password_hash = case when password_hash like '$argon2id$%' then password_hash
                                              else coalesce($4, password_hash) end,
                         updated_at = $5
                     where user_id = $1",
                )
                .bind(w.user.id.as_str())
                .bind(w.user.name.as_deref())
                .bind(w.user.email_verified)
                .bind(w.user.password_hash.as_deref())
                .bind(now)
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
                if w.totp.is_some() {
                    sqlx::query("delete from totp_credential where user_id = $1")
                        .bind(w.user.id.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db_error)?;
                }
            }
            let totps: Vec<_> = writes
                .iter()
                .filter(|w| w.action != ImportAction::Link)
                .filter_map(|w| w.totp.as_ref().map(|t| (&w.user.id, t)))
                .collect();
            for chunk in totps.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into totp_credential (user_id, secret, secret_encrypted, digits, period_secs, confirmed_at, created_at) ",
                );
                q.push_values(chunk, |mut row, (id, t)| {
                    row.push_bind(id.as_str())
                        .push_bind(t.secret.as_str())
                        .push_bind(t.secret_encrypted)
                        .push_bind(i32::try_from(t.digits).unwrap_or(6))
                        .push_bind(i32::try_from(t.period_secs).unwrap_or(30))
                        .push_bind(now)
                        .push_bind(now);
                });
                q.build().execute(&mut **tx).await.map_err(db_error)?;
            }
            let ids: Vec<_> = writes
                .iter()
                .filter_map(|w| w.external_id.as_ref().map(|x| (&w.user.id, x)))
                .collect();
            for chunk in ids.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into user_external_id (user_id, portal, external_id, created_at) ",
                );
                q.push_values(chunk, |mut row, (id, (portal, external_id))| {
                    row.push_bind(id.as_str())
                        .push_bind(portal.as_str())
                        .push_bind(external_id.as_str())
                        .push_bind(now);
                });
                q.build().execute(&mut **tx).await.map_err(db_error)?;
            }
            for chunk in writes.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into audit_event (occurred_at, kind, user_id, actor, client_id, detail) ",
                );
                q.push_values(chunk, |mut row, w| {
                    row.push_bind(now)
                        .push_bind(w.audit.kind.as_str())
                        .push_bind(w.audit.user_id.as_ref().map(|u| u.as_str()))
                        .push_bind(w.audit.actor.as_deref())
                        .push_bind(w.audit.client_id.as_ref().map(|c| c.as_str()))
                        .push_bind(sqlx::types::Json(&w.audit.detail));
                });
                q.build().execute(&mut **tx).await.map_err(db_error)?;
            }
            Ok::<(), $crate::store::Error>(())
        }
        .await
    }};
}
pub(in crate::store) use write_batch;
