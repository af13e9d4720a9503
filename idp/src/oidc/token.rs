//! `POST /token` (RFC 6749 section 3.2): authenticates the client and hands
//! over to the grant. Every answer carries `Cache-Control: no-store`.

mod authorization_code;
mod client_credentials;
mod refresh_token;

use axum::Form;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::client_auth::authenticate;
use super::error::{OAuthCode, OAuthError, oauth};
use super::issue::TokenResponse;
use crate::domain::GrantType;
use crate::web::AppState;
use crate::web::client_meta::ClientMeta;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    match handle(&state, &headers, &meta, body).await {
        Ok(tokens) => {
            let mut response = Json(tokens).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    meta: &ClientMeta,
    body: Result<Form<TokenForm>, FormRejection>,
) -> Result<TokenResponse, OAuthError> {
    let Form(form) = body.map_err(|_| {
        oauth(
            OAuthCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        )
    })?;
    let client = authenticate(
        state,
        headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    )
    .await?;
    let grant = match form.grant_type.as_deref() {
        None => return Err(oauth(OAuthCode::InvalidRequest, "grant_type is required")),
        Some(g) => g.parse::<GrantType>().map_err(|_| {
            oauth(
                OAuthCode::UnsupportedGrantType,
                format!("grant_type {g} is not supported"),
            )
        })?,
    };
    if !client.client.grant_types.contains(&grant) {
        return Err(oauth(
            OAuthCode::UnauthorizedClient,
            format!("this client may not use {}", grant.as_str()),
        ));
    }
    match grant {
        GrantType::AuthorizationCode => {
            authorization_code::exchange(state, meta, &client, &form).await
        }
        GrantType::RefreshToken => refresh_token::exchange(state, meta, &client, &form).await,
        GrantType::ClientCredentials => client_credentials::exchange(state, &client, &form).await,
    }
}
