//! The durable store: users, clients, grants, tokens, keys, audit trail, mail
//! outbox. One set of traits, two implementations (PostgreSQL for production,
//! SQLite for the embedded default), chosen once by the database URL.
//!
//! Operations that must be atomic together (a token and the mail that carries
//! it) are single methods here, so each implementation owns its transaction.

mod account;
mod breaker;
pub mod cache;
pub mod client_cache;
mod connect;
mod error;
mod external_id;
mod import;
mod keys;
mod mail;
mod mfa;
mod oauth;
mod passkey;
mod postgres;
mod records;
pub mod retention;
mod revocation;
mod setting;
mod sql;
mod sqlite;

pub use account::{AccountStore, EmailVerification, NewToken};
pub use connect::connect;
pub use error::{Error, Result};
pub use external_id::{ExternalId, ExternalIdStore};
pub use import::{ExistingAccount, ImportAction, ImportStore, ImportWrite, ImportedUser};
pub use keys::{KeyStore, StoredKey};
pub use mail::*;
pub use mfa::{MfaStore, NewTotp, TotpCredential};
pub use oauth::{Consent, NewRefreshToken, OAuthStore, RefreshFamily, RefreshToken};
pub use passkey::{NewPasskey, PasskeyStore, StoredPasskey};
pub use postgres::PostgresStore;
pub use records::*;
pub use retention::{PruneSession, RETENTION_APPLICATION_NAME, RETENTION_LOCK_KEY, RetentionStore};
/// The SQL of the queries whose plans the test suite checks with `EXPLAIN`
/// (they must stay index scans as the tables grow).
pub mod queries {
    pub use super::sql::audit::SEARCH_AUDIT_EVENTS;
    pub use super::sql::user::{SEARCH_USERS_POSTGRES, SEARCH_USERS_SQLITE, prefix_bounds};
}
pub use revocation::{RevocationStore, RevokedToken};
pub use setting::{Setting, SettingStore};
pub use sqlite::SqliteStore;

use std::sync::Arc;

/// Everything the server needs from its durable store.
#[async_trait::async_trait]
pub trait Store:
    UserStore
    + ClientStore
    + AuditStore
    + AccountStore
    + MfaStore
    + PasskeyStore
    + OAuthStore
    + MailStore
    + KeyStore
    + SettingStore
    + RevocationStore
    + RetentionStore
    + StatsStore
    + ExternalIdStore
    + ImportStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// "postgres" or "sqlite", for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<()>;
    async fn ping(&self) -> Result<()>;
}

pub type SharedStore = Arc<dyn Store>;
