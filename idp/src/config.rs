//! Typed configuration: a TOML file, then `IDP__SECTION__KEY` environment
//! variables (and `IDP__SECTION__KEY_FILE` to read a value from a file, for
//! secrets), checked by [`Config::validate`] before anything starts.
//!
//! Without a file the defaults are the embedded mode: SQLite under `data/`,
//! the in-process ephemeral store, mail written to files.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

/// Where the configuration file is looked for when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/idp.toml";
const ENV_PREFIX: &str = "IDP__";
const FILE_SUFFIX: &str = "_FILE";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} not found")]
    Missing(PathBuf),
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A TOML syntax error: several lines, the last ones pointing at the
    /// mistake with a caret (`^`), kept as they are.
    #[error("invalid configuration: {0}")]
    Syntax(String),
    #[error("invalid configuration: {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// A section's own check, whose message already names the key
    /// (`password_policy.min_strength: must be between 0 and 4`).
    #[error("invalid configuration: {0}")]
    Rule(String),
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub redis: RedisConfig,
    pub mail: MailConfig,
    pub password_hashing: PasswordHashingConfig,
    pub password_policy: crate::credentials::policy::PasswordPolicyConfig,
    pub captcha: crate::credentials::captcha::CaptchaConfig,
    pub session: SessionConfig,
    pub tokens: TokensConfig,
    pub account: AccountConfig,
    pub lockout: LockoutConfig,
    pub mfa: MfaConfig,
    pub themes: ThemesConfig,
    pub keys: KeysConfig,
    pub retention: crate::retention::RetentionConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
}

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

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A browser session ends after this long without a request.
    pub idle_minutes: u64,
    /// ...and after this long in any case.
    pub absolute_hours: u64,
}

/// Lifetimes of what the OpenID provider issues.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// A pending authorization request (the sign-in and consent pages) lives this long.
    pub auth_request_ttl_secs: u64,
    /// An authorization code must be redeemed within this.
    pub code_ttl_secs: u64,
    pub access_token_ttl_secs: u64,
    /// Signing algorithm of access tokens: RS256, ES256 or EdDSA.
    pub access_token_alg: crate::domain::IdTokenAlg,
    pub id_token_ttl_secs: u64,
    /// A refresh token unused this long expires (each use starts it again)...
    pub refresh_token_idle_secs: u64,
    /// ...and a chain of refreshes ends this long after the sign-in.
    pub refresh_token_absolute_secs: u64,
    /// A rotated refresh token presented again within this is answered
    /// (lost response, retry) instead of revoking its family. 0: never.
    pub refresh_reuse_grace_secs: u64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        Self {
            auth_request_ttl_secs: 600,
            code_ttl_secs: 60,
            access_token_ttl_secs: 600,
            access_token_alg: crate::domain::IdTokenAlg::ES256,
            id_token_ttl_secs: 3600,
            refresh_token_idle_secs: 30 * 24 * 3600,
            refresh_token_absolute_secs: 90 * 24 * 3600,
            refresh_reuse_grace_secs: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountConfig {
    /// Whether people may create their own accounts.
    pub registration_enabled: bool,
    /// Email domains our mail cannot reach: registration with them is refused
    /// with an explanation.
    pub blocked_email_domains: Vec<String>,
    /// How long a password-reset link works; a theme may set its own.
    pub reset_link_ttl_minutes: u64,
    pub verification_link_ttl_hours: u64,
    /// How long the link confirming a new email address works.
    pub email_change_link_ttl_minutes: u64,
    /// Reset mails sent per address, and requests accepted per client IP, per hour.
    pub reset_requests_per_email_per_hour: u64,
    pub reset_requests_per_ip_per_hour: u64,
    /// Registration and change-of-address mails sent to one address per
    /// hour (a verification link or "someone tried to use your address").
    pub mails_per_address_per_hour: u64,
    /// Registrations and change-of-address requests accepted per client IP per hour.
    pub mail_requests_per_ip_per_hour: u64,
    /// How old the sign-in of a session may be for it to change how the
    /// account signs in (two-step sign-in on or off, new recovery codes);
    /// older, the person proves it is them again.
    pub reauth_max_age_minutes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockMode {
    /// Locked until the start of the next day in `time_zone`.
    NextDay,
    /// Locked for `duration_minutes`.
    Duration,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failed sign-ins (wrong password or code) per email within the window that lock it.
    pub max_failures: u64,
    pub window_minutes: u64,
    pub mode: LockMode,
    pub duration_minutes: u64,
    /// IANA zone in which "the next day" starts, e.g. "Europe/Paris".
    pub time_zone: String,
    /// Failed sign-ins per client IP within the window before that IP must wait.
    pub ip_max_failures: u64,
}

/// Two-step sign-in with an authenticator app (see docs/mfa.md).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// Every sign-in needs the second step; users without TOTP enrol first.
    pub required: bool,
    /// The name authenticator apps show; empty means the issuer's host.
    pub issuer: String,
    /// How long a half-done sign-in (password right, code not yet) lasts.
    pub pending_ttl_secs: u64,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            required: false,
            issuer: String::new(),
            pending_ttl_secs: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThemesConfig {
    /// Folder holding one folder per theme (`default` is required).
    pub dir: PathBuf,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_minutes: 8 * 60,
            absolute_hours: 7 * 24,
        }
    }
}

