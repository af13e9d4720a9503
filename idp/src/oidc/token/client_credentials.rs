//! The client credentials grant (RFC 6749 4.4): a confidential client acting
//! for itself. No user, so no ID token and no refresh token.

use super::form::TokenForm;
use super::grant::Issued;
use crate::domain::ClientKind;
use crate::oidc::client_auth::AuthenticatedClient;
use crate::oidc::error::{OAuthCode, OAuthError, oauth};
use crate::oidc::issue::TokenResponse;
use crate::web::AppState;

/// Scopes that describe a person and make no sense without one.
const USER_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub async fn exchange(
    state: &AppState,
    client: &AuthenticatedClient,
    form: &TokenForm,
) -> Result<TokenResponse, OAuthError> {
    let c = &client.client;
    if c.kind != ClientKind::Confidential {
        return Err(oauth(
            OAuthCode::UnauthorizedClient,
            "public clients cannot use client_credentials",
        ));
    }
    let allowed: Vec<&String> = c
        .scopes
        .iter()
        .filter(|s| !USER_SCOPES.contains(&s.as_str()))
        .collect();
    let scopes: Vec<String> = match form.scope.as_deref() {
        None => allowed.iter().map(|s| s.to_string()).collect(),
        Some(requested) => {
            let mut granted = Vec::new();
            for s in requested.split_whitespace() {
                if !allowed.iter().any(|a| a.as_str() == s) {
                    return Err(oauth(
                        OAuthCode::InvalidScope,
                        format!("scope {s} is not available to this client"),
                    ));
                }
                granted.push(s.to_owned());
            }
            granted
        }
    };
    Ok(Issued::for_client(state, c, &scopes)?.response(state, None))
}
