//! HTTP plumbing shared by every capability: the app state, errors, health
//! and metrics endpoints, middleware.

mod assets;
pub mod audit;
pub mod browser;
pub mod client_meta;
mod error;
mod error_page;
pub mod form;
pub mod headers;
mod health;
pub mod metrics;
pub mod paths;
pub mod plumbing;
pub mod portal;
pub mod session;
pub mod state;
pub mod theme;
pub mod ui;

pub use error::AppError;
pub use error_page::{ThemedErrorsLayer, busy as busy_page, not_found};
pub use health::metrics as metrics_page;
pub use plumbing::Busy;
pub use state::{AppState, USER_CACHE_CAPACITY, USER_CACHE_TTL};

use axum::Router;

/// Routes that every deployment serves, whatever its capabilities.
pub fn router() -> Router<AppState> {
    health::router().route(paths::STATIC, axum::routing::get(assets::serve))
}
