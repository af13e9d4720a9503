//! HTTP plumbing shared by every capability: the app state, errors, health
//! and metrics endpoints, middleware.

mod error;
mod health;
pub mod metrics;
pub mod paths;
mod state;

pub use error::AppError;
pub use state::AppState;

use axum::Router;

/// Routes that every deployment serves, whatever its capabilities.
pub fn router() -> Router<AppState> {
    health::router()
}
