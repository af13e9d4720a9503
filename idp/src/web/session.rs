//! Browser sessions: a random id in an HttpOnly cookie, the state in the
//! ephemeral store (`session:{sha256(id)}`), so any node serves any request
//! and a copy of the store opens no session.
//!
//! "End every session of this user" (reset, password change, admin) is one
//! write: each user has a session epoch; a session remembers the epoch it was
//! created in and is void once the epoch moved on.
//!
//! Each user also has an index of their sessions (`user-sessions:{user}`, a
//! set of the SHA-256 of each id, whose members expire with the sessions'
//! absolute lifetime), so an administrator can list them and end one. The
//! index may name sessions already gone: readers check each session and
//! prune the dead. Session ids are bearer credentials and never leave the
//! browser and this process: outside it a session is named by its [`handle`],
//! a prefix of the same hash (stable, and useless to open a session).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::client_meta::ClientMeta;
use super::{AppError, AppState};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{Token, UserId};
use crate::ephemeral::{Key, keys};
use crate::store::User;

/// Outside dev mode the `__Host-` prefix makes browsers refuse the cookie
/// unless it is Secure, host-only and for `/`: a sibling subdomain cannot plant one.
pub fn cookie_name(dev_mode: bool) -> &'static str {
    if dev_mode {
        "idp_session"
    } else {
        "__Host-idp_session"
    }
}

/// A cookie with this deployment's flags: HttpOnly, SameSite=Lax, Path=/,
/// Secure outside dev mode.
pub fn cookie(name: &'static str, value: String, dev_mode: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(!dev_mode)
        .build()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub user_id: UserId,
    /// When the user last proved who they are (unix seconds): OIDC `auth_time`.
    pub auth_time: i64,
    /// The pending authorization request this sign-in was made for (the
    /// SHA-256 of its id), if it was made in one: `prompt=login` and
    /// `max_age` are met by that sign-in for that request, whatever the
    /// clocks say, and never by an earlier one.
    #[serde(default)]
    pub signed_in_for: Option<String>,
    /// How: `pwd`, later `otp`.
    pub amr: Vec<String>,
    pub created: i64,
    pub last_seen: i64,
    pub epoch: u64,
    /// Where the sign-in came from (absent in sessions older than this field).
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    /// The portal (client id) this session began from: a flow's client, or
    /// the client of the themed sign-in page. Its pages and mails wear that
    /// portal's look until the person signs out (see `web::portal`).
    #[serde(default)]
    pub portal: Option<String>,
    /// The portal came from a pending flow's client (the server's record),
    /// not from a themed page's marker: only then does it choose rules
    /// (password policy, link lifetimes); a marker chooses the look alone.
    #[serde(default)]
    pub portal_from_flow: bool,
}

impl SessionData {
    /// Whether this session's sign-in was made for the pending request `id`.
    pub fn signed_in_for(&self, request_id: &str) -> bool {
        self.signed_in_for
            .as_deref()
            .is_some_and(|hash| hash == sha256_hex(request_id))
    }
}

/// Where a session begins: the portal, whether a pending flow named it,
/// and the pending request the sign-in was made for. No `Default`: every
/// sign-in says which request it was made for, or that it was none.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub portal: Option<&'a str>,
    pub from_flow: bool,
    /// The id of the pending authorization request (`req`) this browser
    /// signed in for, if any.
    pub request: Option<&'a str>,
}

/// The public name of a session: 16 hex digits of the SHA-256 of its id,
/// enough to tell one user's sessions apart, useless to open one.
pub fn handle(session_id: &str) -> String {
    handle_of_hash(&sha256_hex(session_id))
}

fn handle_of_hash(id_hash: &str) -> String {
    id_hash.chars().take(16).collect()
}

fn idle(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(state.config.session.idle_minutes * 60)
}

fn absolute(state: &AppState) -> time::Duration {
    time::Duration::hours(state.config.session.absolute_hours as i64)
}

