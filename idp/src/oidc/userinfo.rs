//! `/userinfo` (OIDC Core 5.3): the signed-in person's claims, by scope, for
//! a bearer access token. GET and POST.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::bearer::{active_access_token, bearer, invalid_token};
use super::error::OAuthError;
use super::external_id;
use crate::domain::{ClientId, UserId};
use crate::web::AppState;

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match claims(&state, &headers).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn claims(state: &AppState, headers: &HeaderMap) -> Result<Value, OAuthError> {
    let token =
        bearer(headers).ok_or_else(|| invalid_token("a bearer access token is required"))?;
    let access = active_access_token(state, token)
        .await?
        .ok_or_else(|| invalid_token("the access token is invalid, expired or revoked"))?;
    let scopes: Vec<&str> = access.scope.split_whitespace().collect();
    if !scopes.contains(&"openid") {
        return Err(invalid_token(
            "the access token was not issued for OpenID Connect",
        ));
    }
    let user_id = UserId::parse(&access.sub).map_err(|_| invalid_token("the token has no user"))?;
    let user = state
        .users
        .get_or_load(&user_id, state.store.user_by_id(&user_id))
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_token("the user is no longer active"))?;
    let mut body = Map::new();
    body.insert("sub".into(), json!(user.id.as_str()));
    if scopes.contains(&"email") {
        body.insert("email".into(), json!(user.email.as_str()));
        body.insert("email_verified".into(), json!(user.email_verified));
    }
    if scopes.contains(&"profile") {
        body.insert("name".into(), json!(user.name));
        body.insert("updated_at".into(), json!(user.updated_at.unix_timestamp()));
    }
    // The account's id in the portal of the client the token was issued to.
    if let Ok(client_id) = ClientId::parse(&access.client_id)
        && let Some(client) = state.clients.get(&client_id).await?
        && let Some((claim, id)) =
            external_id::claim(state.store.as_ref(), &client, &user.id).await?
    {
        body.insert(claim, json!(id));
    }
    Ok(Value::Object(body))
}
