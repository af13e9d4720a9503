//! `POST /token` (RFC 6749 section 3.2): authenticates the client and hands
//! over to the grant. Every answer carries `Cache-Control: no-store`.

mod authorization_code;
mod client_credentials;
mod form;
mod grant;
mod refresh_token;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::client_auth::{AuthenticatedClient, ClientRequest, no_store};
use super::error::{OAuthCode, OAuthError, oauth, required};
use super::issue::TokenResponse;
use crate::domain::GrantType;
use crate::web::AppState;
use crate::web::client_meta::ClientMeta;
use form::TokenForm;

pub async fn token(
    State(state): State<AppState>,
    meta: ClientMeta,
    ClientRequest { client, form }: ClientRequest<TokenForm>,
) -> Response {
    let result = handle(&state, &meta, &client, &form).await;
    no_store(result.map(|tokens| {
        (
            [(header::PRAGMA, HeaderValue::from_static("no-cache"))],
            Json(tokens),
        )
    }))
}

async fn handle(
    state: &AppState,
    meta: &ClientMeta,
    client: &AuthenticatedClient,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let grant_type = required(&form.grant_type, "grant_type")?;
    let grant = grant_type.parse::<GrantType>().map_err(|_| {
        oauth(
            OAuthCode::UnsupportedGrantType,
            format!("grant_type {grant_type} is not supported"),
        )
    })?;
    if !client.client.grant_types.contains(&grant) {
        return Err(oauth(
            OAuthCode::UnauthorizedClient,
            format!("this client may not use {}", grant.as_str()),
        ));
    }
    match grant {
        GrantType::AuthorizationCode => {
            authorization_code::exchange(state, meta, client, form).await
        }
        GrantType::RefreshToken => refresh_token::exchange(state, meta, client, form).await,
        GrantType::ClientCredentials => client_credentials::exchange(state, client, form).await,
    }
}
