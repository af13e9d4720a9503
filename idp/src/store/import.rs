//! Accounts brought over from a portal's own user table (issue 15): what the
//! import needs to know of the accounts already here, and its batched
//! writes. The decisions (new, update, link, skip, refuse) are made above,
//! in `migration`; this only reads and writes.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::{AuditEvent, NewTotp, Result};
use crate::domain::{Email, UserId};

/// An account already here, as the import sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingAccount {
    pub user_id: UserId,
    pub is_admin: bool,
    /// Portal → the account's external id there.
    pub external_ids: HashMap<String, String>,
}

/// One imported account's row.
#[derive(Debug, Clone)]
pub struct ImportedUser {
    pub id: UserId,
    pub email: Email,
    /// `None`: empty for a new account; an update keeps the current one.
    pub name: Option<String>,
    /// `None`: false for a new account; an update keeps the current one.
    pub email_verified: Option<bool>,
    /// As the portal's software wrote it (`credentials::legacy`); `None`:
    /// no usable password yet. On an update, `None` keeps the current one.
    pub password_hash: Option<String>,
    pub created_at: OffsetDateTime,
}

/// What to do with one record; all of it or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportAction {
    /// A new account.
    Create,
    /// The existing account `user.id` takes the record's name, verification,
    /// password hash (when given) and authenticator (when given).
    Update,
    /// The existing account `user.id` only gains the external id.
    Link,
}

#[derive(Debug, Clone)]
pub struct ImportWrite {
    pub action: ImportAction,
    pub user: ImportedUser,
    /// Sealed as enrolment seals it; stored confirmed (it is in use already),
    /// replacing any authenticator of the account.
    pub totp: Option<NewTotp>,
    /// (portal, external id), added to the account.
    pub external_id: Option<(String, String)>,
    pub audit: AuditEvent,
}

#[async_trait::async_trait]
pub trait ImportStore {
    /// The accounts among `email_keys` (lowercased addresses), by key.
    async fn existing_accounts(
        &self,
        email_keys: &[String],
    ) -> Result<HashMap<String, ExistingAccount>>;

    /// Which accounts hold `external_ids` in `portal`: external id → user.
    async fn external_id_owners(
        &self,
        portal: &str,
        external_ids: &[String],
    ) -> Result<HashMap<String, UserId>>;

    /// Writes the batch in one transaction. When a write collides with a
    /// row written meanwhile (an address or external id taken since the
    /// look-up): with `whole`, nothing is written and the error is
    /// [`Error::Conflict`](super::Error::Conflict); without, every write is
    /// tried again in its own transaction and the indexes of those that
    /// still collide are returned (the others are written).
    async fn write_import(
        &self,
        writes: &[ImportWrite],
        now: OffsetDateTime,
        whole: bool,
    ) -> Result<Vec<usize>>;
}
