//! `/admin/api/users/{id}/…`: act on an account (disable, enable, unlock,
//! sign out everywhere, send a reset link, reset two-step sign-in, grant or
//! revoke the admin role). Every action is audited with the administrator.

use axum::Json;
use axum::extract::State;
use serde_json::json;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Id};
use super::shared::{Subject, audit};
use super::users::{UserDetail, detail, load, user_id};
use crate::domain::{AuditKind, UserId};
use crate::web::AppState;

fn not_yourself(admin: &Admin, user: &UserId, what: &str) -> Result<(), ApiError> {
    if admin.user_id() == Some(user) {
        return Err(ApiError::Conflict(format!(
            "administrators cannot {what} themselves; ask another administrator"
        )));
    }
    Ok(())
}

/// Disable an account: sign-in is refused, its sessions end and its
/// refresh tokens are revoked.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/disable",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserDetail),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Administrators cannot disable themselves"),
    ),
    security(("bearer" = []))
)]
pub async fn disable(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    not_yourself(&admin, &id, "disable")?;
    let now = state.clock.now();
    let user = state
        .store
        .set_user_disabled(&id, true, now)
        .await?
        .ok_or(ApiError::NotFound("no user has this id"))?;
    // This node's /userinfo stops serving them at once (others within the cache's TTL).
    state.users.forget(&id);
    let revoked = sign_out_everywhere(&state, &id).await?;
    audit(
        &state,
        &admin,
        AuditKind::AdminUserDisabled,
        Subject::User(&id),
        json!({ "refresh_tokens_revoked": revoked }),
    )
    .await?;
    detail(&state, &user).await
}

/// Ends every browser session of the user and revokes their refresh
/// tokens; returns how many refresh tokens were live.
async fn sign_out_everywhere(state: &AppState, id: &UserId) -> Result<u64, ApiError> {
    crate::web::session::end_all(state, id).await?;
    Ok(state
        .store
        .revoke_user_refresh_tokens(id, state.clock.now())
        .await?)
}

/// Sign the user out everywhere (a lost or stolen device): every session
/// ends and every refresh token is revoked. The account stays usable.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/sign-out",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn sign_out(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    let user = load(&state, &id).await?;
    let revoked = sign_out_everywhere(&state, &id).await?;
    audit(
        &state,
        &admin,
        AuditKind::AdminUserSignedOut,
        Subject::User(&id),
        json!({ "refresh_tokens_revoked": revoked }),
    )
    .await?;
    detail(&state, &user).await
}

/// Enable a disabled account again.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/enable",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn enable(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    let user = state
        .store
        .set_user_disabled(&id, false, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound("no user has this id"))?;
    state.users.forget(&id);
    audit(
        &state,
        &admin,
        AuditKind::AdminUserEnabled,
        Subject::User(&id),
        json!({}),
    )
    .await?;
    detail(&state, &user).await
}

/// Lift a sign-in lock (after repeated failures) now.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/unlock",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn unlock(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    let user = load(&state, &id).await?;
    crate::credentials::lockout::clear(&state, &user.email, Some(&user)).await?;
    audit(
        &state,
        &admin,
        AuditKind::AdminUserUnlocked,
        Subject::User(&id),
        json!({}),
    )
    .await?;
    let user = load(&state, &id).await?;
    detail(&state, &user).await
}

/// Mail the user a password-reset link (in the default theme, valid as
/// long as the forgot-password page's links).
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/send-password-reset",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserDetail),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The account is disabled"),
    ),
    security(("bearer" = []))
)]
pub async fn send_password_reset(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    let user = load(&state, &id).await?;
    if user.disabled {
        return Err(ApiError::Conflict(
            "the account is disabled: enable it before sending a reset link".into(),
        ));
    }
    let theme = state.themes.get(None);
    let ttl_minutes = theme
        .meta
        .reset_link_ttl_minutes
        .unwrap_or(state.config.account.reset_link_ttl_minutes);
    crate::account::mail_reset_link(&state, &theme, "", &user, ttl_minutes).await?;
    audit(
        &state,
        &admin,
        AuditKind::AdminPasswordResetSent,
        Subject::User(&id),
        json!({ "ttl_minutes": ttl_minutes }),
    )
    .await?;
    detail(&state, &user).await
}

/// Remove the user's authenticator app and recovery codes (lost phone);
/// the owner is told by mail.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/reset-mfa",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserDetail),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The user has no two-step sign-in"),
    ),
    security(("bearer" = []))
)]
pub async fn reset_mfa(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    let user = load(&state, &id).await?;
    // Audited by `mfa::reset` itself (`mfa.reset`, with the actor).
    let reset = crate::mfa::reset(
        state.store.as_ref(),
        &state.themes.get(None),
        &state.config.server.issuer,
        state.clock.now(),
        &user,
        &admin.actor(),
    )
    .await?;
    if !reset {
        return Err(ApiError::Conflict(
            "this user has no two-step sign-in to reset".into(),
        ));
    }
    state.mail.notify();
    detail(&state, &user).await
}

/// Make the user an administrator.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/grant-admin",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn grant_admin(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    set_admin(admin, state, id, true).await
}

/// Take the admin role away; the user's admin tokens stop working at once.
#[utoipa::path(
    post,
    path = "/admin/api/users/{id}/revoke-admin",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = UserDetail),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Administrators cannot revoke their own role"),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_admin(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<UserDetail>, ApiError> {
    set_admin(admin, state, id, false).await
}

async fn set_admin(
    admin: Admin,
    state: AppState,
    id: String,
    is_admin: bool,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    if !is_admin {
        not_yourself(&admin, &id, "revoke the admin role of")?;
    }
    let user = state
        .store
        .set_user_admin(&id, is_admin, state.clock.now())
        .await?
        .ok_or(ApiError::NotFound("no user has this id"))?;
    let kind = if is_admin {
        AuditKind::AdminAdminGranted
    } else {
        AuditKind::AdminAdminRevoked
    };
    audit(&state, &admin, kind, Subject::User(&id), json!({})).await?;
    detail(&state, &user).await
}
