//! The pending authorization request (OIDC Core 3.1.2.1) as validated at
//! `/authorize`, kept in the ephemeral store under a random id while the
//! person signs in and consents. It belongs to the browser that started it
//! (`web::browser`): [`load`] is the one way to read it, for every step.

use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use crate::domain::Token;
use crate::domain::{ClientId, RequestedClaims, UserId};
use crate::ephemeral::Key;
use crate::store::Client;
use crate::web::{AppError, AppState, browser};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// S256 challenge (RFC 7636).
    pub code_challenge: Option<String>,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub prompt_none: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Unix seconds. Read by nothing now (a sign-in is bound to its
    /// request instead, `SessionData::signed_in_for`), written so that a
    /// node of the previous release still reads this request.
    pub created_at: i64,
    /// Who approved the scopes on the consent page for this request: the
    /// approval counts for that user alone.
    #[serde(default)]
    pub consented_by: Option<UserId>,
    /// SHA-256 of the browser binding of the browser that started the
    /// request (`web::browser`): no other browser can continue it.
    #[serde(default)]
    pub browser: String,
    /// The client prefers the second step: the first `acr_values` this
    /// provider knows is `2` (OIDC Core 3.1.2.1: a voluntary list in order
    /// of preference). Asked when the account has an authenticator, never
    /// enrolled for, never failing the request.
    #[serde(default, alias = "acr_mfa")]
    pub prefers_mfa: bool,
    /// The `acr` values an essential `acr` claim request (OIDC Core
    /// 5.5.1.1, the `claims` parameter) accepts: met, or the request fails
    /// with `unmet_authentication_requirements`. `None`: not essential.
    #[serde(default)]
    pub essential_acr: Option<Vec<String>>,
    /// The held claims the `claims` parameter names (OIDC Core 5.5), only
    /// those the client is registered for: released with the tokens as if
    /// their scopes had been asked for.
    #[serde(default)]
    pub claims: RequestedClaims,
}

/// Under the SHA-256 of the request id (the browser carries the id in its
/// URLs): a copy of the store cannot resume anyone's request.
pub fn request_key(id: &str) -> Key<AuthRequest> {
    crate::ephemeral::keys::secret("authreq", id)
}

/// A pending request as one HTTP request reads it: loaded once, for the
/// browser that started it, with its client.
#[derive(Debug, Clone)]
pub struct PendingRequest {
    /// The id the browser carries (`req`).
    pub id: String,
    pub request: AuthRequest,
    pub client: Client,
}

impl PendingRequest {
    /// Whether `user` approved this request on the consent page (an
    /// approval by whoever else used this browser counts for nobody else).
    pub fn consented_by(&self, user: &UserId) -> bool {
        self.request.consented_by.as_ref() == Some(user)
    }
}

/// The pending request `id`, for the browser that started it: `None` when
/// unknown, expired, started in another browser, or its client is gone.
pub async fn load(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
) -> Result<Option<PendingRequest>, AppError> {
    if Token::parse(id).is_none() {
        return Ok(None);
    }
    let request: Option<AuthRequest> = state.ephemeral.get(&request_key(id)).await?;
    let Some(request) =
        request.filter(|r| browser::matches(jar, state.config.server.dev_mode, &r.browser))
    else {
        return Ok(None);
    };
    let Some(client) = state.clients.get(&request.client_id).await? else {
        return Ok(None);
    };
    Ok(Some(PendingRequest {
        id: id.to_owned(),
        request,
        client,
    }))
}

/// [`load`] for a `req` that may be absent or empty.
pub async fn load_opt(
    state: &AppState,
    jar: &CookieJar,
    id: Option<&str>,
) -> Result<Option<PendingRequest>, AppError> {
    match id.filter(|r| !r.is_empty()) {
        Some(id) => load(state, jar, id).await,
        None => Ok(None),
    }
}

/// Stores a new or changed request for the configured lifetime.
pub async fn save(state: &AppState, id: &str, request: &AuthRequest) -> Result<(), AppError> {
    let ttl = std::time::Duration::from_secs(state.config.tokens.auth_request_ttl_secs);
    state.ephemeral.put(&request_key(id), request, ttl).await?;
    Ok(())
}

/// Ends it (answered with an error, or refused).
pub async fn delete(state: &AppState, id: &str) -> Result<(), AppError> {
    state.ephemeral.delete(&request_key(id)).await?;
    Ok(())
}

/// Takes it for good: `false` when it was already taken (single use).
pub async fn take(state: &AppState, id: &str) -> Result<bool, AppError> {
    Ok(state.ephemeral.take(&request_key(id)).await?.is_some())
}
