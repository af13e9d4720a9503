//! `GET /admin/api/summary`: the counts a dashboard opens with.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::ApiError;
use crate::web::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserCounts {
    pub total: u64,
    pub admins: u64,
    pub disabled: u64,
    /// Sign-in locked after repeated failures, now (by the server's clock).
    pub locked: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailCounts {
    /// Waiting for a (first or further) attempt.
    pub pending: u64,
    /// Out of attempts: only an administrator's retry sends them.
    pub failed: u64,
    pub sent: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub users: UserCounts,
    /// Registered relying parties.
    pub clients: u64,
    /// The outbox, by state.
    pub mail: MailCounts,
}

/// Counts of users, clients and outbox messages.
#[utoipa::path(
    get,
    path = "/admin/api/summary",
    tag = "summary",
    responses((status = 200, body = Summary)),
    security(("bearer" = []))
)]
pub async fn show(_admin: Admin, State(state): State<AppState>) -> Result<Json<Summary>, ApiError> {
    let s = state.store.summary(state.clock.now()).await?;
    Ok(Json(Summary {
        users: UserCounts {
            total: s.users,
            admins: s.admins,
            disabled: s.disabled,
            locked: s.locked,
        },
        clients: s.clients,
        mail: MailCounts {
            pending: s.mail_pending,
            failed: s.mail_failed,
            sent: s.mail_sent,
        },
    }))
}
