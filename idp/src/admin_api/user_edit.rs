//! `PATCH /admin/api/users/{id}`: an administrator corrects a name or an
//! email address, or marks an address verified (or not).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Id, bad_request};
use super::shared::{Subject, audit};
use super::users::{UserDetail, detail, load, user_id};
use crate::account::MAX_NAME_CHARS;
use crate::domain::{AuditKind, Email};
use crate::store::UserChanges;
use crate::web::AppState;

/// Changes to an account; absent members stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// At most 200 characters.
    pub name: Option<String>,
    /// A new address, unique among accounts (case-insensitively). Unless
    /// `email_verified` is given too, it is unverified; links mailed to the
    /// old address (reset, verification) stop working.
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// Change a user's name, email or email verification.
#[utoipa::path(
    patch,
    path = "/admin/api/users/{id}",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body = UserPatch,
    responses(
        (status = 200, body = UserDetail),
        (status = 400, body = ErrorBody, description = "A bad name or email, or an unknown member"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Another account has this email"),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
    payload: Result<Json<UserPatch>, JsonRejection>,
) -> Result<Json<UserDetail>, ApiError> {
    let id = user_id(&id)?;
    let Json(p) = payload.map_err(|e| bad_request(e.body_text()))?;
    if p.name
        .as_ref()
        .is_some_and(|n| n.chars().count() > MAX_NAME_CHARS)
    {
        return Err(bad_request(format!(
            "name: at most {MAX_NAME_CHARS} characters"
        )));
    }
    let email = p
        .email
        .as_deref()
        .map(Email::parse)
        .transpose()
        .map_err(|e| bad_request(format!("email: {}", e.0)))?;
    let user = load(&state, &id).await?;

    // Only what differs is written and reported.
    let name = p.name.filter(|n| *n != user.name);
    let new_address = email.as_ref().is_some_and(|e| e.key() != user.email.key());
    let email = email.filter(|e| e.as_str() != user.email.as_str());
    let email_verified = match p.email_verified {
        Some(v) => Some(v),
        None if new_address => Some(false),
        None => None,
    }
    .filter(|v| *v != user.email_verified);
    let mut changed = Vec::new();
    for (member, present) in [
        ("name", name.is_some()),
        ("email", email.is_some()),
        ("email_verified", email_verified.is_some()),
    ] {
        if present {
            changed.push(member);
        }
    }
    let user = if changed.is_empty() {
        user
    } else {
        let changes = UserChanges {
            name,
            email,
            email_verified,
            expect_email: None,
        };
        state
            .store
            .update_user(&id, &changes, state.clock.now())
            .await
            .map_err(|e| match e {
                crate::store::Error::Conflict => {
                    ApiError::Conflict("another account has this email".into())
                }
                e => e.into(),
            })?
            .ok_or(ApiError::NotFound("no user has this id"))?
    };
    // This node's /userinfo serves the new profile at once (others within the cache's TTL).
    state.users.forget(&id);
    audit(
        &state,
        &admin,
        AuditKind::AdminUserUpdated,
        Subject::User(&id),
        json!({ "changed": changed }),
    )
    .await?;
    detail(&state, &user).await
}
