//! A user's ways back in, one by one: browser sessions
//! (`/admin/api/users/{id}/sessions`) and refresh-token families
//! (`/admin/api/users/{id}/refresh-tokens`), to list and to end singly
//! (a lost phone) rather than all at once (`sign-out`).
//!
//! A session id is a bearer credential: it never leaves the server. A
//! session is named by its handle (16 hex digits of the SHA-256 of its id);
//! a refresh-token family by its family id (never a token or its hash).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Id, SubId};
use super::shared::{Subject, audit, rfc3339};
use super::users::{load, user_id};
use crate::domain::AuditKind;
use crate::store::RefreshFamily;
use crate::web::AppState;
use crate::web::session::{self, UserSession};

/// A live browser session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// The session's handle (not its cookie value, which never leaves the server).
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Updated at most once a minute.
    #[schema(format = DateTime)]
    pub last_seen_at: String,
    /// When the user last proved who they are (OIDC `auth_time`).
    #[schema(format = DateTime)]
    pub auth_time: String,
    /// How: `pwd`, `otp`.
    pub amr: Vec<String>,
    /// Where the sign-in came from; null for sessions started before this was kept.
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The user agent as people name browsers, e.g. "Firefox on Linux".
    pub browser: String,
}

fn unix(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .map(rfc3339)
        .unwrap_or_default()
}

impl From<UserSession> for SessionView {
    fn from(s: UserSession) -> Self {
        Self {
            id: s.handle,
            created_at: unix(s.data.created),
            last_seen_at: unix(s.data.last_seen),
            auth_time: unix(s.data.auth_time),
            amr: s.data.amr,
            ip: s.data.ip,
            browser: crate::account::describe_browser(s.data.user_agent.as_deref()),
            user_agent: s.data.user_agent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionList {
    /// Newest first.
    pub items: Vec<SessionView>,
}

/// A user's live browser sessions.
#[utoipa::path(
    get,
    path = "/admin/api/users/{id}/sessions",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = SessionList), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn sessions(
    _admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<SessionList>, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    let live = session::list(&state, &user.id).await?;
    Ok(Json(SessionList {
        items: live.into_iter().map(Into::into).collect(),
    }))
}

/// End one browser session of the user: that browser is signed out, at once
/// on every node; the user's other sessions go on.
#[utoipa::path(
    delete,
    path = "/admin/api/users/{id}/sessions/{session_id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "User id"),
        ("session_id" = String, Path, description = "The session's `id` in the list"),
    ),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, body = ErrorBody, description = "No such user, or no live session of theirs with this id"),
    ),
    security(("bearer" = []))
)]
pub async fn end_session(
    admin: Admin,
    State(state): State<AppState>,
    SubId(id, handle): SubId,
) -> Result<StatusCode, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    if !session::end_by_handle(&state, &user.id, &handle).await? {
        return Err(ApiError::NotFound(
            "this user has no live session with this id",
        ));
    }
    audit(
        &state,
        &admin,
        AuditKind::AdminSessionRevoked,
        Subject::User(&user.id),
        json!({ "session": handle }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A live refresh-token family: one sign-in at one client, through its rotations.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshTokenView {
    /// The family id.
    pub id: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// When the family's first token was issued.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The latest refresh (rotation); null if never used.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// The current token's expiry (it slides with each refresh)...
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// ...up to the family's own, which does not.
    #[schema(format = DateTime)]
    pub family_expires_at: String,
}

impl From<RefreshFamily> for RefreshTokenView {
    fn from(f: RefreshFamily) -> Self {
        Self {
            id: f.family_id,
            client_id: f.client_id.to_string(),
            scopes: f.scopes,
            created_at: rfc3339(f.created_at),
            last_used_at: f.last_used_at.map(rfc3339),
            expires_at: rfc3339(f.expires_at),
            family_expires_at: rfc3339(f.family_expires_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshTokenList {
    /// The most recently started first.
    pub items: Vec<RefreshTokenView>,
}

/// A user's live refresh tokens, one item per family.
#[utoipa::path(
    get,
    path = "/admin/api/users/{id}/refresh-tokens",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = RefreshTokenList), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn refresh_tokens(
    _admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<RefreshTokenList>, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    let families = state
        .store
        .live_refresh_families(&user.id, state.clock.now())
        .await?;
    Ok(Json(RefreshTokenList {
        items: families.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke one refresh-token family: the client can no longer refresh with
/// it (`invalid_grant`); access tokens it already holds run out on their own.
#[utoipa::path(
    delete,
    path = "/admin/api/users/{id}/refresh-tokens/{family_id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "User id"),
        ("family_id" = String, Path, description = "The family's `id` in the list"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, body = ErrorBody, description = "No such user, or no live family of theirs with this id"),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_refresh_token(
    admin: Admin,
    State(state): State<AppState>,
    SubId(id, family): SubId,
) -> Result<StatusCode, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    let client = state
        .store
        .revoke_user_refresh_family(&user.id, &family, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound(
            "this user has no live refresh token with this id",
        ))?;
    audit(
        &state,
        &admin,
        AuditKind::AdminRefreshTokenRevoked,
        Subject::User(&user.id),
        json!({ "family": family, "client_id": client.as_str() }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
