//! The OpenID Connect provider (OIDC Core 1.0 with the authorization code
//! flow, RFC 6749, RFC 7636 PKCE, RFC 7662 introspection, RFC 7009
//! revocation, RFC 9068 access tokens, RFC 9207 `iss`, RP-Initiated Logout).
//! Protocol decisions live here; pages come from the themes.

pub mod authorize;
pub mod bearer;
mod client_auth;
mod clients;
mod consent;
pub mod discovery;
mod error;
pub mod external_id;
mod hint;
mod introspect;
pub mod issue;
mod jwks;
mod logout;
pub mod pkce;
pub mod request;
mod response;
pub mod revocation;
mod revoke;
mod token;
mod userinfo;

pub use bearer::{active_access_token, bearer};
pub use clients::{
    ClientChanges, ClientRegistration, RegisterClientError, RegisteredClient, UpdateClientError,
    register_client, register_client_with_scopes, rotate_client_secret, update_client,
};

use axum::Router;
use axum::routing::get;

use crate::web::{AppState, paths};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::DISCOVERY, get(discovery::discovery))
        .route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(paths::AUTHORIZE_CONTINUE, get(authorize::resume))
        .route(paths::CONSENT, get(consent::page).post(consent::decide))
        .route(paths::GRANTS, get(consent::grants).post(consent::revoke))
        .route(paths::TOKEN, axum::routing::post(token::token))
        .route(
            paths::USERINFO,
            get(userinfo::userinfo).post(userinfo::userinfo_post),
        )
        .route(
            paths::INTROSPECT,
            axum::routing::post(introspect::introspect),
        )
        .route(paths::REVOKE, axum::routing::post(revoke::revoke))
        .route(paths::END_SESSION, get(logout::get).post(logout::post))
        .route(paths::FORM_POST_SCRIPT, get(response::form_post_script))
        .merge(jwks::router())
}
