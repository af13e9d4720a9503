//! The application state: cheap handles, cloned into every request.

use std::sync::Arc;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::credentials::PasswordHasher;
use crate::credentials::policy::PasswordPolicy;
use crate::ephemeral::Ephemeral;
use crate::store::SharedStore;

use super::metrics::Metrics;
use super::theme::Themes;

/// One `Arc` clone per request instead of one per field: the state is
/// extracted by every handler and middleware.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(Debug)]
pub struct Shared {
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
    pub keys: crate::tokens::keys::SigningKeys,
    /// Seals secrets at rest (TOTP secrets) when `keys.encryption_key` is set.
    pub kek: Option<Arc<crate::crypto::envelope::Kek>>,
    /// Clients read on hot paths, kept a few seconds (see `store::client_cache`).
    pub clients: crate::store::client_cache::ClientCache,
    /// Users as `/userinfo` reads them, kept [`USER_CACHE_TTL`] (a bearer
    /// call per page view must not cost a database read each).
    pub users: crate::store::cache::TtlCache<crate::domain::UserId, Option<crate::store::User>>,
    /// Access tokens whose signature was checked lately (see `oidc::bearer`).
    pub verified_tokens: crate::store::cache::TtlCache<String, crate::tokens::AccessClaims>,
    pub metrics: Metrics,
    /// One reload of revoked access tokens at a time (see `oidc::revocation`).
    pub revocation_reload: crate::tokens::ReloadGate,
    /// Calls the just-in-time migration hooks (`credentials::jit::hook_client`).
    pub hook_client: reqwest::Client,
    /// The discovery document, rendered once.
    pub discovery: axum::body::Bytes,
}

/// How long a node serves a user it read for `/userinfo`: a change made
/// elsewhere (profile, disabling) shows there within this.
pub const USER_CACHE_TTL: time::Duration = time::Duration::seconds(5);
pub const USER_CACHE_CAPACITY: usize = 10_000;
