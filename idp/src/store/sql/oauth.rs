//! SQL of [`OAuthStore`](crate::store::OAuthStore).

use sqlx::FromRow;
use sqlx::types::Json;

use super::Ts;
use crate::domain::{ClientId, RequestedClaims, UserId};
use crate::store::{Consent, RefreshFamily, RefreshToken};

#[derive(FromRow)]
pub(in crate::store) struct RefreshRow {
    refresh_token_id: String,
    family_id: String,
    user_id: String,
    client_id: String,
    scopes: Json<Vec<String>>,
    auth_time: Ts,
    amr: Json<Vec<String>>,
    acr: Option<String>,
    /// Null for tokens written before it was kept, and when nothing was asked.
    claims: Option<Json<RequestedClaims>>,
    created_at: Ts,
    expires_at: Ts,
    family_expires_at: Ts,
    rotated_at: Option<Ts>,
    revoked_at: Option<Ts>,
}

impl From<RefreshRow> for RefreshToken {
    fn from(r: RefreshRow) -> Self {
        RefreshToken {
            id: r.refresh_token_id,
            family_id: r.family_id,
            user_id: UserId::from_trusted(r.user_id),
            client_id: ClientId::from_trusted(r.client_id),
            scopes: r.scopes.0,
            auth_time: r.auth_time.into(),
            amr: r.amr.0,
            acr: r.acr,
            claims: r.claims.map(|c| c.0).unwrap_or_default(),
            created_at: r.created_at.into(),
            expires_at: r.expires_at.into(),
            family_expires_at: r.family_expires_at.into(),
            rotated_at: r.rotated_at.map(Into::into),
            revoked_at: r.revoked_at.map(Into::into),
        }
    }
}

#[derive(FromRow)]
pub(in crate::store) struct FamilyRow {
    family_id: String,
    client_id: String,
    scopes: Json<Vec<String>>,
    created_at: Ts,
    last_used_at: Option<Ts>,
    expires_at: Ts,
    family_expires_at: Ts,
}

impl From<FamilyRow> for RefreshFamily {
    fn from(r: FamilyRow) -> Self {
        RefreshFamily {
            family_id: r.family_id,
            client_id: ClientId::from_trusted(r.client_id),
            scopes: r.scopes.0,
            created_at: r.created_at.into(),
            last_used_at: r.last_used_at.map(Into::into),
            expires_at: r.expires_at.into(),
            family_expires_at: r.family_expires_at.into(),
        }
    }
}

/// The live current token of each family: not rotated (so the newest), not
/// revoked, not expired at `$2`. Shared by the listing and the revocation.
macro_rules! live_current_token {
    () => {
        "rotated_at is null and revoked_at is null and expires_at > $2 and family_expires_at > $2"
    };
}
pub(in crate::store) use live_current_token;

#[derive(FromRow)]
pub(in crate::store) struct ConsentRow {
    user_id: String,
    client_id: String,
    scopes: Json<Vec<String>>,
    created_at: Ts,
    updated_at: Ts,
}

impl From<ConsentRow> for Consent {
    fn from(r: ConsentRow) -> Self {
        Consent {
            user_id: UserId::from_trusted(r.user_id),
            client_id: ClientId::from_trusted(r.client_id),
            scopes: r.scopes.0,
            created_at: r.created_at.into(),
            updated_at: r.updated_at.into(),
        }
    }
}

