//! Passkeys (WebAuthn credentials) of a user: each with the owner's name for
//! it and the credential as the WebAuthn library serialises it. A
//! credential id belongs to one account only (`passkey_credential_id_key`).

use time::OffsetDateTime;

use super::Result;
use crate::domain::UserId;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredPasskey {
    /// Our id for it (random, URL-safe): the account pages name it by this.
    pub id: String,
    pub user_id: UserId,
    pub name: String,
    /// The authenticator's credential id, base64url.
    pub credential_id: String,
    /// The credential (public key, counter, backup flags) as JSON; only the
    /// passkey capability reads it.
    pub credential: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A passkey to store (see [`PasskeyStore::add_passkey`]).
#[derive(Debug, Clone)]
pub struct NewPasskey {
    pub id: String,
    pub name: String,
    pub credential_id: String,
    pub credential: String,
}

#[async_trait::async_trait]
pub trait PasskeyStore {
    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user: &UserId) -> Result<Vec<StoredPasskey>>;

    /// Stores a new passkey. [`Error::Conflict`](super::Error::Conflict)
    /// when its credential id is already stored (for any account).
    async fn add_passkey(
        &self,
        user: &UserId,
        passkey: NewPasskey,
        now: OffsetDateTime,
    ) -> Result<StoredPasskey>;

    /// The passkey with this credential id (base64url), whoever owns it.
    async fn passkey_by_credential_id(&self, credential_id: &str) -> Result<Option<StoredPasskey>>;

    /// Records a sign-in with the passkey `id`: `last_used_at` becomes
    /// `now`, and with `updated` the credential (its signature counter and
    /// backup flags) is replaced, only if it is still `previous` as read
    /// before the sign-in was checked. `false` when it was not: another
    /// sign-in with the same passkey got there first (or it is gone).
    async fn passkey_used(
        &self,
        id: &str,
        previous: &str,
        updated: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Renames one of the user's passkeys; `false` when the user has no
    /// passkey with that id.
    async fn rename_passkey(&self, user: &UserId, id: &str, name: &str) -> Result<bool>;

    /// Removes one of the user's passkeys, unless it is the account's last
    /// way to sign in: with `keep_last`, the last passkey of an account with
    /// no password stays (read as stored when the removal runs, after any
    /// other removal of the account's passkeys has committed, so two
    /// removals racing cannot both pass). `false` when nothing was removed.
    async fn remove_passkey(&self, user: &UserId, id: &str, keep_last: bool) -> Result<bool>;
}
