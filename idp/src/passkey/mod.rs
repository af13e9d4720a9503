//! Passkeys (WebAuthn Level 3): registering, naming and removing them on
//! `/account/passkeys`, and signing in with them (`signin`: the first step
//! instead of a password, or the second step after one). The ceremonies
//! and their checks are webauthn-rs's (Kanidm's crate): no CBOR, COSE or
//! attestation code of our own. The relying party is the issuer: its host
//! is the RP id, its origin the only origin accepted.

mod assertion;
mod ceremony;
mod register;
mod settings;
mod signin;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use webauthn_rs::prelude::Webauthn;

use crate::web::ui::Ui;
use crate::web::{AppState, paths};

const NOT_JSON: &str = "The request could not be read. Reload the page and try again.";
const EXPIRED_FORM: &str = "This page has expired. Reload it and try again.";
const UNAVAILABLE: &str = "Passkeys are not available on this server.";

/// How the JSON calls of the pages' scripts are refused: `{"error": …}`.
fn refused(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// What a ceremony call checks first, once its page's look is known: the
/// page's CSRF token, then that this server offers passkeys. `Err`: the
/// refusal to send (see [`refused`]).
fn opened(
    state: &AppState,
    ui: &Ui,
    csrf_token: &str,
) -> Result<Webauthn, (StatusCode, &'static str)> {
    if !ui.csrf_ok(csrf_token) {
        return Err((StatusCode::FORBIDDEN, EXPIRED_FORM));
    }
    ceremony::relying_party(state).ok_or((StatusCode::NOT_FOUND, UNAVAILABLE))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::ACCOUNT_PASSKEYS, get(settings::page))
        .route(
            paths::ACCOUNT_PASSKEYS_REGISTER_START,
            post(register::start),
        )
        .route(
            paths::ACCOUNT_PASSKEYS_REGISTER_FINISH,
            post(register::finish),
        )
        .route(paths::ACCOUNT_PASSKEY_RENAME, post(settings::rename))
        .route(paths::ACCOUNT_PASSKEY_REMOVE, post(settings::remove))
        .route(paths::LOGIN_PASSKEY_START, post(signin::start))
        .route(paths::LOGIN_PASSKEY_FINISH, post(signin::finish))
        .route(
            paths::LOGIN_OTP_PASSKEY_START,
            post(signin::second_step_start),
        )
        .route(
            paths::LOGIN_OTP_PASSKEY_FINISH,
            post(signin::second_step_finish),
        )
}
