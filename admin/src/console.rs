//! The console itself: its configuration, its seams (where sessions are
//! kept, what time it is), its templates and HTTP client, built once.

use std::sync::Arc;

use axum::http::HeaderValue;

use crate::clock::{Clock, SystemClock};
use crate::config::ConsoleConfig;
use crate::error::BuildError;
use crate::store::SessionStore;
use crate::views;

/// The console, ready to be served: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Console(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) config: ConsoleConfig,
    pub(crate) http: reqwest::Client,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) views: views::Views,
    /// `config.time_zone`, resolved once.
    pub(crate) tz: jiff::tz::TimeZone,
    /// Content-Security-Policy of every console response.
    pub(crate) csp: axum::http::HeaderValue,
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
            csp: content_security_policy(&config.endpoints.end_session),
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

    pub(crate) fn config(&self) -> &ConsoleConfig {
        &self.0.config
    }
}

/// The console's CSP, built once: forms may post to the provider too.
fn content_security_policy(issuer: &url::Url) -> HeaderValue {
    const WITHOUT_ISSUER: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let origin = issuer.origin().ascii_serialization();
    let csp = WITHOUT_ISSUER.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(WITHOUT_ISSUER))
}
