//! `[admin]`: the administration listener and the admin console.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::{ConfigError, invalid};
use super::secret::Secret;

/// The administration listener (DESIGN "Admin"): the JSON admin API, later
/// the console. A separate address, so exposing the public port never
/// exposes administration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener; port 0 picks a free port. Keep it on
    /// loopback or a private network.
    pub listen: SocketAddr,
    /// A person's admin token works only this long after the sign-in behind
    /// it (refresh tokens keep the first sign-in's time).
    pub max_sign_in_age_minutes: u64,
    /// Reverse proxies in front of the admin listener that append to
    /// `X-Forwarded-For` (the administrator's address in the audit trail is
    /// read that many entries from the right). 0: the TCP peer. The public
    /// listener's `server.trusted_proxy_hops` does not apply here.
    pub trusted_proxy_hops: usize,
    pub console: ConsoleConfig,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            max_sign_in_age_minutes: 720,
            trusted_proxy_hops: 0,
            console: ConsoleConfig::default(),
        }
    }
}

/// The admin console (the `admin` crate), mounted at `/admin/` on the admin
/// listener, and its built-in client `admin-console`, registered at start-up.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `false`: the admin listener serves the API only.
    pub disabled: bool,
    /// Where browsers reach the console, ending in `/admin/` (https, or http
    /// on loopback). Default: `http://<admin.listen>/admin/`.
    pub url: Option<Url>,
    /// The console client's secret. Default: generated once, kept in the
    /// database (sealed with `keys.encryption_key` when set), shared by every node.
    pub client_secret: Option<Secret>,
    /// Consoles run on their own with `idp-console` (each URL ending in
    /// `/admin/`): their sign-in and sign-out pages are registered too.
    pub standalone_urls: Vec<Url>,
    /// The IANA time zone the console shows times in and reads its date
    /// filters in (e.g. `Europe/Paris`). Default: `lockout.time_zone`.
    pub time_zone: Option<String>,
    /// Every console URL of the deployment (each ending in `/admin/`), for
    /// nodes with consoles of their own addresses. Empty (the default): each
    /// node adds its console's pages to the client and keeps the ones other
    /// nodes added. Set: the client's console pages are exactly these, plus
    /// this node's `url` and `standalone_urls`; addresses no longer listed
    /// are dropped at start-up (a retired node's).
    pub all_urls: Vec<Url>,
}

impl AdminConfig {
    /// `public_listen`: `server.listen`, which the admin listener must not share.
    pub(super) fn validate(&self, public_listen: SocketAddr) -> Result<(), ConfigError> {
        if self.listen.port() != 0 && self.listen.port() == public_listen.port() {
            return Err(invalid(
                "admin.listen",
                "must differ from server.listen: administration never shares the public port",
            ));
        }
        let console = &self.console;
        for (key, url) in console.url.iter().map(|u| ("admin.console.url", u)).chain(
            console
                .standalone_urls
                .iter()
                .map(|u| ("admin.console.standalone_urls", u))
                .chain(
                    console
                        .all_urls
                        .iter()
                        .map(|u| ("admin.console.all_urls", u)),
                ),
        ) {
            if !url.path().ends_with("/admin/") || url.query().is_some() {
                return Err(invalid(
                    key,
                    "must end in /admin/ (where the console's pages are)",
                ));
            }
            if crate::domain::RedirectUri::parse(url.as_str()).is_err() {
                return Err(invalid(key, "must use https (http only on loopback)"));
            }
        }
        if let Some(secret) = &console.client_secret
            && secret.expose().len() < 32
        {
            return Err(invalid(
                "admin.console.client_secret",
                "must be at least 32 characters (or leave it out to have one generated)",
            ));
        }
        if !(5..=10_080).contains(&self.max_sign_in_age_minutes) {
            return Err(invalid(
                "admin.max_sign_in_age_minutes",
                "must be between 5 and 10080 (a week)",
            ));
        }
        Ok(())
    }
}

impl ConsoleConfig {
    pub(super) fn validate_time_zone(&self) -> Result<(), ConfigError> {
        if let Some(tz) = &self.time_zone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            return Err(invalid(
                "admin.console.time_zone",
                "is not an IANA time zone such as Europe/Paris",
            ));
        }
        Ok(())
    }
}
