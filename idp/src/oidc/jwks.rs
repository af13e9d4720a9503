//! `GET /jwks`: the published keys (RFC 7517 §5), a prebuilt body shared by
//! every request.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::tokens::keys::SigningKeys;
use crate::web::AppState;
use crate::web::paths;

pub fn router() -> Router<AppState> {
    Router::new().route(paths::JWKS, get(jwks))
}

impl FromRef<AppState> for SigningKeys {
    fn from_ref(state: &AppState) -> Self {
        state.keys.clone()
    }
}

async fn jwks(State(keys): State<SigningKeys>) -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            // max-age + keys.refresh_secs < keys.publish_ahead_minutes (checked
            // by the configuration): a new key is in every cache before it signs.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            // Browser-based relying parties fetch it from their own origin.
            (
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            ),
        ],
        keys.jwks_json(),
    )
}
