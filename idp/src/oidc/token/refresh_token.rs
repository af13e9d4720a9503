//! The refresh token grant (RFC 6749 section 6) with rotation: each use
//! returns a new refresh token and retires the old one. Presenting a retired
//! token again means it was stolen or replayed: the whole family is revoked
//! (OAuth 2.0 Security BCP 4.14), unless it comes back within the configured
//! grace window.

use serde_json::json;

use super::TokenForm;
use crate::crypto::sha256_hex;
use crate::oidc::client_auth::AuthenticatedClient;
use crate::oidc::error::{OAuthCode, OAuthError, oauth};
use crate::oidc::issue::{self, Authentication, TokenResponse};
use crate::web::client_meta::ClientMeta;
use crate::web::{AppState, audit};

fn bad_grant(description: &str) -> OAuthError {
    oauth(OAuthCode::InvalidGrant, description)
}

pub async fn exchange(
    state: &AppState,
    meta: &ClientMeta,
    client: &AuthenticatedClient,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let presented = form
        .refresh_token
        .as_deref()
        .ok_or_else(|| oauth(OAuthCode::InvalidRequest, "refresh_token is required"))?;
    let now = state.clock.now();
    let Some(old) = state
        .store
        .refresh_token_by_hash(&sha256_hex(presented))
        .await?
    else {
        return Err(bad_grant("the refresh token is invalid"));
    };
    let c = &client.client;
    if old.client_id != c.id {
        return Err(bad_grant("the refresh token was issued to another client"));
    }
    if old.revoked_at.is_some() {
        return Err(bad_grant("the refresh token was revoked"));
    }
    let grace = time::Duration::seconds(state.config.tokens.refresh_reuse_grace_secs as i64);
    if let Some(rotated) = old.rotated_at
        && (now - rotated >= grace || grace.is_zero())
    {
        state
            .store
            .revoke_refresh_family(&old.family_id, now)
            .await?;
        audit::record(
            state,
            meta,
            "refresh_token.reused",
            Some(&old.user_id),
            Some(&c.id),
            json!({ "family": old.family_id }),
        )
        .await;
        return Err(bad_grant(
            "the refresh token was already used; its whole family is revoked",
        ));
    }
    if old.expires_at <= now || old.family_expires_at <= now {
        return Err(bad_grant("the refresh token has expired"));
    }
    let user = state
        .store
        .user_by_id(&old.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| bad_grant("the user is no longer active"))?;
    let scopes = match form.scope.as_deref() {
        None => old.scopes.clone(),
        Some(requested) => {
            let asked: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
            if let Some(extra) = asked.iter().find(|s| !old.scopes.contains(s)) {
                return Err(oauth(
                    OAuthCode::InvalidScope,
                    format!("scope {extra} was not granted"),
                ));
            }
            asked
        }
    };
    let auth = Authentication {
        auth_time: old.auth_time.unix_timestamp(),
        amr: old.amr.clone(),
        acr: old
            .acr
            .clone()
            .unwrap_or_else(|| crate::oidc::authorize::ACR_PASSWORD.to_owned()),
    };
    let (token, record) = issue::refresh_token(
        state,
        &c.id,
        &user.id,
        &old.scopes,
        &auth,
        Some((&old.family_id, old.family_expires_at)),
    );
    let stored = if old.rotated_at.is_some() {
        // Within the grace window: answer again, the family stays.
        Some(state.store.insert_refresh_token(record, now).await?)
    } else {
        state
            .store
            .rotate_refresh_token(&old.id, record, now)
            .await?
    };
    if stored.is_none() {
        // Used concurrently a moment ago: treat as reuse.
        state
            .store
            .revoke_refresh_family(&old.family_id, now)
            .await?;
        return Err(bad_grant(
            "the refresh token was already used; its whole family is revoked",
        ));
    }
    let (access_token, access) =
        issue::access_token(state, &c.id, user.id.as_str(), &scopes, Some(&auth))?;
    let id_token = if scopes.iter().any(|s| s == "openid") {
        Some(issue::id_token(
            state,
            c,
            &user,
            &scopes,
            None,
            &auth,
            &access_token,
        )?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.config.tokens.access_token_ttl_secs,
        scope: access.scope,
        id_token,
        refresh_token: Some(token),
    })
}
