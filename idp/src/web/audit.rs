//! Writing the audit trail from request handlers.

use serde_json::Value;

use super::AppState;
use super::client_meta::ClientMeta;
use crate::domain::{AuditKind, ClientId, UserId};
use crate::store::AuditEvent;

/// Records an event. A failure to write is logged, not shown to the user:
/// the action itself already happened.
pub async fn record(
    state: &AppState,
    meta: &ClientMeta,
    kind: AuditKind,
    user: Option<&UserId>,
    client: Option<&ClientId>,
    detail: Value,
) {
    let event = AuditEvent {
        kind: kind.as_str().to_owned(),
        user_id: user.cloned(),
        actor: None,
        client_id: client.cloned(),
        ip: Some(meta.ip.to_string()),
        user_agent: meta.user_agent.clone(),
        detail,
    };
    if let Err(e) = state.store.record(event, state.clock.now()).await {
        tracing::error!(error = %e, kind = kind.as_str(), "audit event not recorded");
    }
}
