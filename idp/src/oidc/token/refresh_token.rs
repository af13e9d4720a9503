//! The refresh token grant (RFC 6749 section 6) with rotation: each use
//! returns a new refresh token and retires the old one. Presenting a retired
//! token again means it was stolen or replayed: the whole family is revoked
//! (OAuth 2.0 Security BCP 4.14), unless it comes back within the configured
//! grace window.

use serde_json::json;

use super::form::TokenForm;
use super::grant::{Issued, active_user, invalid_grant};
use crate::crypto::sha256_hex;
use crate::domain::AuditKind;
use crate::oidc::client_auth::AuthenticatedClient;
use crate::oidc::error::{OAuthCode, OAuthError, oauth, required};
use crate::oidc::issue::{self, Authentication, Release, TokenResponse};
use crate::web::client_meta::ClientMeta;
use crate::web::{AppState, audit};

pub async fn exchange(
    state: &AppState,
    meta: &ClientMeta,
    client: &AuthenticatedClient,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let presented = required(&form.refresh_token, "refresh_token")?;
    let now = state.clock.now();
    let Some(old) = state
        .store
        .refresh_token_by_hash(&sha256_hex(presented))
        .await?
    else {
        return Err(invalid_grant("the refresh token is invalid"));
    };
    let c = &client.client;
    if old.client_id != c.id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if old.revoked_at.is_some() {
        return Err(invalid_grant("the refresh token was revoked"));
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
            AuditKind::RefreshTokenReused,
            Some(&old.user_id),
            Some(&c.id),
            json!({ "family": old.family_id }),
        )
        .await;
        return Err(invalid_grant(
            "the refresh token was already used; its whole family is revoked",
        ));
    }
    if old.expires_at <= now || old.family_expires_at <= now {
        return Err(invalid_grant("the refresh token has expired"));
    }
    let user = active_user(state, &old.user_id).await?;
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
            .unwrap_or_else(|| crate::signin::acr::ACR_PASSWORD.to_owned()),
    };
    let family_release = Release {
        scopes: &old.scopes,
        claims: &old.claims,
    };
    let (token, record) = issue::refresh_token(
        state,
        &c.id,
        &user.id,
        family_release,
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
        return Err(invalid_grant(
            "the refresh token was already used; its whole family is revoked",
        ));
    }
    let release = Release {
        scopes: &scopes,
        claims: &old.claims,
    };
    let issued = Issued::for_user(state, c, &user, release, None, &auth).await?;
    Ok(issued.response(state, Some(token)))
}
