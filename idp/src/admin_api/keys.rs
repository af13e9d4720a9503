//! `/admin/api/keys`: the token signing keys (public facts only) and an
//! immediate rotation, as `idp keys list` and `idp keys rotate` do.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::ApiError;
use super::shared::{Subject, audit, rfc3339};
use crate::domain::AuditKind;
use crate::store::StoredKey;
use crate::tokens::keys::KeyState;
use crate::web::{AppError, AppState};

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// `next` (published, not signing yet), `active` or `retired` (published until it expires).
    pub state: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub activates_at: String,
    #[schema(format = DateTime)]
    pub retires_at: Option<String>,
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

impl KeyView {
    fn of(k: &StoredKey, now: time::OffsetDateTime) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.as_str().to_owned(),
            state: KeyState::of(k, now).as_str().to_owned(),
            created_at: rfc3339(k.created_at),
            activates_at: rfc3339(k.activates_at),
            retires_at: k.retires_at.map(rfc3339),
            expires_at: k.expires_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Every published key, oldest first.
    pub items: Vec<KeyView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Rotated {
    /// The new keys' ids: published now, signing after `keys.publish_ahead_minutes`.
    pub kids: Vec<String>,
}

/// The published signing keys.
#[utoipa::path(
    get,
    path = "/admin/api/keys",
    tag = "keys",
    responses((status = 200, body = KeyList)),
    security(("bearer" = []))
)]
pub async fn list(_admin: Admin, State(state): State<AppState>) -> Result<Json<KeyList>, ApiError> {
    let now = state.clock.now();
    let keys = state.store.signing_keys().await?;
    Ok(Json(KeyList {
        items: keys
            .iter()
            .filter(|k| k.expires_at.is_none_or(|e| e > now))
            .map(|k| KeyView::of(k, now))
            .collect(),
    }))
}

/// Start a rotation now: a new key per algorithm, published at once; the
/// keys they replace retire when the new ones start signing.
#[utoipa::path(
    post,
    path = "/admin/api/keys/rotate",
    tag = "keys",
    responses((status = 200, body = Rotated)),
    security(("bearer" = []))
)]
pub async fn rotate(
    admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<Rotated>, ApiError> {
    let kids = state
        .keys
        .rotate_keys(true)
        .await
        .map_err(|e| AppError::Internal(format!("key rotation: {e}")))?
        .unwrap_or_default();
    audit(
        &state,
        &admin,
        AuditKind::AdminKeysRotated,
        Subject::Deployment,
        json!({ "kids": kids }),
    )
    .await?;
    Ok(Json(Rotated { kids }))
}
