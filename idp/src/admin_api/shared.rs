//! What the admin API's handlers share: paging, timestamps, and the audit
//! record of an administrator's action.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::Admin;
use super::error::{self, ApiError};
use crate::domain::{AuditKind, ClientId, UserId};
use crate::store::AuditEvent;
use crate::web::AppState;

pub(super) const DEFAULT_PAGE: u32 = 50;
pub(super) const MAX_PAGE: u32 = 200;

pub(super) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        l @ 1..=MAX_PAGE => Ok(l),
        _ => Err(error::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// Ends a page fetched with one row more than `limit`: the rows to show and,
/// if that extra row came, the cursor of the next page (from the last shown).
pub(super) fn end_page<T>(
    mut rows: Vec<T>,
    limit: u32,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if rows.len() <= limit as usize {
        return (rows, None);
    }
    rows.truncate(limit as usize);
    let next = rows.last().map(cursor);
    (rows, next)
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// What an administrator's action was about.
pub(super) enum Subject<'a> {
    User(&'a UserId),
    Client(&'a ClientId),
    /// The deployment itself (keys, outbox).
    Deployment,
}

/// Records an administrator's action. Unlike sign-in events, a failure to
/// record fails the request: an admin change must not go unaudited (the
/// actions are idempotent, so the retry records it).
pub(super) async fn audit(
    state: &AppState,
    admin: &Admin,
    kind: AuditKind,
    subject: Subject<'_>,
    detail: Value,
) -> Result<(), ApiError> {
    let (user_id, client_id) = match subject {
        Subject::User(u) => (Some(u.clone()), None),
        Subject::Client(c) => (None, Some(c.clone())),
        Subject::Deployment => (None, None),
    };
    let event = AuditEvent {
        kind: kind.as_str().to_owned(),
        user_id,
        actor: Some(admin.actor()),
        client_id,
        ip: Some(admin.meta.ip.to_string()),
        user_agent: admin.meta.user_agent.clone(),
        detail,
    };
    state.store.record(event, state.clock.now()).await?;
    Ok(())
}
