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
    /// Confidential clients too must use PKCE (public ones always do).
    pub require_pkce: bool,
    /// The claim carrying the account's id in this client's portal
    /// ([`super::external_id`]); `None`: not sent.
    pub external_id_claim: Option<String>,
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
    let grant_types = if reg.grant_types.is_empty() {
        GrantType::defaults_for(reg.kind)
    } else {
        reg.grant_types.clone()
    };
    let scopes = if scopes.is_empty() {
        DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
    } else {
        scopes.to_vec()
    };
    let secret = (reg.kind == ClientKind::Confidential).then(random_token);
    let new = checked(NewClient {
        id: reg.id.clone(),
        name: reg.name,
        secret_hash: secret.as_deref().map(sha256_hex),
        kind: reg.kind,
        redirect_uris: reg.redirect_uris,
        post_logout_redirect_uris: reg.post_logout_redirect_uris,
        first_party: reg.first_party,
        theme: reg.theme,
        grant_types,
        scopes,
        id_token_alg: reg.id_token_alg,
        require_mfa: reg.require_mfa,
        require_pkce: reg.require_pkce,
        external_id_claim: reg.external_id_claim,
    })
    .map_err(RegisterClientError::Invalid)?;
    let client = store
        .create_client(new, clock.now())
        .await
        .map_err(|e| match e {
            store::Error::Conflict => RegisterClientError::Duplicate(reg.id),
            other => RegisterClientError::Store(other),
        })?;
    Ok(RegisteredClient { client, secret })
}

/// The rules every registration keeps, at creation and after each edit:
/// the name is trimmed, grants and scopes lose duplicates.
fn checked(mut c: NewClient) -> Result<NewClient, String> {
    c.name = c.name.trim().to_owned();
    if c.name.is_empty() || c.name.chars().count() > 200 {
        return Err("a client name is 1 to 200 characters".into());
    }
    if let Some(theme) = &c.theme {
        let ok = (1..=64).contains(&theme.len())
            && theme
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !ok {
            return Err("a theme name is 1 to 64 characters from a-z 0-9 - _".into());
        }
    }
    let mut grants: Vec<GrantType> = Vec::new();
    for g in c.grant_types {
        if !grants.contains(&g) {
            grants.push(g);
        }
    }
    if grants.is_empty() {
        return Err("a client needs at least one grant type".into());
    }
    if c.kind == ClientKind::Public && grants.contains(&GrantType::ClientCredentials) {
        return Err("a public client cannot use client_credentials: it has no secret".into());
    }
    if grants.contains(&GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        return Err("a client using authorization_code needs at least one redirect URI".into());
    }
    c.grant_types = grants;
    let mut scopes: Vec<String> = Vec::new();
    for s in c.scopes {
        if !SUPPORTED_SCOPES.contains(&s.as_str()) {
            return Err(format!(
                "unknown scope {s}; known: {}",
                SUPPORTED_SCOPES.join(", ")
            ));
        }
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    c.scopes = scopes;
    if let Some(claim) = &c.external_id_claim {
        super::external_id::check_claim_name(claim)?;
    }
    Ok(c)
}

/// What an administrator may change on a registered client (not its id or
/// kind). `None`: unchanged.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<RedirectUri>>,
    pub post_logout_redirect_uris: Option<Vec<RedirectUri>>,
    pub first_party: Option<bool>,
    /// `Some(None)` takes the theme away (the default theme then).
    pub theme: Option<Option<String>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<String>>,
    pub id_token_alg: Option<IdTokenAlg>,
    pub require_mfa: Option<bool>,
    pub require_pkce: Option<bool>,
    /// `Some(None)` stops sending the claim.
    pub external_id_claim: Option<Option<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateClientError {
    #[error("no client has this id")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("the client was changed meanwhile; read it again")]
    Changed,
    #[error("a public client has no secret")]
    NoSecret,
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Applies `changes` to the client, under the registration rules; an edit
/// racing another one fails with [`UpdateClientError::Changed`].
pub async fn update_client(
    store: &dyn Store,
    clock: &dyn Clock,
    id: &ClientId,
    changes: ClientChanges,
) -> Result<Client, UpdateClientError> {
    let current = store
        .client_by_id(id)
        .await?
        .ok_or(UpdateClientError::NotFound)?;
    let c = as_stored(current.clone());
    let next = checked(NewClient {
        name: changes.name.unwrap_or(c.name),
        redirect_uris: changes.redirect_uris.unwrap_or(c.redirect_uris),
        post_logout_redirect_uris: changes
            .post_logout_redirect_uris
            .unwrap_or(c.post_logout_redirect_uris),
        first_party: changes.first_party.unwrap_or(c.first_party),
        theme: changes.theme.unwrap_or(c.theme),
        grant_types: changes.grant_types.unwrap_or(c.grant_types),
        scopes: changes.scopes.unwrap_or(c.scopes),
        id_token_alg: changes.id_token_alg.unwrap_or(c.id_token_alg),
        require_mfa: changes.require_mfa.unwrap_or(c.require_mfa),
        require_pkce: changes.require_pkce.unwrap_or(c.require_pkce),
        external_id_claim: changes.external_id_claim.unwrap_or(c.external_id_claim),
        ..c
    })
    .map_err(UpdateClientError::Invalid)?;
    save(store, clock, &current, next).await
}

/// A new secret for a confidential client; the old one stops working at
/// once. Returns the client and the secret, shown only now.
pub async fn rotate_client_secret(
    store: &dyn Store,
    clock: &dyn Clock,
    id: &ClientId,
) -> Result<(Client, String), UpdateClientError> {
    let current = store
        .client_by_id(id)
        .await?
        .ok_or(UpdateClientError::NotFound)?;
    if current.kind != ClientKind::Confidential {
        return Err(UpdateClientError::NoSecret);
    }
    let secret = random_token();
    let next = NewClient {
        secret_hash: Some(sha256_hex(&secret)),
        ..as_stored(current.clone())
    };
    let client = save(store, clock, &current, next).await?;
    Ok((client, secret))
}

/// The registration as stored, to write back with changes.
fn as_stored(c: Client) -> NewClient {
    NewClient {
        id: c.id,
        name: c.name,
        secret_hash: c.secret_hash,
        kind: c.kind,
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        first_party: c.first_party,
        theme: c.theme,
        grant_types: c.grant_types,
        scopes: c.scopes,
        id_token_alg: c.id_token_alg,
        require_mfa: c.require_mfa,
        require_pkce: c.require_pkce,
        external_id_claim: c.external_id_claim,
    }
}

async fn save(
    store: &dyn Store,
    clock: &dyn Clock,
    current: &Client,
    next: NewClient,
) -> Result<Client, UpdateClientError> {
    store
        .update_client(next, current.updated_at, clock.now())
        .await?
        .ok_or(UpdateClientError::Changed)
}