impl Default for AccountConfig {
    fn default() -> Self {
        Self {
            registration_enabled: true,
            blocked_email_domains: Vec::new(),
            reset_link_ttl_minutes: 60,
            verification_link_ttl_hours: 48,
            email_change_link_ttl_minutes: 60,
            reset_requests_per_email_per_hour: 5,
            reset_requests_per_ip_per_hour: 30,
            mails_per_address_per_hour: 3,
            mail_requests_per_ip_per_hour: 20,
            reauth_max_age_minutes: 5,
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_minutes: 15,
            mode: LockMode::NextDay,
            duration_minutes: 60,
            time_zone: "UTC".into(),
            ip_max_failures: 100,
        }
    }
}

impl Default for ThemesConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("themes"),
        }
    }
}

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

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://path` (embedded) or `postgres://user:password@host/db`.
    pub url: ConnectionUrl,
    pub max_connections: u32,
    pub connect_timeout_secs: u64,
    /// Apply pending migrations when `idp serve` starts.
    pub migrate_on_start: bool,
}

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

fn parse_host_port(address: &str) -> Option<(String, u16)> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Write each message as an `.eml` file under `mail.dir`.
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required, not opportunistic).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on loopback.
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// The From header of every message.
    pub from: String,
    /// Folder for the file transport.
    pub dir: PathBuf,
    pub smtp: SmtpConfig,
    /// How often the outbox is checked for due mail when nothing wakes the
    /// worker (mail queued on this node wakes it at once).
    pub poll_interval_ms: u64,
    /// Delivery attempts before a message is marked failed; retries back off
    /// from 30 s, doubling, up to 1 h.
    pub max_attempts: u32,
    /// DKIM keys, one per sending domain: mail whose From is in `domain`
    /// is signed with it (`mail.from`'s domain and each theme's `mail_from`).
    pub dkim: Vec<DkimKeyConfig>,
}

/// `[[mail.dkim]]`: the key `selector._domainkey.<domain>` publishes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DkimKeyConfig {
    pub domain: String,
    pub selector: String,
    /// `rsa`: a PKCS#1 PEM file (`BEGIN RSA PRIVATE KEY`); `ed25519`: the
    /// base64 of the 32-byte seed.
    pub private_key_file: PathBuf,
    #[serde(default)]
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    #[default]
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout_secs: u64,
}

/// argon2id parameters; OWASP's recommendation by default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashingConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; the rest wait, so sign-in floods cannot take
    /// every core.
    pub max_concurrent: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter, such as `info` or `idp=debug,info`; `RUST_LOG` wins.
    pub level: String,
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

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: ConnectionUrl("sqlite://data/idp.db".into()),
            max_connections: 10,
            connect_timeout_secs: 5,
            migrate_on_start: true,
        }
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

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Identity Provider <no-reply@localhost>".into(),
            dir: PathBuf::from("data/mail"),
            smtp: SmtpConfig::default(),
            poll_interval_ms: 2000,
            max_attempts: 8,
            dkim: Vec::new(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
            password: None,
            timeout_secs: 10,
        }
    }
}

