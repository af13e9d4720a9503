//! The `client` table: registered relying parties.

use sqlx::FromRow;
use sqlx::types::Json;

use super::{Ts, corrupt};
use crate::domain::{ClientId, RedirectUri};
use crate::store::{Client, Error};

#[derive(FromRow)]
pub(in crate::store) struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: Option<String>,
    kind: String,
    redirect_uris: Json<Vec<String>>,
    post_logout_redirect_uris: Json<Vec<String>>,
    first_party: bool,
    theme: Option<String>,
    grant_types: Json<Vec<String>>,
    scopes: Json<Vec<String>>,
    id_token_alg: String,
    require_mfa: bool,
    require_pkce: bool,
    external_id_claim: Option<String>,
    created_at: Ts,
    updated_at: Ts,
}

impl TryFrom<ClientRow> for Client {
    type Error = Error;
    fn try_from(r: ClientRow) -> Result<Self, Error> {
        let grants = r
            .grant_types
            .0
            .iter()
            .map(|g| g.parse())
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt("grant type", e))?;
        Ok(Client {
            id: ClientId::from_trusted(r.client_id),
            name: r.name,
            secret_hash: r.secret_hash,
            kind: r.kind.parse().map_err(|e| corrupt("client kind", e))?,
            redirect_uris: r
                .redirect_uris
                .0
                .into_iter()
                .map(RedirectUri::from_trusted)
                .collect(),
            post_logout_redirect_uris: r
                .post_logout_redirect_uris
                .0
                .into_iter()
                .map(RedirectUri::from_trusted)
                .collect(),
            first_party: r.first_party,
            theme: r.theme,
            grant_types: grants,
            scopes: r.scopes.0,
            id_token_alg: r
                .id_token_alg
                .parse()
                .map_err(|e| corrupt("id token alg", e))?,
            require_mfa: r.require_mfa,
            require_pkce: r.require_pkce,
            external_id_claim: r.external_id_claim,
            created_at: r.created_at.into(),
            updated_at: r.updated_at.into(),
        })
    }
}

pub(in crate::store) fn strings<T>(items: &[T], f: impl Fn(&T) -> &str) -> Json<Vec<String>> {
    Json(items.iter().map(|i| f(i).to_owned()).collect())
}

/// Implements [`ClientStore`](crate::store::ClientStore) for a store with a `pool` field.
macro_rules! impl_client_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl $crate::store::ClientStore for $store {
            async fn create_client(
                &self,
                c: $crate::store::NewClient,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<$crate::store::Client> {
                use $crate::store::sql::client::{ClientRow, strings};
                let row = sqlx::query_as::<_, ClientRow>(
                    "insert into client (client_id, name, secret_hash, kind, redirect_uris, post_logout_redirect_uris,
                         first_party, theme, grant_types, scopes, id_token_alg, require_mfa, require_pkce, external_id_claim, created_at, updated_at)
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $15, $13, $13)
                     returning client_id, name, secret_hash, kind, redirect_uris, post_logout_redirect_uris,
                         first_party, theme, grant_types, scopes, id_token_alg, require_mfa, require_pkce, external_id_claim, created_at, updated_at",
                )
                .bind(c.id.as_str())
                .bind(&c.name)
                .bind(&c.secret_hash)
                .bind(c.kind.as_str())
                .bind(strings(&c.redirect_uris, |u| u.as_str()))
                .bind(strings(&c.post_logout_redirect_uris, |u| u.as_str()))
                .bind(c.first_party)
                .bind(&c.theme)
                .bind(strings(&c.grant_types, |g| g.as_str()))
                .bind(strings(&c.scopes, |s| s.as_str()))
                .bind(c.id_token_alg.as_str())
                .bind(c.require_mfa)
                .bind($crate::store::sql::Ts(now))
                .bind(c.require_pkce)
                .bind(&c.external_id_claim)
                .fetch_one(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?;
                row.try_into()
            }

            async fn client_by_id(
                &self,
                id: &$crate::domain::ClientId,
            ) -> $crate::store::Result<Option<$crate::store::Client>> {
                sqlx::query_as::<_, $crate::store::sql::client::ClientRow>(
                    "select client_id, name, secret_hash, kind, redirect_uris, post_logout_redirect_uris,
                         first_party, theme, grant_types, scopes, id_token_alg, require_mfa, require_pkce, external_id_claim, created_at, updated_at
                     from client where client_id = $1",
                )
                .bind(id.as_str())
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?
                .map(TryInto::try_into)
                .transpose()
            }

            async fn list_clients(&self) -> $crate::store::Result<Vec<$crate::store::Client>> {
                sqlx::query_as::<_, $crate::store::sql::client::ClientRow>(
                    "select client_id, name, secret_hash, kind, redirect_uris, post_logout_redirect_uris,
                         first_party, theme, grant_types, scopes, id_token_alg, require_mfa, require_pkce, external_id_claim, created_at, updated_at
                     from client order by client_id",
                )
                .fetch_all(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?
                .into_iter()
                .map(TryInto::try_into)
                .collect()
            }

            async fn delete_client(
                &self,
                id: &$crate::domain::ClientId,
            ) -> $crate::store::Result<bool> {
                let done = sqlx::query("delete from client where client_id = $1")
                    .bind(id.as_str())
                    .execute(&mut *self.pool.conn().await?)
                    .await
                    .map_err($crate::store::sql::db_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn update_client(
                &self,
                c: $crate::store::NewClient,
                expected_updated_at: time::OffsetDateTime,
                now: time::OffsetDateTime,
            ) -> $crate::store::Result<Option<$crate::store::Client>> {
                use $crate::store::sql::client::{ClientRow, strings};
                sqlx::query_as::<_, ClientRow>(
                    "update client set name = $2, secret_hash = $3, redirect_uris = $4, post_logout_redirect_uris = $5,
                         first_party = $6, theme = $7, grant_types = $8, scopes = $9, id_token_alg = $10,
                         require_mfa = $11, require_pkce = $14, external_id_claim = $15, updated_at = $12
                     where client_id = $1 and updated_at = $13
                     returning client_id, name, secret_hash, kind, redirect_uris, post_logout_redirect_uris,
                         first_party, theme, grant_types, scopes, id_token_alg, require_mfa, require_pkce, external_id_claim, created_at, updated_at",
                )
                .bind(c.id.as_str())
                .bind(&c.name)
                .bind(&c.secret_hash)
                .bind(strings(&c.redirect_uris, |u| u.as_str()))
                .bind(strings(&c.post_logout_redirect_uris, |u| u.as_str()))
                .bind(c.first_party)
                .bind(&c.theme)
                .bind(strings(&c.grant_types, |g| g.as_str()))
                .bind(strings(&c.scopes, |s| s.as_str()))
                .bind(c.id_token_alg.as_str())
                .bind(c.require_mfa)
                .bind($crate::store::sql::Ts(now))
                .bind($crate::store::sql::Ts(expected_updated_at))
                .bind(c.require_pkce)
                .bind(&c.external_id_claim)
                .fetch_optional(&mut *self.pool.conn().await?)
                .await
                .map_err($crate::store::sql::db_error)?
                .map(TryInto::try_into)
                .transpose()
            }
        }
    };
}
pub(in crate::store) use impl_client_store;
