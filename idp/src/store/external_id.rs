//! The customer's key in each portal it came from (`user_external_id`,
//! migration 0008): one account per address across the deployment's
//! portals, so an account may carry one external id per portal. Read when a
//! client is configured to receive its portal's id as a claim
//! (`oidc::external_id`); written by the import.

use time::OffsetDateTime;

use super::Result;
use crate::domain::UserId;

/// One portal's id for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId {
    /// A client id or a theme name, as the import record said.
    pub portal: String,
    pub external_id: String,
    pub created_at: OffsetDateTime,
}

#[async_trait::async_trait]
pub trait ExternalIdStore {
    /// Every portal's id for the account, by portal.
    async fn external_ids(&self, user: &UserId) -> Result<Vec<ExternalId>>;

    /// Records `external_id` as the account's id in `portal`. `false` when
    /// the account already has an id there (kept as it is);
    /// [`Error::Conflict`](super::Error::Conflict) when another account has
    /// this id in this portal.
    async fn add_external_id(
        &self,
        user: &UserId,
        portal: &str,
        external_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool>;
}
