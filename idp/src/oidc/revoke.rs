//! `/revoke` (RFC 7009): a client gives up a token. Refresh tokens take
//! their whole family with them; access tokens are refused until they
//! expire. Unknown tokens (and other clients' tokens) still get 200.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::bearer::active_access_token;
use super::client_auth::{AuthenticatedClient, ClientForm, ClientRequest, no_store};
use super::error::{OAuthError, required};
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

impl ClientForm for RevokeForm {
    fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }
    fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    ClientRequest { client, form }: ClientRequest<RevokeForm>,
) -> Response {
    no_store(
        handle(&state, &client, &form)
            .await
            .map(|()| StatusCode::OK),
    )
}

async fn handle(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &RevokeForm,
) -> Result<(), OAuthError> {
    let token = required(&form.token, "token")?;
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
