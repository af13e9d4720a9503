//! SQL of [`AccountStore`](crate::store::AccountStore).

/// A new password, in the caller's transaction `$tx`, and what a change of
/// credentials voids: the account's open reset links (a link mailed before
/// the change must not undo it) and its refresh tokens (sessions of
/// applications signed in with the old password end). `$unlock` also lifts
/// a lockout (a reset proves the mailbox; a change does not need to).
macro_rules! replace_password {
    ($tx:expr, $user:expr, $password_hash:expr, $unlock:expr, $now:expr) => {{
        use $crate::store::sql::{Ts, db_error};
        let user: &$crate::domain::UserId = $user;
        let now = Ts($now);
        let set_password = if $unlock {
            "update user_account set password_hash = $2, locked_until = null, updated_at = $3 where user_id = $1"
        } else {
            "update user_account set password_hash = $2, updated_at = $3 where user_id = $1"
        };
        sqlx::query(set_password)
            .bind(user.as_str())
            .bind($password_hash)
            .bind(now)
            .execute(&mut *$tx)
            .await
            .map_err(db_error)?;
        sqlx::query("update password_reset_token set used_at = $2 where user_id = $1 and used_at is null")
            .bind(user.as_str())
            .bind(now)
            .execute(&mut *$tx)
            .await
            .map_err(db_error)?;
        sqlx::query("update refresh_token set revoked_at = $2 where user_id = $1 and revoked_at is null")
            .bind(user.as_str())
            .bind(now)
            .execute(&mut *$tx)
            .await
            .map_err(db_error)?;
    }};
}
pub(in crate::store) use replace_password;

