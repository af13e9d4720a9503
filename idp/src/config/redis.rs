//! `[redis]`: the ephemeral store, a fixed URL or a primary found through
//! Redis Sentinel.

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ConfigError, invalid};
use super::secret::{ConnectionUrl, Secret};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db`. Absent (and no `sentinel`): the in-process
    /// store (one node only).
    pub url: Option<ConnectionUrl>,
    /// Prefix of every key, so several deployments can share one Redis.
    pub prefix: String,
    /// A primary found through Redis Sentinel instead of a fixed `url`
    /// (the two are exclusive): followed to its replica when Sentinel fails
    /// over (docs/decisions.md "Redis Sentinel").
    pub sentinel: Option<SentinelConfig>,
}

/// `[redis.sentinel]`: where the sentinels listen and which of their
/// services holds this deployment's data.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentinelConfig {
    /// Sentinels as `host:port` (at least one; list them all, in order of
    /// preference).
    pub addresses: Vec<String>,
    /// The name the sentinels monitor the primary under (`sentinel monitor
    /// <service> ...`).
    pub service: String,
    /// ACL user and password of the sentinels themselves, if they ask for one.
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<Secret>,
    /// ACL user and password of the primary and replicas.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Database number on the primary.
    pub db: i64,
    /// After a single-use value is taken or a claim (a lock) is written, wait
    /// up to this long for a replica to have it too (`WAIT 1 <ms>`), so a
    /// failover right after does not bring it back. 0: do not wait.
    pub replica_ack_timeout_ms: u64,
}

impl Default for SentinelConfig {
    fn default() -> Self {
        Self {
            addresses: Vec::new(),
            service: String::new(),
            sentinel_username: None,
            sentinel_password: None,
            username: None,
            password: None,
            db: 0,
            replica_ack_timeout_ms: 100,
        }
    }
}

impl SentinelConfig {
    /// The sentinels' addresses as host and port; `None` for an address
    /// that is not `host:port` (`[v6]:port` for IPv6).
    pub fn endpoints(&self) -> Option<Vec<(String, u16)>> {
        self.addresses.iter().map(|a| parse_host_port(a)).collect()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            prefix: "idp:".into(),
            sentinel: None,
        }
    }
}

impl RedisConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && (!matches!(url.scheme(), Some("redis" | "rediss"))
                || Url::parse(url.expose()).is_err())
        {
            return Err(invalid("redis.url", "must be a redis:// or rediss:// URL"));
        }
        if let Some(sentinel) = &self.sentinel {
            if self.url.is_some() {
                return Err(invalid(
                    "redis.sentinel",
                    "cannot be used together with redis.url: set one of them",
                ));
            }
            if sentinel.addresses.is_empty() {
                return Err(invalid(
                    "redis.sentinel.addresses",
                    "must list at least one sentinel as \"host:port\"",
                ));
            }
            if let Some(bad) = sentinel
                .addresses
                .iter()
                .find(|a| parse_host_port(a).is_none())
            {
                return Err(invalid(
                    "redis.sentinel.addresses",
                    format!("{bad:?} is not host:port (such as \"10.0.0.7:26379\")"),
                ));
            }
            let service = &sentinel.service;
            if service.is_empty() || service.len() > 128 || service.chars().any(char::is_whitespace)
            {
                return Err(invalid(
                    "redis.sentinel.service",
                    "must name the monitored primary (the <name> of `sentinel monitor <name> ...`)",
                ));
            }
            if !(0..=15).contains(&sentinel.db) {
                return Err(invalid("redis.sentinel.db", "must be between 0 and 15"));
            }
            if sentinel.replica_ack_timeout_ms > 5000 {
                return Err(invalid(
                    "redis.sentinel.replica_ack_timeout_ms",
                    "must be between 0 and 5000",
                ));
            }
        }
        if self.prefix.is_empty()
            || self.prefix.len() > 64
            || self.prefix.chars().any(|c| c.is_whitespace())
        {
            return Err(invalid(
                "redis.prefix",
                "must be 1 to 64 characters without spaces",
            ));
        }
        Ok(())
    }
}

pub(super) fn parse_host_port(address: &str) -> Option<(String, u16)> {
    let (host, port) = address.trim().rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port: u16 = port.parse().ok()?;
    if host.is_empty() || port == 0 || host.chars().any(|c| c.is_whitespace() || c == '/') {
        return None;
    }
    Some((host.to_owned(), port))
}
