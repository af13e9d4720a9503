//! `[migration_hook]`: just-in-time migration from a legacy portal that
//! cannot export its password hashes (issue 15, item 7; the client is
//! `credentials::jit`, the protocol docs/jit-migration.md). Off unless a URL
//! is set, for the deployment or for a portal.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::Url;

use super::error::ConfigError;
use super::secret::Secret;

/// Longest wait for a legacy portal's answer the configuration accepts:
/// the person at the sign-in page waits that long.
pub const MIGRATION_HOOK_MAX_TIMEOUT_MS: u64 = 10_000;

/// Shortest shared secret accepted (bytes): it is all that stands between
/// a forged call and a legacy portal's password check.
const MIN_SECRET_LEN: usize = 16;

/// Section `[migration_hook]` of the main config.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationHookConfig {
    /// The deployment's hook: asked for sign-ins of every portal without an
    /// entry in `portals`. Unset (the default): no hook.
    pub url: Option<String>,
    /// Shared secret the calls are signed with (`IDP__MIGRATION_HOOK__SECRET`,
    /// or `…__SECRET_FILE` to read it from a file).
    pub secret: Option<Secret>,
    /// How long to wait for an answer, connection included (1 to 10000).
    pub timeout_ms: u64,
    /// Calls per minute across the deployment (per node with the in-process
    /// ephemeral store); past it the hook is not asked.
    pub per_minute: u64,
    /// Calls per hour for one address.
    pub per_address_per_hour: u64,
    /// Hooks of single portals, keyed by client id or theme name
    /// (`[migration_hook.portals.<key>]`); a client id wins over its theme.
    pub portals: BTreeMap<String, PortalHook>,
}

/// `[migration_hook.portals.<key>]`: one legacy portal's own hook.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PortalHook {
    pub url: String,
    pub secret: Secret,
}

impl Default for MigrationHookConfig {
    fn default() -> Self {
        Self {
            url: None,
            secret: None,
            timeout_ms: 3000,
            per_minute: 60,
            per_address_per_hour: 5,
            portals: BTreeMap::new(),
        }
    }
}

/// The hook that applies to one sign-in: where to ask and how to sign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hook<'a> {
    /// `"deployment"`, or the `portals` key that chose it (for logs and audit).
    pub key: &'a str,
    pub url: &'a str,
    pub secret: &'a Secret,
}

