//! The authorization code grant (RFC 6749 4.1.3, RFC 7636 4.6): the code is
//! taken atomically (single use), must belong to this client and redirect
//! URI, and must match the PKCE challenge. A second use fails and revokes
//! what the first one issued (RFC 6749 4.1.2).

use serde_json::json;

use super::form::TokenForm;
use super::grant::{Issued, active_user, invalid_grant};
use crate::crypto::sha256_hex;
use crate::domain::AuditKind;
use crate::oidc::client_auth::AuthenticatedClient;
use crate::oidc::error::{OAuthError, required};
use crate::oidc::issue::{self, Authentication, Release, TokenResponse};
use crate::oidc::pkce;
use crate::oidc::request::{RedeemedCode, code_key, redeemed_key};
use crate::web::client_meta::ClientMeta;
use crate::web::{AppState, audit};

pub async fn exchange(
    state: &AppState,
    meta: &ClientMeta,
    client: &AuthenticatedClient,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let code = required(&form.code, "code")?;
    let code_hash = sha256_hex(code);
    let c = &client.client;
    // Whose code it is comes first: another client presenting a code (live
    // or used) learns nothing and changes nothing, so it can neither burn
    // the code nor revoke what its rightful client was issued. The get is
    // only a filter; the take below is what makes the code single use.
    let Some(peek) = state.ephemeral.get(&code_key(&code_hash)).await? else {
        return replayed(state, meta, c, &code_hash).await;
    };
    if peek.client_id != c.id {
        return Err(invalid_grant(
            "the authorization code is invalid or expired",
        ));
    }
    let Some(grant) = state.ephemeral.take(&code_key(&code_hash)).await? else {
        // Redeemed by a concurrent request of the same client meanwhile.
        return replayed(state, meta, c, &code_hash).await;
    };
    if grant.client_id != c.id {
        return Err(invalid_grant(
            "the authorization code is invalid or expired",
        ));
    }
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err(invalid_grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (&grant.code_challenge, form.code_verifier.as_deref()) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::s256_matches(verifier, challenge) {
                return Err(invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    let user = active_user(state, &grant.user_id).await?;
    let auth = Authentication {
        auth_time: grant.auth_time,
        amr: grant.amr.clone(),
        acr: grant.acr.clone(),
    };
    let release = Release {
        scopes: &grant.scopes,
        claims: &grant.claims,
    };
    let issued = Issued::for_user(state, c, &user, release, grant.nonce.as_deref(), &auth).await?;
    let mut refresh = None;
    let mut family = None;
    if grant.scopes.iter().any(|s| s == "offline_access") {
        let (token, record) = issue::refresh_token(state, &c.id, &user.id, release, &auth, None);
        family = Some(record.family_id.clone());
        state
            .store
            .insert_refresh_token(record, state.clock.now())
            .await?;
        refresh = Some(token);
    }
    let redeemed = RedeemedCode {
        client_id: Some(c.id.clone()),
        access_jti: issued.access.jti.clone(),
        access_exp: issued.access.exp,
        refresh_family: family,
    };
    let ttl = std::time::Duration::from_secs(state.config.tokens.access_token_ttl_secs);
    state
        .ephemeral
        .put(&redeemed_key(&code_hash), &redeemed, ttl)
        .await?;
    audit::record(
        state,
        meta,
        AuditKind::TokenIssued,
        Some(&user.id),
        Some(&c.id),
        json!({ "grant": "authorization_code", "scope": issued.access.scope }),
    )
    .await;
    Ok(issued.response(state, refresh))
}

/// A code that is not (or no longer) live: if its own client used it
/// before, this second use revokes what the first one issued.
async fn replayed(
    state: &AppState,
    meta: &ClientMeta,
    client: &crate::store::Client,
    code_hash: &str,
) -> Result<TokenResponse, OAuthError> {
    let key = redeemed_key(code_hash);
    let mine = |first: &RedeemedCode| first.client_id.as_ref().is_none_or(|id| *id == client.id);
    if let Some(first) = state.ephemeral.get(&key).await?
        && mine(&first)
        && let Some(first) = state.ephemeral.take(&key).await?
    {
        revoke_first_use(state, meta, &first).await?;
        return Err(invalid_grant(
            "the authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    Err(invalid_grant(
        "the authorization code is invalid or expired",
    ))
}

async fn revoke_first_use(
    state: &AppState,
    meta: &ClientMeta,
    first: &RedeemedCode,
) -> Result<(), OAuthError> {
    let now = state.clock.now();
    crate::oidc::revocation::revoke(state, &first.access_jti, first.access_exp).await?;
    if let Some(family) = &first.refresh_family {
        state.store.revoke_refresh_family(family, now).await?;
    }
    audit::record(
        state,
        meta,
        AuditKind::TokenCodeReplayed,
        None,
        None,
        json!({}),
    )
    .await;
    Ok(())
}