/// Implements [`AccountStore`](crate::store::AccountStore) for a store with a `pool` field.
macro_rules! impl_account_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::AccountStore for $store {
            async fn register_user(
                &self,
                user: $crate::store::NewUser,
                token: $crate::store::NewToken,
                mail: $crate::store::OutgoingMail,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::User> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let row = sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "insert into user_account (user_id, email, email_key, name, email_verified, password_hash, is_admin, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $8)
                     returning user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at",
                )
                .bind($crate::domain::UserId::generate().as_str())
                .bind(user.email.as_str())
                .bind(user.email.key())
                .bind(&user.name)
                .bind(user.email_verified)
                .bind(&user.password_hash)
                .bind(user.is_admin)
                .bind(Ts(now))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                let created: $crate::store::User = row.into();
                sqlx::query(
                    "insert into email_verification_token (token_hash, user_id, created_at, expires_at) values ($1, $2, $3, $4)",
                )
                .bind(&token.hash)
                .bind(created.id.as_str())
                .bind(Ts(now))
                .bind(Ts(token.expires_at))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                $crate::store::sql::mail::insert_outbox!(&mut *tx, &mail, now)?;
                tx.commit().await.map_err(db_error)?;
                Ok(created)
            }

            async fn verify_email(
                &self,
                token_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::EmailVerification> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let used: Option<(String,)> = sqlx::query_as(
                    "update email_verification_token set used_at = $2
                     where token_hash = $1 and used_at is null and expires_at > $2
                     returning user_id",
                )
                .bind(token_hash)
                .bind(Ts(now))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some((user_id,)) = used else {
                    // A link opened twice (a mail scanner, then the person)
                    // for an address that is verified reads as success.
                    let verified: Option<(bool,)> = sqlx::query_as(
                        "select u.email_verified from email_verification_token t
                         join user_account u on u.user_id = t.user_id
                         where t.token_hash = $1 and t.used_at is not null",
                    )
                    .bind(token_hash)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    return Ok(match verified {
                        Some((true,)) => $crate::store::EmailVerification::AlreadyVerified,
                        _ => $crate::store::EmailVerification::Invalid,
                    });
                };
                let row = sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "update user_account set email_verified = true, updated_at = $2 where user_id = $1
                     returning user_id, email, name, email_verified, password_hash, disabled, locked_until, is_admin, created_at, updated_at",
                )
                .bind(&user_id)
                .bind(Ts(now))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok($crate::store::EmailVerification::Verified(row.into()))
            }

            async fn peek_email_verification(
                &self,
                token_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::EmailVerification> {
                use $crate::store::sql::{Ts, db_error};
                let live = sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "select u.user_id, u.email, u.name, u.email_verified, u.password_hash, u.disabled, u.locked_until, u.is_admin, u.created_at, u.updated_at
                     from email_verification_token t join user_account u on u.user_id = t.user_id
                     where t.token_hash = $1 and t.used_at is null and t.expires_at > $2",
                )
                .bind(token_hash)
                .bind(Ts(now))
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                if let Some(row) = live {
                    return Ok($crate::store::EmailVerification::Verified(row.into()));
                }
                let verified: Option<(bool,)> = sqlx::query_as(
                    "select u.email_verified from email_verification_token t
                     join user_account u on u.user_id = t.user_id
                     where t.token_hash = $1 and t.used_at is not null",
                )
                .bind(token_hash)
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(match verified {
                    Some((true,)) => $crate::store::EmailVerification::AlreadyVerified,
                    _ => $crate::store::EmailVerification::Invalid,
                })
            }

            async fn create_password_reset(
                &self,
                user: &$crate::domain::UserId,
                token: $crate::store::NewToken,
                portal: Option<&$crate::domain::ClientId>,
                mail: $crate::store::OutgoingMail,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query(
                    "insert into password_reset_token (token_hash, user_id, created_at, expires_at, client_id) values ($1, $2, $3, $4, $5)",
                )
                .bind(&token.hash)
                .bind(user.as_str())
                .bind(Ts(now))
                .bind(Ts(token.expires_at))
                .bind(portal.map(|p| p.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                $crate::store::sql::mail::insert_outbox!(&mut *tx, &mail, now)?;
                tx.commit().await.map_err(db_error)
            }

            async fn password_reset_portal(
                &self,
                token_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::domain::ClientId>> {
                use $crate::store::sql::{Ts, db_error};
                let row: Option<(Option<String>,)> = sqlx::query_as(
                    "select client_id from password_reset_token
                     where token_hash = $1 and used_at is null and expires_at > $2",
                )
                .bind(token_hash)
                .bind(Ts(now))
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(row
                    .and_then(|(id,)| id)
                    .and_then(|id| $crate::domain::ClientId::parse(&id).ok()))
            }

            async fn password_reset_user(
                &self,
                token_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::store::User>> {
                use $crate::store::sql::{Ts, db_error};
                sqlx::query_as::<_, $crate::store::sql::user::UserRow>(
                    "select u.user_id, u.email, u.name, u.email_verified, u.password_hash, u.disabled, u.locked_until, u.is_admin, u.created_at, u.updated_at
                     from password_reset_token t join user_account u on u.user_id = t.user_id
                     where t.token_hash = $1 and t.used_at is null and t.expires_at > $2",
                )
                .bind(token_hash)
                .bind(Ts(now))
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err(db_error)
            }

            async fn complete_password_reset(
                &self,
                token_hash: &str,
                user: &$crate::domain::UserId,
                password_hash: &str,
                mail: $crate::store::OutgoingMail,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let used = sqlx::query(
                    "update password_reset_token set used_at = $2
                     where token_hash = $1 and user_id = $3 and used_at is null and expires_at > $2",
                )
                .bind(token_hash)
                .bind(Ts(now))
                .bind(user.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if used.rows_affected() != 1 {
                    return Ok(false);
                }
                $crate::store::sql::account::replace_password!(tx, user, password_hash, true, now);
                $crate::store::sql::mail::insert_outbox!(&mut *tx, &mail, now)?;
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }

            async fn change_password(
                &self,
                user: &$crate::domain::UserId,
                password_hash: &str,
                mail: $crate::store::OutgoingMail,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::db_error;
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                $crate::store::sql::account::replace_password!(tx, user, password_hash, false, now);
                $crate::store::sql::mail::insert_outbox!(&mut *tx, &mail, now)?;
                tx.commit().await.map_err(db_error)
            }

            async fn set_password_hash(
                &self,
                user: &$crate::domain::UserId,
                password_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::{Ts, db_error};
                sqlx::query("update user_account set password_hash = $2, updated_at = $3 where user_id = $1")
                    .bind(user.as_str())
                    .bind(password_hash)
                    .bind(Ts(now))
                    .execute(&mut *self.pool.conn().await?)
                    .await
                    .map(|_| ())
                    .map_err(db_error)
            }

            async fn set_locked_until(
                &self,
                user: &$crate::domain::UserId,
                until: Option<time::OffsetDateTime>,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::{Ts, db_error};
                sqlx::query("update user_account set locked_until = $2, updated_at = $3 where user_id = $1")
                    .bind(user.as_str())
                    .bind(until.map(Ts))
                    .bind(Ts(now))
                    .execute(&mut *self.pool.conn().await?)
                    .await
                    .map(|_| ())
                    .map_err(db_error)
            }
        }
    };
}
pub(in crate::store) use impl_account_store;