impl Default for PasswordHashingConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 4,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

impl Config {
    /// The time zone the admin console shows times in.
    pub fn console_time_zone(&self) -> &str {
        self.admin
            .console
            .time_zone
            .as_deref()
            .unwrap_or(&self.lockout.time_zone)
    }

    /// Reads the file (the explicit one must exist; the default path may be
    /// absent), applies the environment, and validates.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(path, std::env::vars())
    }

    /// [`Config::load`] with the environment given, for tests.
    pub fn load_from(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) if !p.exists() => return Err(ConfigError::Missing(p.to_path_buf())),
            Some(p) => figment = figment.merge(Toml::file_exact(p)),
            None if Path::new(DEFAULT_PATH).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_PATH));
            }
            None => {}
        }
        // Which variable set which key, to name it in an error.
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (name, raw) in env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)) {
            let (path, from_file) = match name.strip_suffix(FILE_SUFFIX) {
                Some(stem) => (stem, true),
                None => (name.as_str(), false),
            };
            let key = path[ENV_PREFIX.len()..]
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            from_env.push((key.clone(), name.clone()));
            if from_file {
                let value = std::fs::read_to_string(&raw).map_err(|e| ConfigError::Unreadable {
                    path: format!("{raw} (from {name})"),
                    reason: e.to_string(),
                })?;
                let value = value.trim_end_matches(['\n', '\r']).to_string();
                figment = figment.merge((key, value));
            } else {
                // Parsed like figment's own `Env`: numbers and booleans become typed.
                let value: figment::value::Value =
                    raw.parse().unwrap_or_else(|_| raw.clone().into());
                figment = figment.merge((key, value));
            }
        }
        let config: Config = figment.extract().map_err(|e| explain(e, &from_env))?;
        config.validate()?;
        Ok(config)
    }

    /// Fails on the first value that cannot work, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if !matches!(s.issuer.scheme(), "http" | "https") {
            return Err(invalid("server.issuer", "must be an http(s) URL"));
        }
        if s.issuer.scheme() != "https" && !s.dev_mode {
            return Err(invalid(
                "server.issuer",
                "must use https outside dev mode (set server.dev_mode = true for local use)",
            ));
        }
        if s.issuer.query().is_some() || s.issuer.fragment().is_some() {
            return Err(invalid(
                "server.issuer",
                "must not have a query or fragment",
            ));
        }
        if !(1..=600).contains(&s.request_timeout_secs) {
            return Err(invalid(
                "server.request_timeout_secs",
                "must be between 1 and 600",
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&s.body_limit_bytes) {
            return Err(invalid(
                "server.body_limit_bytes",
                "must be between 1024 and 16777216",
            ));
        }
        if self.admin.listen.port() != 0 && self.admin.listen.port() == s.listen.port() {
            return Err(invalid(
                "admin.listen",
                "must differ from server.listen: administration never shares the public port",
            ));
        }
        let console = &self.admin.console;
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
        if !(5..=10_080).contains(&self.admin.max_sign_in_age_minutes) {
            return Err(invalid(
                "admin.max_sign_in_age_minutes",
                "must be between 5 and 10080 (a week)",
            ));
        }
        if !(30..=3600).contains(&self.mfa.pending_ttl_secs) {
            return Err(invalid(
                "mfa.pending_ttl_secs",
                "must be between 30 and 3600",
            ));
        }
        if self.mfa.issuer.contains(':') {
            return Err(invalid("mfa.issuer", "must not contain ':'"));
        }
        let db = &self.database;
        match db.url.scheme() {
            Some("postgres" | "postgresql" | "sqlite") => {}
            _ => {
                return Err(invalid(
                    "database.url",
                    "must start with postgres:// or sqlite://",
                ));
            }
        }
        if !(1..=1000).contains(&db.max_connections) {
            return Err(invalid(
                "database.max_connections",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=120).contains(&db.connect_timeout_secs) {
            return Err(invalid(
                "database.connect_timeout_secs",
                "must be between 1 and 120",
            ));
        }
        if let Some(url) = &self.redis.url
            && (!matches!(url.scheme(), Some("redis" | "rediss"))
                || Url::parse(url.expose()).is_err())
        {
            return Err(invalid("redis.url", "must be a redis:// or rediss:// URL"));
        }
        if let Some(sentinel) = &self.redis.sentinel {
            if self.redis.url.is_some() {
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
        if self.redis.prefix.is_empty()
            || self.redis.prefix.len() > 64
            || self.redis.prefix.chars().any(|c| c.is_whitespace())
        {
            return Err(invalid(
                "redis.prefix",
                "must be 1 to 64 characters without spaces",
            ));
        }
        let m = &self.mail;
        if !m.from.contains('@') {
            return Err(invalid(
                "mail.from",
                "must be an address such as `Name <user@example.com>`",
            ));
        }
        if m.transport == MailTransport::Smtp && m.smtp.host.trim().is_empty() {
            return Err(invalid(
                "mail.smtp.host",
                "must be set when mail.transport = \"smtp\"",
            ));
        }
        if !(1..=300).contains(&m.smtp.timeout_secs) {
            return Err(invalid(
                "mail.smtp.timeout_secs",
                "must be between 1 and 300",
            ));
        }
        if !(10..=60_000).contains(&m.poll_interval_ms) {
            return Err(invalid(
                "mail.poll_interval_ms",
                "must be between 10 and 60000",
            ));
        }
        if !(1..=50).contains(&m.max_attempts) {
            return Err(invalid("mail.max_attempts", "must be between 1 and 50"));
        }
        let h = &self.password_hashing;
        if !(8 * 1024..=1024 * 1024).contains(&h.memory_kib) {
            return Err(invalid(
                "password_hashing.memory_kib",
                "must be between 8192 and 1048576",
            ));
        }
        if !(1..=20).contains(&h.iterations) {
            return Err(invalid(
                "password_hashing.iterations",
                "must be between 1 and 20",
            ));
        }
        if !(1..=16).contains(&h.parallelism) {
            return Err(invalid(
                "password_hashing.parallelism",
                "must be between 1 and 16",
            ));
        }
        if !(1..=256).contains(&h.max_concurrent) {
            return Err(invalid(
                "password_hashing.max_concurrent",
                "must be between 1 and 256",
            ));
        }
        if self.server.trusted_proxy_hops > 10 {
            return Err(invalid(
                "server.trusted_proxy_hops",
                "must be between 0 and 10",
            ));
        }
        self.password_policy.validate().map_err(ConfigError::Rule)?;
        self.captcha.validate().map_err(ConfigError::Rule)?;
        let se = &self.session;
        if !(1..=60 * 24 * 30).contains(&se.idle_minutes) {
            return Err(invalid(
                "session.idle_minutes",
                "must be between 1 and 43200",
            ));
        }
        if !(1..=24 * 365).contains(&se.absolute_hours) {
            return Err(invalid(
                "session.absolute_hours",
                "must be between 1 and 8760",
            ));
        }
        let t = &self.tokens;
        for (key, value, range) in [
            (
                "tokens.auth_request_ttl_secs",
                t.auth_request_ttl_secs,
                60..=3600,
            ),
            ("tokens.code_ttl_secs", t.code_ttl_secs, 10..=600),
            (
                "tokens.access_token_ttl_secs",
                t.access_token_ttl_secs,
                30..=86_400,
            ),
            ("tokens.id_token_ttl_secs", t.id_token_ttl_secs, 30..=86_400),
            (
                "tokens.refresh_token_idle_secs",
                t.refresh_token_idle_secs,
                60..=365 * 86_400,
            ),
            (
                "tokens.refresh_token_absolute_secs",
                t.refresh_token_absolute_secs,
                60..=3 * 365 * 86_400,
            ),
            (
                "tokens.refresh_reuse_grace_secs",
                t.refresh_reuse_grace_secs,
                0..=300,
            ),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!("must be between {} and {}", range.start(), range.end()),
                ));
            }
        }
        let a = &self.account;
        if !(5..=7 * 24 * 60).contains(&a.reset_link_ttl_minutes) {
            return Err(invalid(
                "account.reset_link_ttl_minutes",
                "must be between 5 and 10080",
            ));
        }
        if !(1..=24 * 30).contains(&a.verification_link_ttl_hours) {
            return Err(invalid(
                "account.verification_link_ttl_hours",
                "must be between 1 and 720",
            ));
        }
        if !(5..=7 * 24 * 60).contains(&a.email_change_link_ttl_minutes) {
            return Err(invalid(
                "account.email_change_link_ttl_minutes",
                "must be between 5 and 10080",
            ));
        }
        if !(1..=100).contains(&a.mails_per_address_per_hour) {
            return Err(invalid(
                "account.mails_per_address_per_hour",
                "must be between 1 and 100",
            ));
        }
        if !(1..=100_000).contains(&a.mail_requests_per_ip_per_hour) {
            return Err(invalid(
                "account.mail_requests_per_ip_per_hour",
                "must be between 1 and 100000",
            ));
        }
        if !(1..=24 * 60).contains(&a.reauth_max_age_minutes) {
            return Err(invalid(
                "account.reauth_max_age_minutes",
                "must be between 1 and 1440",
            ));
        }
        if a.blocked_email_domains
            .iter()
            .any(|d| d.trim().is_empty() || d.contains('@'))
        {
            return Err(invalid(
                "account.blocked_email_domains",
                "entries are domains such as example.com",
            ));
        }
        let l = &self.lockout;
        if !(1..=1000).contains(&l.max_failures) {
            return Err(invalid(
                "lockout.max_failures",
                "must be between 1 and 1000",
            ));
        }
        if !(1..=24 * 60).contains(&l.window_minutes) {
            return Err(invalid(
                "lockout.window_minutes",
                "must be between 1 and 1440",
            ));
        }
        if !(1..=30 * 24 * 60).contains(&l.duration_minutes) {
            return Err(invalid(
                "lockout.duration_minutes",
                "must be between 1 and 43200",
            ));
        }
        if jiff::tz::TimeZone::get(&l.time_zone).is_err() {
            return Err(invalid(
                "lockout.time_zone",
                "is not an IANA time zone such as Europe/Paris",
            ));
        }
        if let Some(tz) = &self.admin.console.time_zone
            && jiff::tz::TimeZone::get(tz).is_err()
        {
            return Err(invalid(
                "admin.console.time_zone",
                "is not an IANA time zone such as Europe/Paris",
            ));
        }
        if l.ip_max_failures < l.max_failures {
            return Err(invalid(
                "lockout.ip_max_failures",
                "must be at least lockout.max_failures",
            ));
        }
        self.keys.validate()?;
        self.retention.validate().map_err(ConfigError::Rule)?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(invalid(
                "log.level",
                "is not a tracing filter such as `info`",
            ));
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted (`idp check-config`).
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

/// Token signing keys: rotation schedule and encryption at rest.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// A new set of keys is made when the newest is this old.
    pub rotation_days: u64,
    /// A new key is in JWKS this long before it signs, so relying parties
    /// that cached JWKS see it first.
    pub publish_ahead_minutes: u64,
    /// How often each node reloads the keys from the durable store.
    pub refresh_secs: u64,
    /// A key stays in JWKS this long after it stops signing: at least the
    /// lifetime of the longest-lived token it signs.
    pub token_max_lifetime_secs: u64,
    /// Base64 of 32 random bytes: private keys are stored encrypted with it
    /// (AES-256-GCM). Unset: stored as plain PEM.
    pub encryption_key: Option<Secret>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            rotation_days: 30,
            publish_ahead_minutes: 60,
            refresh_secs: 30,
            token_max_lifetime_secs: 24 * 60 * 60,
            encryption_key: None,
        }
    }
}

