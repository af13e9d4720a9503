//! `/revoke` (RFC 7009): a client gives up a token. Refresh tokens take
//! their whole family with them; access tokens are refused until they
//! expire. Unknown tokens (and other clients' tokens) still get 200.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::bearer::active_access_token;
use super::client_auth::authenticate;
use super::error::{OAuthCode, OAuthError, oauth};
use crate::crypto::sha256_hex;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    match handle(&state, &headers, body).await {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Form<RevokeForm>, FormRejection>,
) -> Result<(), OAuthError> {
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
    let token = form
        .token
        .as_deref()
        .ok_or_else(|| oauth(OAuthCode::InvalidRequest, "token is required"))?;
    let _ = form.token_type_hint;
    let now = state.clock.now();
    if token.matches('.').count() == 2 {
        if let Some(claims) = active_access_token(state, token).await?
            && claims.client_id == client.client.id.as_str()
        {
            super::revocation::revoke(state, &claims.jti, claims.exp).await?;
        }
        return Ok(());
    }
    if let Some(refresh) = state
        .store
        .refresh_token_by_hash(&sha256_hex(token))
        .await?
        && refresh.client_id == client.client.id
    {
        state
            .store
            .revoke_refresh_family(&refresh.family_id, now)
            .await?;
    }
    Ok(())
}
