//! Registering relying parties. Secrets are 256-bit random values generated
//! here and shown once; only their SHA-256 is stored (a slow hash adds nothing
//! to a random secret and would cap the token endpoint).

use crate::clock::Clock;
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{ClientId, ClientKind, GrantType, IdTokenAlg, RedirectUri};
use crate::store::{self, Client, NewClient, Store};

use super::request::SUPPORTED_SCOPES;

#[derive(Debug, Clone)]
pub struct ClientRegistration {
    pub id: ClientId,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub first_party: bool,
    pub theme: Option<String>,
    /// Empty: the defaults for the kind.
    pub grant_types: Vec<GrantType>,
    pub id_token_alg: IdTokenAlg,
    pub require_mfa: bool,
}

#[derive(Debug)]
pub struct RegisteredClient {
    pub client: Client,
    /// The only time the secret exists in clear; `None` for public clients.
    pub secret: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterClientError {
    #[error("a client with id {0} already exists")]
    Duplicate(ClientId),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(store::Error),
}

/// Scopes every client may ask for until per-client scopes are edited.
pub const DEFAULT_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

pub async fn register_client(
    store: &dyn Store,
    clock: &dyn Clock,
    reg: ClientRegistration,
) -> Result<RegisteredClient, RegisterClientError> {
    register_client_with_scopes(store, clock, reg, &[]).await
}

/// [`register_client`] with the scopes the client may be granted (empty:
/// [`DEFAULT_SCOPES`]); the only way to a client with the `admin` scope.
pub async fn register_client_with_scopes(
    store: &dyn Store,
    clock: &dyn Clock,
    reg: ClientRegistration,
    scopes: &[String],
) -> Result<RegisteredClient, RegisterClientError> {
    let mut granted: Vec<String> = Vec::new();
    for s in scopes {
        if !SUPPORTED_SCOPES.contains(&s.as_str()) {
            return Err(RegisterClientError::Invalid(format!(
                "unknown scope {s}; known: {}",
                SUPPORTED_SCOPES.join(", ")
            )));
        }
        if !granted.contains(s) {
            granted.push(s.clone());
        }
    }
    if granted.is_empty() {
        granted = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
    }
    let name = reg.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(RegisterClientError::Invalid(
            "a client name is 1 to 200 characters".into(),
        ));
    }
    if let Some(theme) = &reg.theme {
        let ok = (1..=64).contains(&theme.len())
            && theme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err(RegisterClientError::Invalid(
                "a theme name is 1 to 64 characters from a-z 0-9 - _".into(),
            ));
        }
    }
    let mut grants = if reg.grant_types.is_empty() {
        GrantType::defaults_for(reg.kind)
    } else {
        reg.grant_types.clone()
    };
    grants.dedup();
    if reg.kind == ClientKind::Public && grants.contains(&GrantType::ClientCredentials) {
        return Err(RegisterClientError::Invalid(
            "a public client cannot use client_credentials: it has no secret".into(),
        ));
    }
    if grants.contains(&GrantType::AuthorizationCode) && reg.redirect_uris.is_empty() {
        return Err(RegisterClientError::Invalid(
            "a client using authorization_code needs at least one redirect URI".into(),
        ));
    }
    let secret = (reg.kind == ClientKind::Confidential).then(random_token);
    let new = NewClient {
        id: reg.id.clone(),
        name,
        secret_hash: secret.as_deref().map(sha256_hex),
        kind: reg.kind,
        redirect_uris: reg.redirect_uris,
        post_logout_redirect_uris: reg.post_logout_redirect_uris,
        first_party: reg.first_party,
        theme: reg.theme,
        grant_types: grants,
        scopes: granted,
        id_token_alg: reg.id_token_alg,
        require_mfa: reg.require_mfa,
    };
    let client = store
        .create_client(new, clock.now())
        .await
        .map_err(|e| match e {
            store::Error::Conflict => RegisterClientError::Duplicate(reg.id),
            other => RegisterClientError::Store(other),
        })?;
    Ok(RegisteredClient { client, secret })
}