/// How long relying parties may cache `/jwks` (its `Cache-Control`).
pub const JWKS_MAX_AGE_SECS: u64 = 300;

impl KeysConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=365).contains(&self.rotation_days) {
            return Err(invalid("keys.rotation_days", "must be between 1 and 365"));
        }
        if !(1..=3600).contains(&self.refresh_secs) {
            return Err(invalid("keys.refresh_secs", "must be between 1 and 3600"));
        }
        // Every node and every relying party's JWKS cache must have seen a
        // key before it signs.
        let ahead = self.publish_ahead_minutes.saturating_mul(60);
        if ahead <= self.refresh_secs + JWKS_MAX_AGE_SECS
            || self.publish_ahead_minutes >= self.rotation_days * 24 * 60
        {
            return Err(invalid(
                "keys.publish_ahead_minutes",
                format!(
                    "must exceed keys.refresh_secs + {JWKS_MAX_AGE_SECS} s (the JWKS cache time) \
                     and be shorter than keys.rotation_days"
                ),
            ));
        }
        if !(60..=30 * 24 * 60 * 60).contains(&self.token_max_lifetime_secs) {
            return Err(invalid(
                "keys.token_max_lifetime_secs",
                "must be between 60 and 2592000",
            ));
        }
        if let Some(key) = &self.encryption_key {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD.decode(key.expose().trim());
            if decoded.map(|k| k.len()) != Ok(32) {
                return Err(invalid(
                    "keys.encryption_key",
                    "must be the base64 of 32 random bytes (e.g. `openssl rand -base64 32`)",
                ));
            }
        }
        Ok(())
    }
}