/// Implements [`OAuthStore`](crate::store::OAuthStore) for a store with a `pool` field.
macro_rules! impl_oauth_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::OAuthStore for $store {
            async fn insert_refresh_token(
                &self,
                t: $crate::store::NewRefreshToken,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::RefreshToken> {
                insert_refresh(&mut *self.pool.conn().await?, t, now).await
            }

            async fn refresh_token_by_hash(
                &self,
                token_hash: &str,
            ) -> $crate::store::Result<Option<$crate::store::RefreshToken>> {
                sqlx::query_as::<_, $crate::store::sql::oauth::RefreshRow>(
                    "select refresh_token_id, family_id, user_id, client_id, scopes, auth_time, amr, acr, claims,
                         created_at, expires_at, family_expires_at, rotated_at, revoked_at
                     from refresh_token where token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::store::sql::db_error)
            }

            async fn rotate_refresh_token(
                &self,
                old_id: &str,
                new: $crate::store::NewRefreshToken,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::store::RefreshToken>> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let rotated = sqlx::query(
                    "update refresh_token set rotated_at = $2
                     where refresh_token_id = $1 and rotated_at is null and revoked_at is null",
                )
                .bind(old_id)
                .bind(Ts(now))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if rotated.rows_affected() != 1 {
                    return Ok(None);
                }
                let token = insert_refresh(&mut *tx, new, now).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some(token))
            }

            async fn revoke_refresh_family(
                &self,
                family_id: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<u64> {
                sqlx::query("update refresh_token set revoked_at = $2 where family_id = $1 and revoked_at is null")
                    .bind(family_id)
                    .bind($crate::store::sql::Ts(now))
                    .execute(&mut *self.pool.conn().await?)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::store::sql::db_error)
            }

            async fn revoke_user_refresh_tokens(
                &self,
                user: &$crate::domain::UserId,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<u64> {
                sqlx::query("update refresh_token set revoked_at = $2 where user_id = $1 and revoked_at is null")
                    .bind(user.as_str())
                    .bind($crate::store::sql::Ts(now))
                    .execute(&mut *self.pool.conn().await?)
                    .await
                    .map(|r| r.rows_affected())
                    .map_err($crate::store::sql::db_error)
            }

            async fn live_refresh_families(
                &self,
                user: &$crate::domain::UserId,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Vec<$crate::store::RefreshFamily>> {
                sqlx::query_as::<_, $crate::store::sql::oauth::FamilyRow>(concat!(
                    "select c.family_id, c.client_id, c.scopes, c.expires_at, c.family_expires_at,
                         (select min(f.created_at) from refresh_token f where f.family_id = c.family_id) as created_at,
                         (select max(f.rotated_at) from refresh_token f where f.family_id = c.family_id) as last_used_at
                     from refresh_token c
                     where c.user_id = $1 and ",
                    $crate::store::sql::oauth::live_current_token!(),
                    " order by created_at desc, c.family_id desc",
                ))
                .bind(user.as_str())
                .bind($crate::store::sql::Ts(now))
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err($crate::store::sql::db_error)
            }

            async fn revoke_user_refresh_family(
                &self,
                user: &$crate::domain::UserId,
                family_id: &str,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::domain::ClientId>> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let live: Option<(String,)> = sqlx::query_as(concat!(
                    "select client_id from refresh_token where user_id = $1 and family_id = $3 and ",
                    $crate::store::sql::oauth::live_current_token!(),
                ))
                .bind(user.as_str())
                .bind(Ts(now))
                .bind(family_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some((client_id,)) = live else {
                    return Ok(None);
                };
                sqlx::query("update refresh_token set revoked_at = $2 where family_id = $1 and revoked_at is null")
                    .bind(family_id)
                    .bind(Ts(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(Some($crate::domain::ClientId::from_trusted(client_id)))
            }

            async fn consent(
                &self,
                user: &$crate::domain::UserId,
                client: &$crate::domain::ClientId,
            ) -> $crate::store::Result<Option<$crate::store::Consent>> {
                sqlx::query_as::<_, $crate::store::sql::oauth::ConsentRow>(
                    "select user_id, client_id, scopes, created_at, updated_at from consent where user_id = $1 and client_id = $2",
                )
                .bind(user.as_str())
                .bind(client.as_str())
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map(|r| r.map(Into::into))
                .map_err($crate::store::sql::db_error)
            }

            async fn grant_consent(
                &self,
                user: &$crate::domain::UserId,
                client: &$crate::domain::ClientId,
                scopes: &[String],
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let existing: Option<(sqlx::types::Json<Vec<String>>,)> =
                    sqlx::query_as("select scopes from consent where user_id = $1 and client_id = $2")
                        .bind(user.as_str())
                        .bind(client.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                let mut all = existing.map(|(s,)| s.0).unwrap_or_default();
                for s in scopes {
                    if !all.contains(s) {
                        all.push(s.clone());
                    }
                }
                sqlx::query(
                    "insert into consent (user_id, client_id, scopes, created_at, updated_at) values ($1, $2, $3, $4, $4)
                     on conflict (user_id, client_id) do update set scopes = excluded.scopes, updated_at = excluded.updated_at",
                )
                .bind(user.as_str())
                .bind(client.as_str())
                .bind(sqlx::types::Json(&all))
                .bind(Ts(now))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)
            }

            async fn revoke_consent(
                &self,
                user: &$crate::domain::UserId,
                client: &$crate::domain::ClientId,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::{Ts, db_error};
                let mut tx = self.pool.begin().await.map_err(db_error)?;
                let deleted = sqlx::query("delete from consent where user_id = $1 and client_id = $2")
                    .bind(user.as_str())
                    .bind(client.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                sqlx::query(
                    "update refresh_token set revoked_at = $3 where user_id = $1 and client_id = $2 and revoked_at is null",
                )
                .bind(user.as_str())
                .bind(client.as_str())
                .bind(Ts(now))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                tx.commit().await.map_err(db_error)?;
                Ok(deleted.rows_affected() > 0)
            }

            async fn consents(
                &self,
                user: &$crate::domain::UserId,
            ) -> $crate::store::Result<Vec<$crate::store::Consent>> {
                sqlx::query_as::<_, $crate::store::sql::oauth::ConsentRow>(
                    "select user_id, client_id, scopes, created_at, updated_at from consent where user_id = $1 order by client_id",
                )
                .bind(user.as_str())
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect())
                .map_err($crate::store::sql::db_error)
            }
        }

        async fn insert_refresh<'e, E>(
            executor: E,
            t: $crate::store::NewRefreshToken,
            now: time::OffsetDateTime,
        ) -> $crate::store::Result<$crate::store::RefreshToken>
        where
            E: sqlx::Executor<'e, Database = <$store as $crate::store::sql::oauth::HasDb>::Db>,
        {
            use $crate::store::sql::{Ts, db_error};
            sqlx::query_as::<_, $crate::store::sql::oauth::RefreshRow>(
                "insert into refresh_token (refresh_token_id, token_hash, family_id, user_id, client_id, scopes, auth_time, amr, acr,
                     claims, created_at, expires_at, family_expires_at)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 returning refresh_token_id, family_id, user_id, client_id, scopes, auth_time, amr, acr, claims,
                     created_at, expires_at, family_expires_at, rotated_at, revoked_at",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&t.token_hash)
            .bind(&t.family_id)
            .bind(t.user_id.as_str())
            .bind(t.client_id.as_str())
            .bind(sqlx::types::Json(&t.scopes))
            .bind(Ts(t.auth_time))
            .bind(sqlx::types::Json(&t.amr))
            .bind(&t.acr)
            .bind((t.claims != $crate::domain::RequestedClaims::default()).then(|| sqlx::types::Json(&t.claims)))
            .bind(Ts(now))
            .bind(Ts(t.expires_at))
            .bind(Ts(t.family_expires_at))
            .fetch_one(executor)
            .await
            .map(Into::into)
            .map_err(db_error)
        }
    };
}
pub(in crate::store) use impl_oauth_store;

/// The sqlx database of a store type, so shared helpers can name it
/// (implemented beside each store).
pub(in crate::store) trait HasDb {
    type Db: sqlx::Database;
}
