//! `/introspect` (RFC 7662): whether a token is active, for the client it
//! was issued to. Works for access tokens (JWT) and refresh tokens (opaque).
//! Anything unknown, expired, revoked or another client's is `active: false`.

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::bearer::active_access_token;
use super::client_auth::{AuthMethod, AuthenticatedClient, ClientForm, ClientRequest, no_store};
use super::error::{OAuthCode, OAuthError, oauth, required};
use super::response::issuer;
use crate::crypto::sha256_hex;
use crate::web::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IntrospectForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl ClientForm for IntrospectForm {
    fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }
}

pub async fn introspect(
    State(state): State<AppState>,
    ClientRequest { client, form }: ClientRequest<IntrospectForm>,
) -> Response {
    no_store(handle(&state, &client, &form).await.map(Json))
}

async fn handle(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &IntrospectForm,
) -> Result<Value, OAuthError> {
    if client.method == AuthMethod::None {
        // Introspection tells about tokens: only clients that can prove who they are.
        return Err(oauth(
            OAuthCode::InvalidClient,
            "introspection requires client authentication",
        ));
    }
    let token = required(&form.token, "token")?;
    let inactive = json!({ "active": false });
    let refresh_first = form.token_type_hint.as_deref() == Some("refresh_token");
    let looks_like_jwt = token.matches('.').count() == 2;
    if looks_like_jwt && !refresh_first {
        if let Some(claims) = active_access_token(state, token).await? {
            if claims.client_id != client.client.id.as_str() {
                return Ok(inactive);
            }
            let mut v = serde_json::to_value(&claims)
                .map_err(|_| oauth(OAuthCode::ServerError, "encoding"))?;
            if let Value::Object(map) = &mut v {
                map.insert("active".into(), json!(true));
                map.insert("token_type".into(), json!("Bearer"));
            }
            return Ok(v);
        }
        return Ok(inactive);
    }
    let Some(refresh) = state
        .store
        .refresh_token_by_hash(&sha256_hex(token))
        .await?
    else {
        return Ok(inactive);
    };
    let now = state.clock.now();
    let live = refresh.revoked_at.is_none()
        && refresh.rotated_at.is_none()
        && refresh.expires_at > now
        && refresh.family_expires_at > now;
    if !live || refresh.client_id != client.client.id {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": refresh.scopes.join(" "),
        "client_id": refresh.client_id.as_str(),
        "sub": refresh.user_id.as_str(),
        "iss": issuer(state),
        "exp": refresh.expires_at.unix_timestamp(),
        "iat": refresh.created_at.unix_timestamp(),
    }))
}