/// Starts a new session (a new id: never reuse one across a sign-in) and
/// returns the jar with its cookie. `meta` (IP, user agent) is kept for the
/// administrators' list of sessions; `portal` is the client it began from.
pub async fn start(
    state: &AppState,
    jar: CookieJar,
    user_id: &UserId,
    amr: Vec<String>,
    meta: &ClientMeta,
    origin: Origin<'_>,
) -> Result<CookieJar, AppError> {
    let dev = state.config.server.dev_mode;
    // The session this browser had before (if any) ends: one browser, one session.
    if let Some(old) = jar.get(cookie_name(dev)) {
        remove(state, old.value()).await?;
    }
    let now = state.clock.now().unix_timestamp();
    let epoch = current_epoch(state, user_id).await?;
    let id = random_token();
    let data = SessionData {
        user_id: user_id.clone(),
        auth_time: now,
        signed_in_for: origin.request.map(sha256_hex),
        amr,
        created: now,
        last_seen: now,
        epoch,
        ip: Some(meta.ip.to_string()),
        user_agent: meta.user_agent.clone(),
        portal: origin.portal.map(str::to_owned),
        portal_from_flow: origin.from_flow && origin.portal.is_some(),
    };
    // Indexed first: a session missing from the index could not be listed.
    let lifetime = std::time::Duration::from_secs(state.config.session.absolute_hours * 3600);
    state
        .ephemeral
        .set_add(
            &keys::user_sessions(user_id.as_str()),
            &sha256_hex(&id),
            lifetime,
        )
        .await?;
    state
        .ephemeral
        .put(&session_key(&id), &data, idle(state))
        .await?;
    Ok(jar.add(cookie(cookie_name(dev), id, dev)))
}

/// Removes a session and its entry in its user's index.
async fn remove(state: &AppState, id: &str) -> Result<(), AppError> {
    remove_by_hash(state, &sha256_hex(id)).await
}

/// The same, from the SHA-256 of the id (what the index holds).
async fn remove_by_hash(state: &AppState, id_hash: &str) -> Result<(), AppError> {
    if let Some(data) = state.ephemeral.take(&session_key_by_hash(id_hash)).await? {
        state
            .ephemeral
            .set_remove(&keys::user_sessions(data.user_id.as_str()), id_hash)
            .await?;
    }
    Ok(())
}

/// The live session behind the request's cookie, if any; slides its idle expiry.
pub async fn load(
    state: &AppState,
    jar: &CookieJar,
) -> Result<Option<(String, SessionData)>, AppError> {
    let Some(id) = jar
        .get(cookie_name(state.config.server.dev_mode))
        .map(|c| c.value().to_owned())
    else {
        return Ok(None);
    };
    if Token::parse(&id).is_none() {
        return Ok(None);
    }
    let key = session_key(&id);
    let Some(mut data) = state.ephemeral.get(&key).await? else {
        return Ok(None);
    };
    if !is_live(state, &data).await? {
        remove(state, &id).await?;
        return Ok(None);
    }
    let now = state.clock.now();
    // Sliding expiry, written at most once a minute per session; never over
    // a session ended meanwhile (an administrator's revocation must hold).
    if now.unix_timestamp() - data.last_seen >= 60 {
        data.last_seen = now.unix_timestamp();
        if !state
            .ephemeral
            .put_if_present(&key, &data, idle(state))
            .await?
        {
            return Ok(None);
        }
    }
    Ok(Some((id, data)))
}

/// The portal of the session behind the request's cookie, for the look
/// only: a plain read (no sliding, no liveness check), and a store that
/// cannot answer means no portal rather than a failed page.
pub async fn portal_hint(state: &AppState, jar: &CookieJar) -> Option<String> {
    let id = jar.get(cookie_name(state.config.server.dev_mode))?.value();
    Token::parse(id)?;
    let data: Option<SessionData> = state.ephemeral.get(&session_key(id)).await.ok()?;
    data?.portal
}

/// The person behind session `id` proved again who they are: its
/// `auth_time` (OIDC, and how recent its sign-in is) moves to now. False when
/// the session ended meanwhile (it is not brought back).
pub async fn reauthenticated(state: &AppState, id: &str) -> Result<bool, AppError> {
    let key = session_key(id);
    let Some(mut data) = state.ephemeral.get(&key).await? else {
        return Ok(false);
    };
    let now = state.clock.now().unix_timestamp();
    data.auth_time = now;
    data.last_seen = now;
    Ok(state
        .ephemeral
        .put_if_present(&key, &data, idle(state))
        .await?)
}

/// Whether the session's sign-in is at most `account.reauth_max_age_minutes`
/// old, by the app clock.
pub fn signed_in_recently(state: &AppState, session: &SessionData) -> bool {
    let max_age = i64::try_from(state.config.account.reauth_max_age_minutes * 60).unwrap_or(300);
    state.clock.now().unix_timestamp() - session.auth_time <= max_age
}

/// Within its absolute lifetime and not voided by "end every session".
async fn is_live(state: &AppState, data: &SessionData) -> Result<bool, AppError> {
    let now = state.clock.now();
    let created = OffsetDateTime::from_unix_timestamp(data.created).unwrap_or(now);
    Ok(
        now - created < absolute(state)
            && data.epoch == current_epoch(state, &data.user_id).await?,
    )
}

