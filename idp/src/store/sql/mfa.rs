//! SQL of [`MfaStore`](crate::store::MfaStore).

use sqlx::FromRow;

use super::Ts;
use crate::domain::UserId;
use crate::store::TotpCredential;

#[derive(FromRow)]
pub(in crate::store) struct TotpRow {
    user_id: String,
    secret: String,
    secret_encrypted: bool,
    digits: i32,
    period_secs: i32,
    confirmed_at: Option<Ts>,
    last_used_step: Option<i64>,
    created_at: Ts,
}

impl From<TotpRow> for TotpCredential {
    fn from(r: TotpRow) -> Self {
        TotpCredential {
            user_id: UserId::from_trusted(r.user_id),
            secret: r.secret,
            secret_encrypted: r.secret_encrypted,
            digits: u32::try_from(r.digits).unwrap_or(6),
            period_secs: u32::try_from(r.period_secs).unwrap_or(30),
            confirmed_at: r.confirmed_at.map(Into::into),
            last_used_step: r.last_used_step,
            created_at: r.created_at.into(),
        }
    }
}

/// Implements [`MfaStore`](crate::store::MfaStore) for a store with a `pool` field.
macro_rules! impl_mfa_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::MfaStore for $store {
            async fn totp_credential(
                &self,
                user: &$crate::domain::UserId,
            ) -> $crate::store::Result<Option<$crate::store::TotpCredential>> {
                use $crate::store::sql::db_error;
                let row = sqlx::query_as::<_, $crate::store::sql::mfa::TotpRow>(
                    "select user_id, secret, secret_encrypted, digits, period_secs, confirmed_at, last_used_step, created_at
                     from totp_credential where user_id = $1",
                )
                .bind(user.as_str())
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(row.map(Into::into))
            }

            async fn start_totp_enrolment(
                &self,
                user: &$crate::domain::UserId,
                totp: $crate::store::NewTotp,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::{Ts, db_error};
                let done = sqlx::query(
                    "insert into totp_credential (user_id, secret, secret_encrypted, digits, period_secs, created_at)
                     values ($1, $2, $3, $4, $5, $6)
                     on conflict (user_id) do update set
                         secret = excluded.secret, secret_encrypted = excluded.secret_encrypted,
                         digits = excluded.digits, period_secs = excluded.period_secs,
                         last_used_step = null, created_at = excluded.created_at
                     where totp_credential.confirmed_at is null",
                )
                .bind(user.as_str())
                .bind(&totp.secret)
                .bind(totp.secret_encrypted)
                .bind(i32::try_from(totp.digits).unwrap_or(6))
                .bind(i32::try_from(totp.period_secs).unwrap_or(30))
                .bind(Ts(now))
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn confirm_totp(
                &self,
                user: &$crate::domain::UserId,
                step: i64,
                recovery_code_hashes: &[String],
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let done = sqlx::query(
                    "update totp_credential set confirmed_at = $2, last_used_step = $3
                     where user_id = $1 and confirmed_at is null",
                )
                .bind(user.as_str())
                .bind(Ts(now))
                .bind(step)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                $crate::store::sql::mfa::replace_codes!(&mut tx, user, recovery_code_hashes, now)?;
                tx.commit().await.map_err(db_error)?;
                Ok(true)
            }

            async fn use_totp_step(
                &self,
                user: &$crate::domain::UserId,
                step: i64,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::db_error;
                let done = sqlx::query(
                    "update totp_credential set last_used_step = $2
                     where user_id = $1 and confirmed_at is not null
                       and (last_used_step is null or last_used_step < $2)",
                )
                .bind(user.as_str())
                .bind(step)
                .execute(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_recovery_code(
                &self,
                user: &$crate::domain::UserId,
                code_hash: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<u32>> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let done = sqlx::query(
                    "update recovery_code set used_at = $3
                     where user_id = $1 and code_hash = $2 and used_at is null",
                )
                .bind(user.as_str())
                .bind(code_hash)
                .bind(Ts(now))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if done.rows_affected() != 1 {
                    return Ok(None);
                }
                let (remaining,): (i64,) = sqlx::query_as(
                    "select count(*) from recovery_code where user_id = $1 and used_at is null",
                )
                .bind(user.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(u32::try_from(remaining).unwrap_or(0)))
            }

            async fn replace_recovery_codes(
                &self,
                user: &$crate::domain::UserId,
                hashes: &[String],
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::db_error;
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                $crate::store::sql::mfa::replace_codes!(&mut tx, user, hashes, now)?;
                tx.commit().await.map_err(db_error)?;
                Ok(())
            }

            async fn recovery_codes_remaining(
                &self,
                user: &$crate::domain::UserId,
            ) -> $crate::store::Result<u32> {
                use $crate::store::sql::db_error;
                let (remaining,): (i64,) = sqlx::query_as(
                    "select count(*) from recovery_code where user_id = $1 and used_at is null",
                )
                .bind(user.as_str())
                .fetch_one(&mut *self.pool.conn().await?)
                .await
                .map_err(db_error)?;
                Ok(u32::try_from(remaining).unwrap_or(0))
            }

            async fn delete_totp(
                &self,
                user: &$crate::domain::UserId,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::db_error;
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                sqlx::query("delete from recovery_code where user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                let done = sqlx::query("delete from totp_credential where user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

/// Deletes the user's recovery codes and inserts `hashes`, inside `$tx`.
macro_rules! replace_codes {
    ($tx:expr, $user:expr, $hashes:expr, $now:expr) => {
        async {
            use $crate::store::sql::{Ts, db_error};
            sqlx::query("delete from recovery_code where user_id = $1")
                .bind($user.as_str())
                .execute(&mut **$tx)
                .await
                .map_err(db_error)?;
            for hash in $hashes {
                sqlx::query(
                    "insert into recovery_code (recovery_code_id, user_id, code_hash, created_at)
                     values ($1, $2, $3, $4)",
                )
                .bind($crate::crypto::random_token())
                .bind($user.as_str())
                .bind(hash)
                .bind(Ts($now))
                .execute(&mut **$tx)
                .await
                .map_err(db_error)?;
            }
            Ok::<(), $crate::store::Error>(())
        }
        .await
    };
}

pub(in crate::store) use impl_mfa_store;
pub(in crate::store) use replace_codes;
