//! `/admin/api/users`: search and page through accounts, create one, look
//! at one. Acting on an account is in `user_actions`, editing it in
//! `user_edit`, its sessions and refresh tokens in `user_sessions`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Id, bad_request};
use super::shared::{Subject, audit, end_page, page_limit, rfc3339};
use crate::account::{CreateUserError, NewAccount, create_user};
use crate::domain::{AuditKind, Email, PlainPassword, UserId};
use crate::store::{User, UserQuery};
use crate::web::{AppError, AppState};

/// An account as administrators see it (never its password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub disabled: bool,
    /// Set while sign-in is locked after repeated failures.
    #[schema(format = DateTime)]
    pub locked_until: Option<String>,
    pub is_admin: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl UserView {
    fn of(user: &User, now: time::OffsetDateTime) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            name: user.name.clone(),
            email_verified: user.email_verified,
            disabled: user.disabled,
            locked_until: user.locked_until.filter(|t| *t > now).map(rfc3339),
            is_admin: user.is_admin,
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

/// One account, with its two-step sign-in state.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetail {
    #[serde(flatten)]
    pub user: UserView,
    /// An authenticator app is set up and confirmed.
    pub mfa_enabled: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearch {
    /// The start of the email address or of the name (case-insensitive),
    /// or an exact user id.
    pub q: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub(super) fn user_id(raw: &str) -> Result<UserId, ApiError> {
    UserId::parse(raw).map_err(|_| ApiError::NotFound("no user has this id"))
}

pub(super) async fn load(state: &AppState, id: &UserId) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or(ApiError::NotFound("no user has this id"))
}

pub(super) async fn detail(state: &AppState, user: &User) -> Result<Json<UserDetail>, ApiError> {
    let mfa_enabled = state
        .store
        .totp_credential(&user.id)
        .await?
        .is_some_and(|c| c.is_active());
    Ok(Json(UserDetail {
        user: UserView::of(user, state.clock.now()),
        mfa_enabled,
    }))
}

/// Search users, ordered by email.
#[utoipa::path(
    get,
    path = "/admin/api/users",
    tag = "users",
    params(UserSearch),
    responses(
        (status = 200, body = UserPage),
        (status = 400, body = ErrorBody, description = "A bad parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    _admin: Admin,
    State(state): State<AppState>,
    query: Result<Query<UserSearch>, QueryRejection>,
) -> Result<Json<UserPage>, ApiError> {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let limit = page_limit(q.limit)?;
    let after_email_key = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad_request("cursor is not one this API returned"))?,
        ),
    };
    let users = state
        .store
        .search_users(&UserQuery {
            text: q.q,
            after_email_key,
            limit: limit + 1,
        })
        .await?;
    let (users, next_cursor) = end_page(users, limit, |u| URL_SAFE_NO_PAD.encode(u.email.key()));
    let now = state.clock.now();
    Ok(Json(UserPage {
        items: users.iter().map(|u| UserView::of(u, now)).collect(),
        next_cursor,
    }))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    #[schema(format = Email)]
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// Checked against the password policy. Absent: the account has no
    /// password until its owner sets one through "forgot password".
    pub password: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub is_admin: bool,
}

/// Create an account.
#[utoipa::path(
    post,
    path = "/admin/api/users",
    tag = "users",
    request_body = NewUserBody,
    responses(
        (status = 201, body = UserDetail),
        (status = 400, body = ErrorBody, description = "A bad email, name or password"),
        (status = 409, body = ErrorBody, description = "The email is taken"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    admin: Admin,
    State(state): State<AppState>,
    payload: Result<Json<NewUserBody>, JsonRejection>,
) -> Result<(StatusCode, Json<UserDetail>), ApiError> {
    let Json(b) = payload.map_err(|e| bad_request(e.body_text()))?;
    let email = Email::parse(&b.email).map_err(|e| bad_request(format!("email: {}", e.0)))?;
    let password = match &b.password {
        None => None,
        Some(p) => {
            let refused = state.policy.check(p, &[b.name.as_str(), email.as_str()]);
            if !refused.is_empty() {
                return Err(bad_request(format!("password: {}", refused.join(" "))));
            }
            Some(PlainPassword::parse(p).map_err(|e| bad_request(format!("password: {}", e.0)))?)
        }
    };
    let user = create_user(
        state.store.as_ref(),
        &state.hasher,
        state.clock.as_ref(),
        NewAccount {
            email,
            name: b.name,
            password,
            email_verified: b.email_verified,
            is_admin: b.is_admin,
        },
    )
    .await
    .map_err(|e| match e {
        CreateUserError::EmailTaken => ApiError::Conflict(e.to_string()),
        CreateUserError::NameTooLong => bad_request(e.to_string()),
        CreateUserError::Hash(h) => AppError::from(h).into(),
        CreateUserError::Store(s) => s.into(),
    })?;
    audit(
        &state,
        &admin,
        AuditKind::AdminUserCreated,
        Subject::User(&user.id),
        json!({ "is_admin": user.is_admin, "password_set": user.password_hash.is_some() }),
    )
    .await?;
    Ok((StatusCode::CREATED, detail(&state, &user).await?))
}

/// One user.
#[utoipa::path(
    get,
    path = "/admin/api/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserDetail),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    _admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    detail(&state, &user).await
}
