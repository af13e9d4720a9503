//! The signed-in administrator: the extractor every console page takes,
//! which renews the access token when it is about to expire.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::console::Console;
use crate::error::PageError;
use crate::session::{SESSION_COOKIE, SessionData, cookie_name, same, urlencode};

/// A signed-in administrator with a usable access token: handlers that take
/// it cannot run without one. Without a session the browser is sent to sign
/// in, and comes back to the page it asked for.
pub(crate) struct Signed {
    pub id: String,
    pub data: SessionData,
    /// The administrator's browser, named to the admin API for its audit trail.
    pub browser: Browser,
}

/// Where a request to the console came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Browser {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Browser {
    fn of(parts: &Parts, hops: usize) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let ip = client_addr::client_ip(&parts.headers, peer, hops);
        let user_agent = client_addr::header_text(&parts.headers, axum::http::header::USER_AGENT);
        Self { ip, user_agent }
    }
}

impl Signed {
    pub fn token(&self) -> &str {
        &self.data.access_token
    }

    /// Checks a form's CSRF token against the session's, in constant time.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if same(sent, &self.data.csrf) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }
}

impl FromRequestParts<Console> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Self, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let back = return_to(parts);
        let to_login = || {
            let url = format!("/admin/login?return_to={}", urlencode(&back));
            Redirect::to(&url).into_response()
        };
        let Some(id) = jar
            .get(&cookie_name(console, SESSION_COOKIE))
            .map(|c| c.value().to_owned())
        else {
            return Err(to_login());
        };
        let mut data = match console.load(&id).await {
            Ok(Some(data)) => data,
            Ok(None) => return Err(to_login()),
            Err(e) => return Err(e.into_response()),
        };
        let now = console.now();
        if data.access_expires_at - 30 <= now {
            match crate::tokens::refresh(console, &mut data).await {
                Ok(true) => {}
                Ok(false) => {
                    let _ = console.forget(&id).await;
                    return Err(to_login());
                }
                Err(e) => return Err(e.into_response()),
            }
            data.last_seen = now;
            console
                .save(&id, &data)
                .await
                .map_err(IntoResponse::into_response)?;
        } else if now - data.last_seen >= 60 {
            // Sliding expiry, written at most once a minute.
            data.last_seen = now;
            console
                .save(&id, &data)
                .await
                .map_err(IntoResponse::into_response)?;
        }
        let browser = Browser::of(parts, console.config().trusted_proxy_hops);
        Ok(Self { id, data, browser })
    }
}

/// Where to come back after signing in: this page if it was a GET, else the
/// dashboard (a form's POST cannot be replayed after a redirect).
fn return_to(parts: &Parts) -> String {
    if parts.method == axum::http::Method::GET {
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/admin/".to_owned())
    } else {
        "/admin/".to_owned()
    }
}
