//! Theme static files. Their URLs carry the theme's content version, so they
//! are cached for a year and change URL when they change.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

pub async fn serve(
    State(state): State<AppState>,
    Path((theme, version, path)): Path<(String, String, String)>,
) -> Response {
    if !state.themes.exists(&theme) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let theme = state.themes.get(Some(&theme));
    let Some(file) = theme.static_file(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if version == theme.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, file.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        file.bytes,
    )
        .into_response()
}
