//! `/userinfo` (OIDC Core 5.3): the signed-in person's claims, by scope and
//! as asked for by name (the `claims` parameter, 5.5), for a bearer access
//! token. GET and POST; a POST may carry the token in a
//! form-encoded body instead of the header (RFC 6750 2.2), never in both
//! (3.1: `invalid_request`). A token in the URI's query (2.3) is not taken:
//! URIs end up in logs.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::bearer::{active_access_token, bearer, invalid_token};
use super::error::{OAuthCode, OAuthError, oauth};
use super::external_id;
use crate::domain::{Claim, ClientId, UserId};
use crate::web::AppState;

pub async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = bearer(&headers).map(str::to_owned);
    answer(&state, token).await
}

/// POST: the token in the `Authorization` header, or as `access_token` in
/// an `application/x-www-form-urlencoded` body.
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    let in_body: Vec<String> = if form {
        url::form_urlencoded::parse(&body)
            .filter(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .collect()
    } else {
        Vec::new()
    };
    let token = match (bearer(&headers), in_body.as_slice()) {
        (Some(_), [_, ..]) => {
            return oauth(
                OAuthCode::InvalidRequest,
                "the access token is sent both in the Authorization header and in the body; send it once",
            )
            .into_response();
        }
        (None, [_, _, ..]) => {
            return oauth(OAuthCode::InvalidRequest, "access_token is repeated").into_response();
        }
        (Some(header_token), []) => Some(header_token.to_owned()),
        (None, [one]) => Some(one.clone()),
        (None, []) => None,
    };
    answer(&state, token).await
}

async fn answer(state: &AppState, token: Option<String>) -> Response {
    match claims(state, token.as_deref()).await {
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

async fn claims(state: &AppState, token: Option<&str>) -> Result<Value, OAuthError> {
    let token = token.ok_or_else(|| invalid_token("a bearer access token is required"))?;
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
    // By scope (5.4), or asked for by name for userinfo (5.5).
    for claim in Claim::ALL {
        if !scopes.contains(&claim.scope()) && !access.userinfo_claims.contains(&claim) {
            continue;
        }
        let value = match claim {
            Claim::Email => json!(user.email.as_str()),
            Claim::EmailVerified => json!(user.email_verified),
            Claim::Name => json!(user.name),
            Claim::UpdatedAt => json!(user.updated_at.unix_timestamp()),
        };
        body.insert(claim.name().into(), value);
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
