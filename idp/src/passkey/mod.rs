//! Passkeys (WebAuthn Level 3, issue 16): registering, naming and removing
//! them on `/account/passkeys`. The ceremonies and their checks are
//! webauthn-rs's (Kanidm's crate): no CBOR, COSE or attestation code of our
//! own. The relying party is the issuer: its host is the RP id, its origin
//! the only origin accepted. Signing in with a passkey comes later, as a
//! step of the sign-in pipeline (`crate::signin`).

mod ceremony;
mod register;
mod settings;

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
}
