//! Values the provider generates once and every node then shares (today the
//! admin console client's secret). Written once: the first node to start
//! wins, the others read what it wrote.

use time::OffsetDateTime;

use super::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub value: String,
    /// Sealed with the key-encryption key (`crypto::envelope`).
    pub encrypted: bool,
}

#[async_trait::async_trait]
pub trait SettingStore {
    async fn setting(&self, name: &str) -> Result<Option<Setting>>;
    /// Stores `value` unless `name` has one; returns the value that is kept.
    async fn setting_or_insert(
        &self,
        name: &str,
        value: Setting,
        now: OffsetDateTime,
    ) -> Result<Setting>;
}