/// Ends one session and returns the jar without its cookie.
pub async fn end(state: &AppState, jar: CookieJar, id: &str) -> Result<CookieJar, AppError> {
    remove(state, id).await?;
    let dev = state.config.server.dev_mode;
    Ok(jar.remove(cookie(cookie_name(dev), String::new(), dev)))
}

/// Ends every session of the user, everywhere.
pub async fn end_all(state: &AppState, user_id: &UserId) -> Result<(), AppError> {
    let next = current_epoch(state, user_id).await? + 1;
    // Kept as long as a session can live, so no old session outlives its epoch.
    let ttl = std::time::Duration::from_secs(state.config.session.absolute_hours * 3600 + 3600);
    state
        .ephemeral
        .put(&keys::session_epoch(user_id.as_str()), &next, ttl)
        .await?;
    // The epoch already voids them; this only spares later readers the pruning.
    state
        .ephemeral
        .delete(&keys::user_sessions(user_id.as_str()))
        .await?;
    Ok(())
}

/// A live session of a user, as administrators see it (never its id).
#[derive(Debug, Clone)]
pub struct UserSession {
    pub handle: String,
    pub data: SessionData,
}

/// The user's live sessions, newest first; dead entries of the index are
/// pruned on the way.
pub async fn list(state: &AppState, user_id: &UserId) -> Result<Vec<UserSession>, AppError> {
    Ok(live_sessions(state, user_id)
        .await?
        .into_iter()
        .map(|(id_hash, data)| UserSession {
            handle: handle_of_hash(&id_hash),
            data,
        })
        .collect())
}

/// Ends the user's live session named `handle`; false when there is none.
pub async fn end_by_handle(
    state: &AppState,
    user_id: &UserId,
    wanted: &str,
) -> Result<bool, AppError> {
    let found = live_sessions(state, user_id)
        .await?
        .into_iter()
        .find(|(id_hash, _)| handle_of_hash(id_hash) == wanted);
    match found {
        Some((id_hash, _)) => {
            remove_by_hash(state, &id_hash).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Ends every live session of the user but the one named `keep`; how many ended.
pub async fn end_all_but(state: &AppState, user_id: &UserId, keep: &str) -> Result<u64, AppError> {
    let mut ended = 0;
    for (id_hash, _) in live_sessions(state, user_id).await? {
        if handle_of_hash(&id_hash) != keep {
            remove_by_hash(state, &id_hash).await?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// The user's live sessions, each with the SHA-256 of its id.
async fn live_sessions(
    state: &AppState,
    user_id: &UserId,
) -> Result<Vec<(String, SessionData)>, AppError> {
    let index = keys::user_sessions(user_id.as_str());
    let mut live = Vec::new();
    for id_hash in state.ephemeral.set_members(&index).await? {
        let data = state.ephemeral.get(&session_key_by_hash(&id_hash)).await?;
        match data {
            Some(data) if data.user_id == *user_id => {
                if is_live(state, &data).await? {
                    live.push((id_hash, data));
                } else {
                    remove_by_hash(state, &id_hash).await?;
                }
            }
            _ => state.ephemeral.set_remove(&index, &id_hash).await?,
        }
    }
    live.sort_by_key(|(_, s)| std::cmp::Reverse((s.created, s.last_seen)));
    Ok(live)
}

async fn current_epoch(state: &AppState, user_id: &UserId) -> Result<u64, AppError> {
    Ok(state
        .ephemeral
        .get(&keys::session_epoch(user_id.as_str()))
        .await?
        .unwrap_or(0))
}

/// The signed-in user. Handlers that take it cannot run without one: the
/// rejection sends the browser to the sign-in page.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub session_id: String,
    pub session: SessionData,
    pub user: User,
}

/// The signed-in user, if any.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some((session_id, session)) = load(state, &jar).await? else {
            return Ok(Self(None));
        };
        let user = state.store.user_by_id(&session.user_id).await?;
        Ok(Self(user.filter(|u| !u.disabled).map(|user| CurrentUser {
            session_id,
            session,
            user,
        })))
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match MaybeUser::from_request_parts(parts, state).await {
            Ok(MaybeUser(Some(user))) => Ok(user),
            Ok(MaybeUser(None)) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// Where a browser session is kept: under the SHA-256 of the cookie's id,
/// so the store never holds the id itself.
fn session_key(id: &str) -> Key<SessionData> {
    keys::secret("session", id)
}

/// The same key from the id's SHA-256 (what the per-user index holds).
fn session_key_by_hash(id_hash: &str) -> Key<SessionData> {
    keys::secret_hash("session", id_hash)
}