/// A figment error as an operator reads it: the key, what was expected in
/// words (never a Rust type name), what was found, and where it came from
/// (the file, or the environment variable). A TOML syntax error keeps its
/// lines, caret included.
fn explain(error: figment::Error, from_env: &[(String, String)]) -> ConfigError {
    use figment::error::Kind;
    let mut lines = Vec::new();
    for e in error {
        let key = e.path.join(".");
        let origin = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ => from_env
                .iter()
                .rev()
                .find(|(k, _)| *k == key || key.starts_with(&format!("{k}.")))
                .map(|(_, var)| format!(" (from {var})"))
                .unwrap_or_default(),
        };
        if let Kind::Message(message) = &e.kind
            && message.contains("TOML parse error")
        {
            let file = match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(path)) => format!("{}: ", path.display()),
                _ => String::new(),
            };
            let text = message
                .trim_end()
                .replacen("TOML parse error", "TOML syntax error", 1);
            return ConfigError::Syntax(format!("{file}{text}"));
        }
        let at = if key.is_empty() {
            String::new()
        } else {
            format!("{key}: ")
        };
        let what = match &e.kind {
            Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
                format!(
                    "expected {}, found {}",
                    expected_text(expected),
                    found(actual)
                )
            }
            Kind::UnknownField(field, known) => {
                let place = if key.len() > field.len() {
                    format!("{}: ", &key[..key.len() - field.len() - 1])
                } else {
                    String::new()
                };
                lines.push(format!(
                    "{place}unknown key {field}{origin}; known keys: {}",
                    known.join(", ")
                ));
                continue;
            }
            Kind::UnknownVariant(value, known) => {
                format!(
                    "unknown value {value:?}; expected one of {}",
                    known.join(", ")
                )
            }
            Kind::MissingField(field) => format!("{field} is missing"),
            Kind::DuplicateField(field) => format!("{field} is given twice"),
            Kind::InvalidLength(n, expected) => {
                format!("{n} entries, expected {}", expected_text(expected))
            }
            Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => {
                "the number is out of range".to_owned()
            }
            Kind::Message(m) => m.replace('\n', " "),
            Kind::Unsupported(actual) | Kind::UnsupportedKey(actual, _) => {
                format!("{} cannot be used here", found(actual))
            }
        };
        lines.push(format!("{at}{what}{origin}"));
    }
    ConfigError::Parse(lines.join("; "))
}

