//! `/admin/api/mail`: the outbox as administrators see it (who, what
//! subject, delivery state), and a retry for messages that failed for good.
//! Bodies are never shown: they carry reset and verification links.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, Id, bad_request};
use super::shared::{Subject, audit, page_limit, rfc3339};
use crate::domain::AuditKind;
use crate::store::{MailStatus, QueuedMail};
use crate::web::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct MailView {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Failed delivery attempts so far.
    pub attempts: i32,
    #[schema(format = DateTime)]
    pub next_attempt_at: String,
    /// What the mail server (or the connection) said at the last failure.
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
}

impl From<QueuedMail> for MailView {
    fn from(m: QueuedMail) -> Self {
        Self {
            id: m.id,
            recipient: m.mail.recipient,
            subject: m.mail.subject,
            status: m.status.as_str().to_owned(),
            attempts: m.attempts,
            next_attempt_at: rfc3339(m.next_attempt_at),
            last_error: m.last_error,
            created_at: rfc3339(m.created_at),
            sent_at: m.sent_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailList {
    /// Newest first.
    pub items: Vec<MailView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MailSearch {
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
    /// How many, 1 to 200 (default 50).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MailRetried {
    pub id: String,
    /// Always `pending`: due now, attempts counted from zero.
    pub status: String,
}

/// The most recent messages of the outbox.
#[utoipa::path(
    get,
    path = "/admin/api/mail",
    tag = "mail",
    params(MailSearch),
    responses(
        (status = 200, body = MailList),
        (status = 400, body = ErrorBody, description = "A bad parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
    query: Result<Query<MailSearch>, QueryRejection>,
) -> Result<Json<MailList>, ApiError> {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let limit = page_limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<MailStatus>()
                .map_err(|_| bad_request("status must be pending, sent or failed"))
        })
        .transpose()?;
    let mail = state.store.list_mail(status, limit).await?;
    Ok(Json(MailList {
        items: mail.into_iter().map(Into::into).collect(),
    }))
}

/// Send a failed message again (after fixing the mail server, say).
#[utoipa::path(
    post,
    path = "/admin/api/mail/{id}/retry",
    tag = "mail",
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, body = MailRetried),
        (status = 404, body = ErrorBody, description = "No failed message has this id"),
    ),
    security(("bearer" = []))
)]
pub async fn retry(
    admin: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<MailRetried>, ApiError> {
    match state.store.retry_mail(&id, state.clock.now()).await {
        Ok(()) => {}
        Err(crate::store::Error::NotFound) => {
            return Err(ApiError::NotFound("no failed message has this id"));
        }
        Err(e) => return Err(e.into()),
    }
    state.mail.notify();
    audit(
        &state,
        &admin,
        AuditKind::AdminMailRetried,
        Subject::Deployment,
        json!({ "mail_id": id }),
    )
    .await?;
    Ok(Json(MailRetried {
        id,
        status: MailStatus::Pending.as_str().to_owned(),
    }))
}