impl MigrationHookConfig {
    /// The hook for a sign-in of `client_id`'s flow (whose theme is
    /// `theme`), or the deployment's; `None` when none applies.
    pub fn hook_for(&self, client_id: Option<&str>, theme: Option<&str>) -> Option<Hook<'_>> {
        let portal = [client_id, theme]
            .into_iter()
            .flatten()
            .find_map(|key| self.portals.get_key_value(key));
        if let Some((key, p)) = portal {
            return Some(Hook {
                key,
                url: &p.url,
                secret: &p.secret,
            });
        }
        match (&self.url, &self.secret) {
            (Some(url), Some(secret)) => Some(Hook {
                key: "deployment",
                url,
                secret,
            }),
            _ => None,
        }
    }

    /// Fails with the name of the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rule = |key: &str, reason: &str| ConfigError::Rule(format!("{key}: {reason}"));
        if !(1..=MIGRATION_HOOK_MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(rule(
                "migration_hook.timeout_ms",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=100_000).contains(&self.per_minute) {
            return Err(rule(
                "migration_hook.per_minute",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=1000).contains(&self.per_address_per_hour) {
            return Err(rule(
                "migration_hook.per_address_per_hour",
                "must be between 1 and 1000",
            ));
        }
        match (&self.url, &self.secret) {
            (Some(url), Some(secret)) => {
                check_url(url).map_err(|r| rule("migration_hook.url", r))?;
                check_secret(secret).map_err(|r| rule("migration_hook.secret", r))?;
            }
            (Some(_), None) => {
                return Err(rule(
                    "migration_hook.secret",
                    "is required when migration_hook.url is set",
                ));
            }
            (None, Some(_)) => {
                return Err(rule(
                    "migration_hook.url",
                    "is required when migration_hook.secret is set",
                ));
            }
            (None, None) => {}
        }
        for (key, portal) in &self.portals {
            let at = |field: &str| format!("migration_hook.portals.{key}.{field}");
            check_url(&portal.url).map_err(|r| rule(&at("url"), r))?;
            check_secret(&portal.secret).map_err(|r| rule(&at("secret"), r))?;
        }
        Ok(())
    }
}

/// An https URL, or http to a loopback address (a shim on the same host,
/// the tests): a password must not cross a network in the clear.
fn check_url(raw: &str) -> Result<(), &'static str> {
    let url =
        Url::parse(raw).map_err(|_| "is not a URL such as https://portal.example/idp-check")?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback => {}
        _ => return Err("must be https (http only to a loopback address)"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password (the calls are signed instead)");
    }
    Ok(())
}

fn check_secret(secret: &Secret) -> Result<(), &'static str> {
    if secret.expose().len() < MIN_SECRET_LEN {
        return Err("must be at least 16 characters (e.g. `openssl rand -hex 32`)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_url(url: &str) -> MigrationHookConfig {
        MigrationHookConfig {
            url: Some(url.to_owned()),
            secret: Some(Secret::new("0123456789abcdef0123")),
            ..MigrationHookConfig::default()
        }
    }

    fn message(config: &MigrationHookConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn off_by_default() {
        let config = MigrationHookConfig::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.hook_for(Some("shop"), Some("helix")), None);
    }

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for ok in [
            "https://portal.example/idp-check",
            "http://127.0.0.1:8081/check",
            "http://[::1]:8081/check",
            "http://localhost/check",
        ] {
            assert!(with_url(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "http://portal.example/check",
            "http://10.0.0.7/check",
            "ftp://portal.example/",
            "portal.example/check",
            "https://user:pw@portal.example/check",
        ] {
            let text = message(&with_url(bad));
            assert!(
                text.starts_with("invalid configuration: migration_hook.url: "),
                "{text}"
            );
            assert!(!text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn a_url_needs_a_long_secret_and_limits_stay_in_range() {
        let mut config = with_url("https://portal.example/check");
        config.secret = None;
        assert!(message(&config).contains("migration_hook.secret: is required"));
        config.secret = Some(Secret::new("short"));
        assert!(message(&config).contains("migration_hook.secret: must be at least 16"));
        let mut config = with_url("https://portal.example/check");
        config.timeout_ms = 10_001;
        assert!(message(&config).contains("migration_hook.timeout_ms"));
        config.timeout_ms = 0;
        assert!(message(&config).contains("migration_hook.timeout_ms"));
        let mut config = with_url("https://portal.example/check");
        config.per_minute = 0;
        assert!(message(&config).contains("migration_hook.per_minute"));
    }

    /// Through the environment as an operator sets it, the secret from a
    /// file: a bad URL stops the start with one line; secrets stay hidden.
    #[test]
    fn set_from_the_environment_checked_at_start_and_redacted() {
        use crate::config::Config;
        let dir = std::env::temp_dir().join(format!("idp-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret_file = dir.join("hook-secret");
        std::fs::write(&secret_file, "a-shared-secret-of-some-length\n").unwrap();
        let env = |url: &str| {
            vec![
                ("IDP__MIGRATION_HOOK__URL".to_owned(), url.to_owned()),
                (
                    "IDP__MIGRATION_HOOK__SECRET_FILE".to_owned(),
                    secret_file.display().to_string(),
                ),
                (
                    "IDP__MIGRATION_HOOK__PORTALS__SHOP__URL".to_owned(),
                    "https://shop.example/check".to_owned(),
                ),
                (
                    "IDP__MIGRATION_HOOK__PORTALS__SHOP__SECRET".to_owned(),
                    "shop-secret-shop-secret".to_owned(),
                ),
            ]
        };
        let config = Config::load_from(None, env("https://portal.example/check")).unwrap();
        let hook = config.migration_hook.hook_for(None, None).unwrap();
        assert_eq!(hook.secret.expose(), "a-shared-secret-of-some-length");
        let shop = config.migration_hook.hook_for(Some("shop"), None).unwrap();
        assert_eq!(shop.url, "https://shop.example/check");
        let shown = config.to_redacted_toml();
        assert!(shown.contains("[migration_hook]"), "{shown}");
        assert!(
            !shown.contains("a-shared-secret") && !shown.contains("shop-secret"),
            "{shown}"
        );

        let refused = Config::load_from(None, env("http://portal.example/check"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            refused,
            "invalid configuration: migration_hook.url: must be https (http only to a loopback address)"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_portal_hook_is_chosen_by_client_id_then_theme_then_the_deployment() {
        let mut config = with_url("https://all.example/check");
        let portal = |url: &str| PortalHook {
            url: url.to_owned(),
            secret: Secret::new("fedcba9876543210fedcba"),
        };
        config
            .portals
            .insert("shop".into(), portal("https://shop.example/check"));
        config
            .portals
            .insert("helix".into(), portal("https://helix.example/check"));
        let url = |c: Option<&str>, t: Option<&str>| config.hook_for(c, t).map(|h| h.url);
        assert_eq!(
            url(Some("shop"), Some("helix")),
            Some("https://shop.example/check")
        );
        assert_eq!(
            url(Some("other"), Some("helix")),
            Some("https://helix.example/check")
        );
        assert_eq!(url(Some("other"), None), Some("https://all.example/check"));
        assert_eq!(url(None, None), Some("https://all.example/check"));
        config
            .portals
            .insert("bad".into(), portal("http://bad.example/"));
        assert!(message(&config).contains("migration_hook.portals.bad.url: must be https"));
    }
}
