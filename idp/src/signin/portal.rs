//! Which portal's rules apply to a request (see `web::portal` for the look):
//! the pending flow's client first, read through the pipeline.

use axum_extra::extract::cookie::CookieJar;

use super::request;
use crate::store::Client;
use crate::web::portal::session_rules_portal;
use crate::web::session;
use crate::web::{AppError, AppState};

/// The portal whose rules apply to this request: the client of the pending
/// authorization request `req` (when it belongs to this browser), else the
/// portal the browser's live session began from; `None` means the
/// deployment's own rules. Nothing the request supplies besides the
/// browser-bound `req` is read.
pub async fn rules_portal(
    state: &AppState,
    jar: &CookieJar,
    req: Option<&str>,
) -> Result<Option<Client>, AppError> {
    if let Some(pending) = request::load_opt(state, jar, req).await? {
        return Ok(Some(pending.client));
    }
    match session::load(state, jar).await? {
        Some((_, session)) => session_rules_portal(state, &session).await,
        None => Ok(None),
    }
}
