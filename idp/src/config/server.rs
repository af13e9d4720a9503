//! `[server]`: the public listener and the issuer.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ConfigError, invalid};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the public listener; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The issuer identifier put in every token; must be https outside dev mode.
    pub issuer: Url,
    /// Local development: allows an http issuer and cookies without `Secure`.
    pub dev_mode: bool,
    /// Longest time a request may take before it is answered 408.
    pub request_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// Reverse proxies in front that append to `X-Forwarded-For`: the client
    /// IP is taken that many entries from its right. 0: the TCP peer.
    pub trusted_proxy_hops: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            issuer: Url::parse("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable_url()),
            dev_mode: true,
            request_timeout_secs: 30,
            body_limit_bytes: 64 * 1024,
            trusted_proxy_hops: 0,
        }
    }
}

// `Url::parse` of a literal cannot fail; this keeps `Default` free of unwrap.
fn unreachable_url() -> Url {
    Url::from_directory_path("/").unwrap_or_else(|_| unreachable_url())
}

impl ServerConfig {
    /// The WebAuthn relying-party id passkeys are made for: the issuer's
    /// host when it is a domain name. `None` (an IP address) turns passkeys
    /// off, since WebAuthn RP ids are domains.
    pub fn passkey_rp_id(&self) -> Option<&str> {
        self.issuer.domain()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.issuer.scheme(), "http" | "https") {
            return Err(invalid("server.issuer", "must be an http(s) URL"));
        }
        if self.issuer.scheme() != "https" && !self.dev_mode {
            return Err(invalid(
                "server.issuer",
                "must use https outside dev mode (set server.dev_mode = true for local use)",
            ));
        }
        if self.issuer.query().is_some() || self.issuer.fragment().is_some() {
            return Err(invalid(
                "server.issuer",
                "must not have a query or fragment",
            ));
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            return Err(invalid(
                "server.request_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.body_limit_bytes) {
            return Err(invalid(
                "server.body_limit_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        Ok(())
    }

    /// Checked after the other sections, where it has always been.
    pub(super) fn validate_proxy_hops(&self) -> Result<(), ConfigError> {
        if self.trusted_proxy_hops > 10 {
            return Err(invalid(
                "server.trusted_proxy_hops",
                "must be between 0 and 10",
            ));
        }
        Ok(())
    }
}
