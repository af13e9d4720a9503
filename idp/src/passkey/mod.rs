//! Passkeys (WebAuthn Level 3): registering, naming and removing them on
//! `/account/passkeys`, and signing in with them (`signin`: the first step
//! instead of a password, or the second step after one). The ceremonies
//! and their checks are webauthn-rs's (Kanidm's crate): no CBOR, COSE or
//! attestation code of our own. The relying party is the issuer: its host
//! is the RP id, its origin the only origin accepted.

mod assertion;
mod ceremony;
mod refusal;
mod register;
mod settings;
mod signin;

use axum::Router;
use axum::routing::{get, post};

use crate::web::{AppState, paths};

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