/// What serde expected, in words.
fn expected_text(expected: &str) -> String {
    let e = expected.trim_matches('`');
    match e {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "string" => "a string (in quotes)".into(),
        "a sequence" => "a list".into(),
        "socket address" => "an address and port such as \"127.0.0.1:8080\"".into(),
        "option" => "a value".into(),
        _ if e.starts_with("struct ") || e.starts_with("a map") => {
            "a table of settings ([section])".into()
        }
        _ if e.contains("::") || e.starts_with("enum ") => "another kind of value".into(),
        _ => e.to_owned(),
    }
}

/// What was found, in words.
fn found(actual: &figment::error::Actual) -> String {
    use figment::error::Actual;
    match actual {
        Actual::Bool(b) => b.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Signed(n) => n.to_string(),
        Actual::Float(n) => n.to_string(),
        Actual::Char(c) => format!("{:?}", c.to_string()),
        Actual::Str(s) => format!("{s:?}"),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table".into(),
        Actual::Unit => "nothing".into(),
        _ => "another kind of value".into(),
    }
}

/// A secret value: never printed by `Debug`, serialised as `"[redacted]"`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// A database or Redis URL: its password is hidden wherever it is shown.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUrl(String);

impl ConnectionUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn scheme(&self) -> Option<&str> {
        self.0.split_once("://").map(|(scheme, _)| scheme)
    }

    /// The URL with any password replaced, for logs and `check-config`.
    pub fn redacted(&self) -> String {
        match Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("redacted"));
                url.to_string()
            }
            Ok(_) => self.0.clone(),
            Err(_) => "[unparseable URL]".into(),
        }
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl Serialize for ConnectionUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for ConnectionUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(ConnectionUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn shipped(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config")
            .join(name)
    }

    #[test]
    fn shipped_default_file_is_the_embedded_default() {
        let config = Config::load_from(Some(&shipped("idp.toml")), env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.database.url.scheme(), Some("sqlite"));
        assert!(config.redis.url.is_none());
        assert_eq!(config.mail.transport, MailTransport::File);
    }

    #[test]
    fn production_example_parses_and_validates() {
        let config =
            Config::load_from(Some(&shipped("production.example.toml")), env(&[])).unwrap();
        assert_eq!(config.database.url.scheme(), Some("postgres"));
        assert!(config.redis.url.is_some());
        assert_eq!(config.mail.transport, MailTransport::Smtp);
        assert!(!config.server.dev_mode);
    }

    #[test]
    fn environment_overrides_nested_keys() {
        let config = Config::load_from(
            None,
            env(&[
                ("IDP__DATABASE__URL", "postgres://u:pw@127.0.0.1/idp"),
                ("IDP__SERVER__LISTEN", "127.0.0.1:0"),
                ("IDP__MAIL__SMTP__PORT", "2525"),
                ("IDP__REDIS__URL", "redis://127.0.0.1:6379"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.database.url.expose(),
            "postgres://u:pw@127.0.0.1/idp"
        );
        assert_eq!(config.server.listen.port(), 0);
        assert_eq!(config.mail.smtp.port, 2525);
        assert!(config.redis.url.is_some());
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("smtp-password");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let config = Config::load_from(
            None,
            env(&[("IDP__MAIL__SMTP__PASSWORD_FILE", file.to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(config.mail.smtp.password.unwrap().expose(), "s3cr3t");
    }

    #[test]
    fn missing_secret_file_names_the_variable() {
        let err = Config::load_from(
            None,
            env(&[("IDP__MAIL__SMTP__PASSWORD_FILE", "/nonexistent/file")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("IDP__MAIL__SMTP__PASSWORD_FILE"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("idp.toml");
        std::fs::write(&file, "[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n").unwrap();
        let err = Config::load_from(Some(&file), env(&[])).unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
        let err = Config::load_from(None, env(&[("IDP__SERVER__NOPE", "1")])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }

    #[test]
    fn validation_names_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("IDP__SERVER__DEV_MODE", "false")], "server.issuer"),
            (&[("IDP__DATABASE__URL", "mysql://x")], "database.url"),
            (&[("IDP__REDIS__URL", "http://x")], "redis.url"),
            (
                &[
                    ("IDP__REDIS__URL", "redis://127.0.0.1:6379"),
                    ("IDP__REDIS__SENTINEL__SERVICE", "mymaster"),
                ],
                "redis.sentinel",
            ),
            (
                &[("IDP__REDIS__SENTINEL__SERVICE", "mymaster")],
                "redis.sentinel.addresses",
            ),
            (
                &[
                    ("IDP__REDIS__SENTINEL__ADDRESSES", "[\"sentinel-1\"]"),
                    ("IDP__REDIS__SENTINEL__SERVICE", "mymaster"),
                ],
                "redis.sentinel.addresses",
            ),
            (
                &[("IDP__REDIS__SENTINEL__ADDRESSES", "[\"127.0.0.1:26379\"]")],
                "redis.sentinel.service",
            ),
            (
                &[("IDP__SERVER__REQUEST_TIMEOUT_SECS", "0")],
                "server.request_timeout_secs",
            ),
            (&[("IDP__LOG__LEVEL", "[[[")], "log.level"),
            (
                &[("IDP__MAIL__POLL_INTERVAL_MS", "5")],
                "mail.poll_interval_ms",
            ),
            (&[("IDP__MAIL__MAX_ATTEMPTS", "0")], "mail.max_attempts"),
            (
                &[("IDP__ACCOUNT__EMAIL_CHANGE_LINK_TTL_MINUTES", "1")],
                "account.email_change_link_ttl_minutes",
            ),
            (&[("IDP__KEYS__ROTATION_DAYS", "0")], "keys.rotation_days"),
            (
                &[("IDP__KEYS__PUBLISH_AHEAD_MINUTES", "5")],
                "keys.publish_ahead_minutes",
            ),
            (
                &[("IDP__KEYS__ENCRYPTION_KEY", "c2hvcnQ")],
                "keys.encryption_key",
            ),
            (&[("IDP__ADMIN__LISTEN", "0.0.0.0:8080")], "admin.listen"),
            (
                &[(
                    "IDP__ADMIN__CONSOLE__URL",
                    "https://admin.example.com/console/",
                )],
                "admin.console.url",
            ),
            (
                &[("IDP__ADMIN__CONSOLE__URL", "http://10.0.0.5:8081/admin/")],
                "admin.console.url",
            ),
            (
                &[(
                    "IDP__ADMIN__CONSOLE__STANDALONE_URLS",
                    "[\"http://admin.example.com/admin/\"]",
                )],
                "admin.console.standalone_urls",
            ),
            (
                &[(
                    "IDP__ADMIN__CONSOLE__ALL_URLS",
                    "[\"https://admin.example.com/console/\"]",
                )],
                "admin.console.all_urls",
            ),
            (
                &[("IDP__ADMIN__CONSOLE__CLIENT_SECRET", "short")],
                "admin.console.client_secret",
            ),
        ];
        for (vars, key) in cases {
            let err = Config::load_from(None, env(vars)).unwrap_err();
            assert!(err.to_string().contains(key), "{err} should name {key}");
        }
    }

    #[test]
    fn a_sentinel_section_parses_with_its_secrets_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("idp.toml");
        std::fs::write(
            &file,
            "[redis.sentinel]\naddresses = [\"10.0.0.7:26379\", \"[::1]:26380\"]\n\
             service = \"mymaster\"\npassword = \"node-pw\"\nsentinel_password = \"s-pw\"\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&file), env(&[])).unwrap();
        let sentinel = config.redis.sentinel.as_ref().unwrap();
        assert_eq!(
            sentinel.endpoints().unwrap(),
            [("10.0.0.7".to_owned(), 26379), ("::1".to_owned(), 26380)]
        );
        assert_eq!(sentinel.replica_ack_timeout_ms, 100);
        let shown = config.to_redacted_toml();
        assert!(
            !shown.contains("node-pw") && !shown.contains("s-pw"),
            "{shown}"
        );
        for bad in ["host", "host:0", ":26379", "::1:26379", "a b:1", "h:99999"] {
            assert!(parse_host_port(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn https_issuer_is_accepted_outside_dev_mode() {
        let config = Config::load_from(
            None,
            env(&[
                ("IDP__SERVER__DEV_MODE", "false"),
                ("IDP__SERVER__ISSUER", "https://id.example.com"),
            ]),
        )
        .unwrap();
        assert!(!config.server.dev_mode);
    }

    #[test]
    fn secrets_are_redacted_in_debug_and_output() {
        let mut config = Config::default();
        config.database.url = ConnectionUrl::new("postgres://idp:hunter2@db/idp");
        config.mail.smtp.password = Some(Secret::new("hunter3"));
        let debug = format!("{config:?}");
        let toml = config.to_redacted_toml();
        for shown in [debug, toml] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("hunter3"), "{shown}");
            assert!(shown.contains("redacted"));
        }
    }
}
