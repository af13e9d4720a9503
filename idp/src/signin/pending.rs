//! The pending second step of a sign-in: the password was right (or a
//! password-only session needs stepping up), the code or the set-up of an
//! authenticator is not done yet. It lives in the
//! ephemeral store (`mfa-pending:{sha256(id)}`, `mfa.pending_ttl_secs`) under a random
//! id kept only in an HttpOnly cookie, so it belongs to that browser: no
//! session exists until the second step passes.

use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use crate::crypto::envelope::Kek;
use crate::crypto::random_token;
use crate::domain::Token;
use crate::domain::UserId;
use crate::ephemeral::{Key, keys};
use crate::store::User;
use crate::web::session;
use crate::web::{AppError, AppState};

/// The flow a second step belongs to.
#[derive(Debug, Default)]
pub struct Flow {
    /// The pending authorization request to resume afterwards.
    pub req: Option<String>,
    /// The portal whose theme the pages wear.
    pub client_id: Option<String>,
    /// The request's redirect URI, where the code pages' forms may end.
    pub return_to: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub user_id: UserId,
    pub email: String,
    /// The authorization request to resume afterwards, if any.
    pub req: Option<String>,
    /// Whose theme the pages wear.
    pub client_id: Option<String>,
    /// Where the request ends (its client's redirect URI): the code pages'
    /// forms may end there (CSP `form-action`).
    #[serde(default)]
    pub return_to: Option<String>,
    /// The user has no authenticator yet and must set one up.
    pub enrol: bool,
    /// The owner was already told about a failed code of this sign-in.
    pub failure_mailed: bool,
    /// Unix seconds after which it is void (the store's TTL says the same).
    pub expires_at: i64,
}

/// Under the SHA-256 of the cookie's id: a copy of the store resumes no
/// half-done sign-in.
fn key(id: &str) -> Key<Pending> {
    keys::secret("mfa-pending", id)
}

fn cookie_name(dev_mode: bool) -> &'static str {
    if dev_mode {
        "idp_mfa"
    } else {
        "__Host-idp_mfa"
    }
}

/// The authorization request id inside a stored half-done sign-in is a
/// bearer secret of the browser too: it is sealed with a key derived from
/// the pending id, which only the browser's cookie holds.
fn sealed(id: &str, pending: &Pending) -> Result<Pending, AppError> {
    let mut stored = pending.clone();
    if let Some(req) = &pending.req {
        let kek = Kek::derived(SEAL_PURPOSE, id).map_err(seal_error)?;
        stored.req = Some(kek.seal(SEAL_PURPOSE, req.as_bytes()).map_err(seal_error)?);
    }
    Ok(stored)
}

/// The stored form opened again; `None` if it does not open (altered).
fn opened(id: &str, mut stored: Pending) -> Option<Pending> {
    if let Some(req) = &stored.req {
        let kek = Kek::derived(SEAL_PURPOSE, id).ok()?;
        let plain = kek.open(SEAL_PURPOSE, req).ok()?;
        stored.req = Some(String::from_utf8(plain).ok()?);
    }
    Some(stored)
}

const SEAL_PURPOSE: &str = "mfa-pending req";

fn seal_error(e: crate::crypto::envelope::EnvelopeError) -> AppError {
    AppError::Internal(format!("sealing a pending sign-in: {e}"))
}

/// Starts the second step for `user` in this browser (`enrol`: an
/// authenticator is set up first) and returns the jar carrying its cookie.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    enrol: bool,
    flow: Flow,
) -> Result<CookieJar, AppError> {
    begin(
        state,
        jar,
        Pending {
            user_id: user.id.clone(),
            email: user.email.as_str().to_owned(),
            req: flow.req,
            client_id: flow.client_id,
            return_to: flow.return_to,
            enrol,
            failure_mailed: false,
            expires_at: 0,
        },
    )
    .await
}

/// Stores a new half-done sign-in and returns the jar carrying its cookie.
async fn begin(
    state: &AppState,
    jar: CookieJar,
    mut pending: Pending,
) -> Result<CookieJar, AppError> {
    let dev = state.config.server.dev_mode;
    if let Some(old) = jar.get(cookie_name(dev)) {
        state.ephemeral.delete(&key(old.value())).await?;
    }
    let ttl = state.config.mfa.pending_ttl_secs;
    pending.expires_at = state.clock.now().unix_timestamp() + i64::try_from(ttl).unwrap_or(300);
    let id = random_token();
    state
        .ephemeral
        .put(
            &key(&id),
            &sealed(&id, &pending)?,
            std::time::Duration::from_secs(ttl),
        )
        .await?;
    Ok(jar.add(session::cookie(cookie_name(dev), id, dev)))
}

/// The browser's half-done sign-in, if it has a live one.
pub async fn load(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(String, Pending)>, AppError> {
    let Some(id) = jar
        .get(cookie_name(state.config.server.dev_mode))
        .map(|c| c.value().to_owned())
        .filter(|id| Token::parse(id).is_some())
    else {
        return Ok(None);
    };
    let pending = state.ephemeral.get(&key(&id)).await?;
    Ok(pending
        .and_then(|p| opened(&id, p))
        .filter(|p| p.expires_at > state.clock.now().unix_timestamp())
        .map(|p| (id, p)))
}

/// Writes changes back, keeping the original expiry.
pub async fn save(state: &AppState, id: &str, pending: &Pending) -> Result<(), AppError> {
    let left = pending.expires_at - state.clock.now().unix_timestamp();
    if let Ok(secs) = u64::try_from(left)
        && secs > 0
    {
        state
            .ephemeral
            .put(
                &key(id),
                &sealed(id, pending)?,
                std::time::Duration::from_secs(secs),
            )
            .await?;
    }
    Ok(())
}

/// Ends it (done, or abandoned) and removes the cookie.
pub async fn finish(state: &AppState, jar: CookieJar, id: &str) -> Result<CookieJar, AppError> {
    state.ephemeral.delete(&key(id)).await?;
    let dev = state.config.server.dev_mode;
    Ok(jar.remove(session::cookie(cookie_name(dev), String::new(), dev)))
}
