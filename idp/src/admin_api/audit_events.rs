//! `/admin/api/audit-events`: the audit trail, most recent first, filtered
//! by user (id or current email address), event type and time range,
//! paged by a cursor.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::auth::Admin;
use super::error::{ApiError, ErrorBody, bad_request};
use super::shared::{end_page, page_limit, rfc3339};
use crate::domain::{Email, UserId};
use crate::store::{AuditQuery, RecordedAuditEvent};
use crate::web::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventView {
    pub id: i64,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// What happened, e.g. `login.failed`, `admin.user_disabled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The account concerned.
    pub user_id: Option<String>,
    /// Who acted, when not the user: `user:<id>` (an administrator),
    /// `client:<id>` (automation), `cli`.
    pub actor: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The current address of the account concerned (absent once it is gone).
    pub user_email: Option<String>,
    /// The current address of the acting administrator, when `actor` is `user:<id>`.
    pub actor_email: Option<String>,
}

impl From<RecordedAuditEvent> for AuditEventView {
    fn from(r: RecordedAuditEvent) -> Self {
        let e = r.event;
        Self {
            id: r.id,
            occurred_at: rfc3339(r.occurred_at),
            kind: e.kind,
            user_id: e.user_id.map(|u| u.to_string()),
            actor: e.actor,
            client_id: e.client_id.map(|c| c.to_string()),
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
            user_email: r.user_email,
            actor_email: r.actor_email,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEventPage {
    pub items: Vec<AuditEventView>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditSearch {
    /// Only events about this user.
    pub user_id: Option<String>,
    /// Only events about the account that has this email address now
    /// (case-insensitive, exact); no such account: no events. With
    /// `user_id`, both must name the same account.
    #[param(format = Email)]
    pub email: Option<String>,
    /// Only events of this type, e.g. `login.failed`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// RFC 3339: events at or after this instant.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339: events before this instant.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn empty_page() -> AuditEventPage {
    AuditEventPage {
        items: Vec::new(),
        next_cursor: None,
    }
}

fn instant(name: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.filter(|s| !s.is_empty())
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                bad_request(format!(
                    "{name} must be an RFC 3339 date-time such as 2026-11-22T09:30:00Z"
                ))
            })
        })
        .transpose()
}

/// Audit events, most recent first.
#[utoipa::path(
    get,
    path = "/admin/api/audit-events",
    tag = "audit",
    params(AuditSearch),
    responses(
        (status = 200, body = AuditEventPage),
        (status = 400, body = ErrorBody, description = "A bad parameter"),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    _admin: Admin,
    State(state): State<AppState>,
    query: Result<Query<AuditSearch>, QueryRejection>,
) -> Result<Json<AuditEventPage>, ApiError> {
    let Query(q) = query.map_err(|e| bad_request(e.body_text()))?;
    let limit = page_limit(q.limit)?;
    let user = q
        .user_id
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| UserId::parse(s).map_err(|_| bad_request("user_id is not a user id")))
        .transpose()?;
    let user = match q.email.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => user,
        Some(raw) => {
            let email =
                Email::parse(raw).map_err(|_| bad_request("email is not an email address"))?;
            let owner = state.store.user_by_email(&email).await?.map(|u| u.id);
            match (owner, user) {
                (Some(owner), Some(id)) if owner != id => return Ok(Json(empty_page())),
                (Some(owner), _) => Some(owner),
                (None, _) => return Ok(Json(empty_page())),
            }
        }
    };
    let before_id = q
        .cursor
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| bad_request("cursor is not one this API returned"))
        })
        .transpose()?;
    let events = state
        .store
        .search_audit_events(&AuditQuery {
            user,
            kind: q.kind.filter(|k| !k.is_empty()),
            since: instant("since", q.since.as_deref())?,
            until: instant("until", q.until.as_deref())?,
            before_id,
            limit: limit + 1,
        })
        .await?;
    let (events, next_cursor) = end_page(events, limit, |e| e.id.to_string());
    Ok(Json(AuditEventPage {
        items: events.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}
