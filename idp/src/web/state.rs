//! The application state: cheap handles, cloned into every request.

use std::sync::Arc;

use crate::account::PasswordHasher;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::ephemeral::Ephemeral;
use crate::store::SharedStore;

use super::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub ephemeral: Ephemeral,
    pub clock: SharedClock,
    pub hasher: PasswordHasher,
    pub metrics: Metrics,
}
