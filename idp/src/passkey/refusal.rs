//! How the passkey ceremonies' JSON calls (the pages' scripts) are
//! refused, and the checks each one opens with.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use webauthn_rs::prelude::Webauthn;

use super::ceremony;
use crate::web::AppState;
use crate::web::ui::Ui;

pub const NOT_JSON: &str = "The request could not be read. Reload the page and try again.";
pub const EXPIRED_FORM: &str = "This page has expired. Reload it and try again.";
pub const UNAVAILABLE: &str = "Passkeys are not available on this server.";

/// How the JSON calls of the pages' scripts are refused: `{"error": …}`.
pub fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// What a ceremony call checks first, once its page's look is known: the
/// page's CSRF token, then that this server offers passkeys. `Err`: the
/// refusal to send (see [`refused`]).
pub fn opened(
    state: &AppState,
    ui: &Ui,
    csrf_token: &str,
) -> Result<Webauthn, (StatusCode, &'static str)> {
    if !ui.csrf_ok(csrf_token) {
        return Err((StatusCode::FORBIDDEN, EXPIRED_FORM));
    }
    ceremony::relying_party(state).ok_or((StatusCode::NOT_FOUND, UNAVAILABLE))
}
