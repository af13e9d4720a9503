//! The admin console: server-rendered pages (tera, its own look) for
//! administrators, over the identity provider's JSON admin API.
//!
//! The console is an ordinary confidential OpenID Connect client of the
//! provider (DESIGN "Admin"): it signs administrators in with the
//! authorization code flow + PKCE (OAuth 2.0 Security BCP; `require_mfa` on
//! its client makes the provider ask for a one-time code, and set one up at
//! the first sign-in), keeps the tokens on the server side (the browser holds
//! only a random session id), and calls the admin API with the access token.
//! It needs nothing from the provider's process: `idp serve` mounts it at
//! `/admin/` on the admin listener, and the `idp-console` binary runs it on its
//! own against a remote provider.

mod api;
mod config;
mod form;
mod oidc;
mod pages;
mod session;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

/// The headers the console names the administrator's browser in.
pub use client_addr::{BROWSER_AGENT, BROWSER_IP};
pub use config::{ConsoleConfig, Endpoints};
pub use session::{Clock, MemorySessions, SessionStore, StoreError, SystemClock};

/// The console, ready to be served: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Console(Arc<Inner>);

struct Inner {
    config: ConsoleConfig,
    http: reqwest::Client,
    sessions: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    views: views::Views,
    /// `config.time_zone`, resolved once.
    tz: jiff::tz::TimeZone,
    /// Content-Security-Policy of every console response.
    csp: axum::http::HeaderValue,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("admin console templates: {0}")]
    Templates(String),
    #[error("admin console HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("admin console: {0} is not an IANA time zone such as Europe/Paris")]
    TimeZone(String),
}

impl Console {
    pub fn new(config: ConsoleConfig, sessions: Arc<dyn SessionStore>) -> Result<Self, BuildError> {
        Self::with_clock(config, sessions, Arc::new(SystemClock))
    }

    pub fn with_clock(
        config: ConsoleConfig,
        sessions: Arc<dyn SessionStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BuildError> {
        let http = reqwest::Client::builder()
            // The console follows no redirects of the provider: answers are read as they come.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()?;
        let tz = jiff::tz::TimeZone::get(&config.time_zone)
            .map_err(|_| BuildError::TimeZone(config.time_zone.clone()))?;
        Ok(Self(Arc::new(Inner {
            views: views::Views::load()?,
            tz,
            csp: pages::content_security_policy(&config.endpoints.end_session),
            config,
            http,
            sessions,
            clock,
        })))
    }

    pub(crate) fn now(&self) -> i64 {
        self.0.clock.unix_now()
    }

    /// The time zone pages show times in.
    pub(crate) fn tz(&self) -> &jiff::tz::TimeZone {
        &self.0.tz
    }

    fn config(&self) -> &ConsoleConfig {
        &self.0.config
    }

    /// The console's routes, every one under `/admin/` (the admin API's
    /// `/admin/api/` is not among them, so both merge into one router).
    pub fn router(&self) -> Router {
        use pages::{clients, dashboard, records, users};
        Router::new()
            .route("/admin", get(dashboard::redirect_to_slash))
            .route("/admin/", get(dashboard::show))
            .route("/admin/static/console.css", get(views::stylesheet))
            .route("/admin/static/favicon.svg", get(views::favicon))
            .route("/admin/login", get(oidc::login))
            .route("/admin/callback", get(oidc::callback))
            .route("/admin/logout", post(oidc::logout))
            .route("/admin/signed-out", get(oidc::signed_out))
            .route("/admin/users", get(users::list).post(users::create))
            .route("/admin/users/new", get(users::new_form))
            .route("/admin/users/{id}", get(users::show).post(users::update))
            .route("/admin/users/{id}/{action}", post(users::act))
            .route(
                "/admin/users/{id}/sessions/{sid}/end",
                post(users::end_session),
            )
            .route(
                "/admin/users/{id}/refresh-tokens/{fid}/revoke",
                post(users::revoke_refresh_token),
            )
            .route("/admin/clients", get(clients::list).post(clients::create))
            .route("/admin/clients/new", get(clients::new_form))
            .route(
                "/admin/clients/{id}",
                get(clients::show).post(clients::update),
            )
            .route("/admin/clients/{id}/rotate-secret", post(clients::rotate))
            .route("/admin/clients/{id}/delete", post(clients::delete))
            .route("/admin/audit", get(records::audit))
            .route("/admin/mail", get(records::mail))
            .route("/admin/mail/{id}/retry", post(records::retry_mail))
            .route("/admin/keys", get(records::keys).post(records::rotate_keys))
            // Any other page under /admin/ (the API's own paths match first).
            .route("/admin/{*rest}", get(dashboard::not_found))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                pages::render_errors,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                pages::security_headers,
            ))
            .with_state(self.clone())
    }
}
