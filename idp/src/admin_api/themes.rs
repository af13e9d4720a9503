//! `GET /admin/api/themes`: the themes installed on this provider (the
//! folders of `themes.dir` loaded at start-up), so that forms offer a
//! choice instead of a free text box; and the check that a client names
//! one of them.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Admin;
use super::error::{ApiError, bad_request};
use crate::web::AppState;
use crate::web::theme::Themes;

#[derive(Debug, Serialize, ToSchema)]
pub struct ThemeView {
    /// What a client's `theme` names.
    pub name: String,
    /// The portal's name, from its `theme.toml`.
    pub display_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ThemeList {
    /// Ordered by name; `default` is always among them.
    pub items: Vec<ThemeView>,
}

/// The installed theme names, sorted.
pub fn installed(themes: &Themes) -> Vec<String> {
    let mut names: Vec<String> = themes.names().map(str::to_owned).collect();
    names.sort();
    names
}

/// A client's theme must be installed: an unknown one would silently show
/// the default look.
pub fn check_theme(themes: &Themes, theme: Option<&str>) -> Result<(), ApiError> {
    match theme {
        Some(name) if !themes.exists(name) => Err(bad_request(format!(
            "theme: no theme named {name} is installed (installed: {})",
            installed(themes).join(", ")
        ))),
        _ => Ok(()),
    }
}

/// The installed themes.
#[utoipa::path(
    get,
    path = "/admin/api/themes",
    tag = "clients",
    responses((status = 200, body = ThemeList)),
    security(("bearer" = []))
)]
pub async fn list(
    _admin: Admin,
    State(state): State<AppState>,
) -> Result<Json<ThemeList>, ApiError> {
    let items = installed(&state.themes)
        .into_iter()
        .map(|name| ThemeView {
            display_name: state.themes.get(Some(&name)).meta.display_name.clone(),
            name,
        })
        .collect();
    Ok(Json(ThemeList { items }))
}
