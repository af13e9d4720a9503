//! The records of users, clients and the audit trail, and the traits that
//! read and write them (the other tables have a file each beside this one).

use time::OffsetDateTime;

use super::error::Result;
use crate::domain::{ClientId, ClientKind, Email, GrantType, IdTokenAlg, RedirectUri, UserId};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub disabled: bool,
    pub locked_until: Option<OffsetDateTime>,
    pub is_admin: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub secret_hash: Option<String>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub first_party: bool,
    pub theme: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub id_token_alg: IdTokenAlg,
    pub require_mfa: bool,
    /// PKCE (S256) required of this confidential client too; public
    /// clients always need it.
    pub require_pkce: bool,
    /// The claim in which this client receives the account's external id
    /// for its portal (`oidc::external_id`); `None`: not sent.
    pub external_id_claim: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub id: ClientId,
    pub name: String,
    pub secret_hash: Option<String>,
    pub kind: ClientKind,
    pub redirect_uris: Vec<RedirectUri>,
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    pub first_party: bool,
    pub theme: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub id_token_alg: IdTokenAlg,
    pub require_mfa: bool,
    pub require_pkce: bool,
    pub external_id_claim: Option<String>,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub kind: String,
    pub user_id: Option<UserId>,
    pub actor: Option<String>,
    pub client_id: Option<ClientId>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAuditEvent {
    pub id: i64,
    pub occurred_at: OffsetDateTime,
    pub event: AuditEvent,
    /// The current address of the account concerned, if it still exists.
    pub user_email: Option<String>,
    /// The current address of the acting administrator (`actor` = `user:<id>`).
    pub actor_email: Option<String>,
}

/// An administrator's change to an account: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    /// A new address also voids every outstanding reset and verification link
    /// (they were mailed to the old one).
    pub email: Option<Email>,
    pub email_verified: Option<bool>,
    /// Apply only while the account's address is still this one (compared
    /// by its normalised key): a change made meanwhile wins, and this one
    /// answers `None`.
    pub expect_email: Option<Email>,
}

/// Counts for the administrators' dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub users: u64,
    pub admins: u64,
    pub disabled: u64,
    /// Locked until after the instant asked about.
    pub locked: u64,
    pub clients: u64,
    pub mail_pending: u64,
    pub mail_failed: u64,
    pub mail_sent: u64,
}

/// A page of the user search (admin API): ordered by email, case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// The start of the email address or of the name (case-insensitive),
    /// or an exact user id.
    pub text: Option<String>,
    /// Only users whose email key (lowercase email) sorts after this.
    pub after_email_key: Option<String>,
    pub limit: u32,
}

/// A page of the audit trail (admin API): most recent first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub user: Option<UserId>,
    /// Exact event kind, e.g. `login.failed`.
    pub kind: Option<String>,
    /// Events at or after this instant...
    pub since: Option<OffsetDateTime>,
    /// ...and strictly before this one.
    pub until: Option<OffsetDateTime>,
    /// Only events with a smaller id (the previous page's last).
    pub before_id: Option<i64>,
    pub limit: u32,
}

#[async_trait::async_trait]
pub trait UserStore {
    async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> Result<User>;
    async fn user_by_email(&self, email: &Email) -> Result<Option<User>>;
    async fn user_by_id(&self, id: &UserId) -> Result<Option<User>>;
    /// Users ordered by email, `limit` from `offset`.
    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<User>>;
    async fn search_users(&self, query: &UserQuery) -> Result<Vec<User>>;
    /// `None` when no such user.
    async fn set_user_disabled(
        &self,
        id: &UserId,
        disabled: bool,
        now: OffsetDateTime,
    ) -> Result<Option<User>>;
    /// Applies `changes` (see [`UserChanges`]); `None` when no such user,
    /// [`Error::Conflict`](super::Error::Conflict) when another account has the new email.
    async fn update_user(
        &self,
        id: &UserId,
        changes: &UserChanges,
        now: OffsetDateTime,
    ) -> Result<Option<User>>;
    /// Up to `limit` stored password hashes that do not start with
    /// `own_prefix`, the deployment's argon2id and its parameters (a `like`
    /// pattern without its `%`): imported from other software, or argon2id
    /// at other parameters; picked at random. The hasher learns from them
    /// what a legacy check costs.
    async fn legacy_password_hashes(&self, own_prefix: &str, limit: u32) -> Result<Vec<String>>;
    /// `None` when no such user.
    async fn set_user_admin(
        &self,
        id: &UserId,
        is_admin: bool,
        now: OffsetDateTime,
    ) -> Result<Option<User>>;
}

#[async_trait::async_trait]
pub trait ClientStore {
    async fn create_client(&self, client: NewClient, now: OffsetDateTime) -> Result<Client>;
    async fn client_by_id(&self, id: &ClientId) -> Result<Option<Client>>;
    async fn list_clients(&self) -> Result<Vec<Client>>;
    /// Writes every field of `client` but its kind and `created_at`, if the
    /// stored row is still the one last updated at `expected_updated_at`.
    /// `None`: no such client, or changed meanwhile.
    async fn update_client(
        &self,
        client: NewClient,
        expected_updated_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Client>>;
    /// Removes the client with its consents and refresh tokens (cascade).
    /// `false` when there was no such client.
    async fn delete_client(&self, id: &ClientId) -> Result<bool>;
}

#[async_trait::async_trait]
pub trait AuditStore {
    async fn record(&self, event: AuditEvent, now: OffsetDateTime) -> Result<()>;
    /// Most recent first, optionally for one user.
    async fn audit_events(
        &self,
        user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<RecordedAuditEvent>>;
    async fn search_audit_events(&self, query: &AuditQuery) -> Result<Vec<RecordedAuditEvent>>;
}

#[async_trait::async_trait]
pub trait StatsStore {
    /// Users, clients and outbox counts; `locked` counts locks running past `now`.
    async fn summary(&self, now: OffsetDateTime) -> Result<Summary>;
}
