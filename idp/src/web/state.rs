//! The application state: cheap handles, cloned into every request.

use std::sync::Arc;

use crate::account::PasswordHasher;
use crate::account::policy::PasswordPolicy;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::ephemeral::Ephemeral;
use crate::store::SharedStore;

use super::metrics::Metrics;
use super::theme::Themes;

#[derive(Debug, Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: SharedStore,
    pub ephemeral: Ephemeral,
    pub clock: SharedClock,
    pub hasher: PasswordHasher,
    pub policy: Arc<PasswordPolicy>,
    pub themes: Themes,
    /// Queues mail in the durable outbox and wakes this node's worker.
    pub mail: crate::mail::MailQueue,
    /// Token signing keys, cached; reloaded by the maintenance task.
    pub keys: crate::oidc::keys::SigningKeys,
    /// Seals secrets at rest (TOTP secrets) when `keys.encryption_key` is set.
    pub kek: Option<Arc<crate::crypto::envelope::Kek>>,
    /// Clients read on hot paths, kept a few seconds (see `oidc::client_cache`).
    pub clients: crate::oidc::client_cache::ClientCache,
    pub metrics: Metrics,
    /// The discovery document, rendered once.
    pub discovery: axum::body::Bytes,
}
