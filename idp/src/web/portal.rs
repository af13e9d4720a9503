//! Which portal a request belongs to. A customer who arrives from a portal
//! keeps its look until they leave: the browser session records the portal
//! (client id) it began from (server-side, in the session's state), and
//! links between pages also carry `client_id`. The two answer different
//! questions:
//!
//! - the look (theme) of a page or mail: the link's `client_id` when it names
//!   a registered client, else the session's portal, else `default`
//!   ([`super::ui::Ui::new`]); a marker only ever changes the look;
//! - the rules (password policy, link lifetimes, ...): `signin::portal::rules_portal`,
//!   from server-side state only: the pending flow's client, else the
//!   session's portal. Never the request's own marker.

use axum_extra::extract::cookie::CookieJar;

use super::session::{self, CurrentUser};
use super::{AppError, AppState};
use crate::domain::ClientId;
use crate::store::Client;

/// The portal whose rules a live session carries: the one it began from,
/// only when a pending flow (server-side) named it; a themed page's marker
/// chooses the look alone.
pub async fn session_rules_portal(
    state: &AppState,
    session: &session::SessionData,
) -> Result<Option<Client>, AppError> {
    if !session.portal_from_flow {
        return Ok(None);
    }
    match session.portal.as_deref().map(ClientId::parse) {
        Some(Ok(id)) => Ok(state.clients.get(&id).await?),
        _ => Ok(None),
    }
}

/// The client the browser's session began from, for the look only: read
/// from `user` when the handler has it, else from the cookie. A store that
/// cannot answer means no portal (the page still renders, in `default`).
pub(super) async fn session_portal_client(
    state: &AppState,
    jar: &CookieJar,
    user: Option<&CurrentUser>,
) -> Option<Client> {
    let portal = match user {
        Some(current) => current.session.portal.clone(),
        None => session::portal_hint(state, jar).await,
    }?;
    let id = ClientId::parse(&portal).ok()?;
    state.clients.get(&id).await.ok().flatten()
}
