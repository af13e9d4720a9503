//! The JSON admin API (DESIGN "Admin"), served only on the admin listener
//! (`admin.listen`), described by an OpenAPI document generated from these
//! handlers (`GET /admin/api/openapi.json`). Every call needs an admin
//! bearer token (see [`auth`]); every change is audited with its actor.

mod audit_events;
pub mod auth;
mod clients;
mod error;
mod import;
mod keys;
mod outbox;
mod shared;
mod summary;
mod themes;
mod user_actions;
mod user_edit;
mod user_passkeys;
mod user_sessions;
mod users;

pub use auth::{ADMIN_SCOPE, Admin, CONSOLE_CLIENT_ID};
pub use error::ApiError;
pub use import::{MAX_BODY_BYTES as IMPORT_MAX_BODY_BYTES, MAX_RECORDS as IMPORT_MAX_RECORDS};

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use tower_http::limit::RequestBodyLimitLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::web::AppState;

/// Where the OpenAPI document is served (without a token: it describes, it
/// does not reveal).
pub const OPENAPI_PATH: &str = "/admin/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Identity provider admin API",
        description = "Administration of the identity provider. Bearer access tokens of this provider \
            with the `admin` scope: issued to the admin console for an administrator who signed in \
            with a one-time code, or by client_credentials to a client granted `admin`."
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "users", description = "Accounts"),
        (name = "audit", description = "The audit trail"),
        (name = "clients", description = "Relying parties"),
        (name = "mail", description = "The mail outbox"),
        (name = "keys", description = "Token signing keys"),
        (name = "summary", description = "Counts for a dashboard"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let http = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The routes and their OpenAPI description, from one list. Bodies are
/// held to `body_limit` (`server.body_limit_bytes`), but for the import's
/// batch, which has its own limit.
fn api(body_limit: usize) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(users::search, users::create))
        .routes(routes!(users::show, user_edit::update))
        .routes(routes!(user_actions::disable))
        .routes(routes!(user_actions::enable))
        .routes(routes!(user_actions::unlock))
        .routes(routes!(user_actions::sign_out))
        .routes(routes!(user_actions::send_password_reset))
        .routes(routes!(user_actions::reset_mfa))
        .routes(routes!(user_actions::grant_admin))
        .routes(routes!(user_actions::revoke_admin))
        .routes(routes!(user_sessions::sessions))
        .routes(routes!(user_sessions::end_session))
        .routes(routes!(user_sessions::refresh_tokens))
        .routes(routes!(user_sessions::revoke_refresh_token))
        .routes(routes!(user_passkeys::passkeys))
        .routes(routes!(user_passkeys::remove_passkey))
        .routes(routes!(summary::show))
        .routes(routes!(audit_events::search))
        .routes(routes!(clients::list, clients::create))
        .routes(routes!(clients::show, clients::update, clients::delete))
        .routes(routes!(clients::rotate_secret))
        .routes(routes!(themes::list))
        .routes(routes!(outbox::list))
        .routes(routes!(outbox::retry))
        .routes(routes!(keys::list))
        .routes(routes!(keys::rotate))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import::import))
                .layer(DefaultBodyLimit::max(import::MAX_BODY_BYTES)),
        )
        .split_for_parts();
    describe_refusals(&mut doc);
    (router, doc)
}

/// Every operation may be refused by the [`Admin`] extractor: its 401 and
/// 403 are described once, here, rather than on each handler.
fn describe_refusals(doc: &mut utoipa::openapi::OpenApi) {
    let answer = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in operations.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            responses.insert(
                "401".into(),
                answer("No token, or one that is invalid, expired, revoked, for another audience, or from a sign-in without a one-time code (RFC 6750, RFC 9470)"),
            );
            responses.insert(
                "403".into(),
                answer("A valid token without the admin role or scope"),
            );
        }
    }
}

/// The admin listener's own body limit: the import's batch, and a margin so
/// that a batch just over it gets the API's JSON 413, which says the limit.
pub fn listener_body_limit(body_limit: usize) -> usize {
    body_limit.max(2 * import::MAX_BODY_BYTES)
}

pub fn router(body_limit: usize) -> Router<AppState> {
    let (router, doc) = api(body_limit);
    let doc = Bytes::from(serde_json::to_vec(&doc).unwrap_or_default());
    router
        .route(
            OPENAPI_PATH,
            axum::routing::get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )],
                    doc,
                )
            }),
        )
        // Unknown API paths answer the API's JSON 404 even with the console
        // mounted beside (its catch-all serves the other /admin/ pages).
        .route(
            "/admin/api/{*rest}",
            axum::routing::any(|| async { no_such_endpoint() }),
        )
        .fallback(|| async { no_such_endpoint() })
}

fn no_such_endpoint() -> axum::response::Response {
    ApiError::NotFound("no such endpoint on the admin listener").into_response()
}
