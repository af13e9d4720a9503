//! Test kit: starts the real server in-process on a free port, with a fresh
//! database (a new PostgreSQL database, or a new SQLite file) and a fresh
//! ephemeral store (a new Redis key prefix, or the in-process store), and a
//! clock the test can move.
//!
//! PostgreSQL and Redis are real servers started by `scripts/test`, which
//! passes their URLs in `IDP_TEST_DATABASE_URL` and `IDP_TEST_REDIS_URL`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use idp::clock::ManualClock;
use idp::config::{Config, ConnectionUrl};
use idp::web::AppState;
use sqlx::Connection;

pub mod browser;
pub mod chromium;
pub mod passkey;
pub mod rp;
pub mod signin;
pub mod smtp;
pub mod totp;
pub mod webauthn;

/// What the test browsers call themselves (the audit trail records it).
pub const USER_AGENT: &str = "idp-black-box-tests/1.0";

/// The two deployments every behaviour is checked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// PostgreSQL + Redis: production.
    Postgres,
    /// SQLite + in-process ephemeral store: the embedded default.
    Sqlite,
}

pub fn env_url(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `bash scripts/test`, which starts PostgreSQL and Redis")
    })
}

/// A new, empty PostgreSQL database; returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin = env_url("IDP_TEST_DATABASE_URL");
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to test PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("IDP_TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// A key prefix no other test uses.
pub fn fresh_redis_prefix() -> String {
    format!("test:{}:", uuid::Uuid::new_v4().simple())
}

/// Configuration for `backend` with fresh storage; `dir` holds SQLite files and mail.
pub async fn config_for(backend: Backend, dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.admin.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.mail.dir = dir.join("mail");
    config.themes.dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes");
    // Cheaper argon2 than production keeps hundreds of sign-ins in the suite fast;
    // the parameters are still argon2id with the same code path.
    config.password_hashing.memory_kib = 8192;
    config.password_hashing.iterations = 1;
    match backend {
        Backend::Postgres => {
            config.database.url = ConnectionUrl::new(fresh_postgres_database().await);
            config.database.max_connections = 5;
            config.redis.url = Some(ConnectionUrl::new(env_url("IDP_TEST_REDIS_URL")));
            config.redis.prefix = fresh_redis_prefix();
        }
        Backend::Sqlite => {
            config.database.url =
                ConnectionUrl::new(format!("sqlite://{}", dir.join("idp.db").display()));
        }
    }
    config
}

/// A running server and what a test needs to talk to it.
#[derive(Clone)]
pub struct TestApp {
    pub backend: Backend,
    pub address: SocketAddr,
    pub base_url: String,
    /// The admin listener (`admin.listen`, port 0 in tests), e.g. `http://127.0.0.1:41234`.
    pub admin_base_url: String,
    pub clock: ManualClock,
    pub state: AppState,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub http: reqwest::Client,
    pub dir: Arc<tempfile::TempDir>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the server after `adjust` has edited its configuration.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = config_for(backend, dir.path()).await;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let address = listener.local_addr().expect("local address");
        let base_url = format!("http://{address}");
        config.server.issuer = base_url.parse().expect("issuer URL");
        adjust(&mut config);
        let clock = ManualClock::default();
        let app = idp::Application::build_with(config, Arc::new(clock.clone()), Some(listener))
            .await
            .expect("the server starts");
        let state = app.state().clone();
        let admin_base_url = format!("http://{}", app.admin_address());
        tokio::spawn(app.run_until(std::future::pending()));
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(crate::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            backend,
            address,
            base_url,
            admin_base_url,
            clock,
            state,
            http,
            dir: Arc::new(dir),
        }
    }

    /// Another node of the same deployment: a second server on this one's
    /// database and ephemeral store, with the same issuer, its own address,
    /// clock and mail folder. `adjust` edits its copy of the configuration.
    pub async fn spawn_beside(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::clone(&self.state.config);
        config.mail.dir = dir.path().join("mail");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let address = listener.local_addr().expect("local address");
        adjust(&mut config);
        let clock = ManualClock::default();
        let app = idp::Application::build_with(config, Arc::new(clock.clone()), Some(listener))
            .await
            .expect("the second server starts");
        let state = app.state().clone();
        let admin_base_url = format!("http://{}", app.admin_address());
        tokio::spawn(app.run_until(std::future::pending()));
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(crate::USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            backend: self.backend,
            address,
            base_url: format!("http://{address}"),
            admin_base_url,
            clock,
            state,
            http,
            dir: Arc::new(dir),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A URL on the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin_base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
