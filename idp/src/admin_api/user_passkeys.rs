//! A user's passkeys (`/admin/api/users/{id}/passkeys`), to list and to
//! remove one by one (a lost or stolen device), issue 16.
//!
//! The list names each passkey by our id and its owner's name for it; the
//! credential (public key, credential id, counter) never leaves the server.
//! An administrator may remove the last passkey of an account without a
//! password: the owner then comes back in with forgot-password
//! (docs/passkeys.md), as after an authenticator-app reset.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Id, SubId};
use super::shared::{Subject, audit, rfc3339};
use super::users::{load, user_id};
use crate::domain::AuditKind;
use crate::store::StoredPasskey;
use crate::web::AppState;

/// A registered passkey, without its credential.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyView {
    /// Our id for it (not the authenticator's credential id).
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The latest sign-in with it; null if never used.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<StoredPasskey> for PasskeyView {
    fn from(p: StoredPasskey) -> Self {
        Self {
            id: p.id,
            name: p.name,
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PasskeyList {
    /// Oldest first.
    pub items: Vec<PasskeyView>,
}

/// A user's passkeys.
#[utoipa::path(
    get,
    path = "/admin/api/users/{id}/passkeys",
    tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, body = PasskeyList), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn passkeys(
    _admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<PasskeyList>, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    let passkeys = state.store.passkeys(&user.id).await?;
    Ok(Json(PasskeyList {
        items: passkeys.into_iter().map(Into::into).collect(),
    }))
}

/// Remove one passkey of the user: it can no longer sign in. Allowed for the
/// account's last way in; the owner then resets their password by mail.
#[utoipa::path(
    delete,
    path = "/admin/api/users/{id}/passkeys/{passkey_id}",
    tag = "users",
    params(
        ("id" = String, Path, description = "User id"),
        ("passkey_id" = String, Path, description = "The passkey's `id` in the list"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = ErrorBody, description = "No such user, or no passkey of theirs with this id"),
    ),
    security(("bearer" = []))
)]
pub async fn remove_passkey(
    admin: Admin,
    State(state): State<AppState>,
    SubId(id, passkey_id): SubId,
) -> Result<StatusCode, ApiError> {
    let user = load(&state, &user_id(&id)?).await?;
    let not_found = ApiError::NotFound("this user has no passkey with this id");
    let Some(passkey) = state
        .store
        .passkeys(&user.id)
        .await?
        .into_iter()
        .find(|p| p.id == passkey_id)
    else {
        return Err(not_found);
    };
    // `keep_last: false`: an administrator may take the last way in.
    if !state
        .store
        .remove_passkey(&user.id, &passkey.id, false)
        .await?
    {
        return Err(not_found);
    }
    audit(
        &state,
        &admin,
        AuditKind::AdminPasskeyRemoved,
        Subject::User(&user.id),
        json!({ "passkey_id": passkey.id, "name": passkey.name }),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
