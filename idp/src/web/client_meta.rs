//! Who is asking: the client IP (behind `server.trusted_proxy_hops` proxies,
//! or the admin listener's `admin.trusted_proxy_hops`)
//! and user agent, for lockout counters, rate limits and the audit trail.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;

/// How many trusted proxies stand in front of the listener a request came
/// in on, when that listener has its own setting (the admin listener);
/// otherwise `server.trusted_proxy_hops` applies.
#[derive(Debug, Clone, Copy)]
pub struct ProxyHops(pub usize);

#[derive(Debug, Clone)]
pub struct ClientMeta {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl FromRequestParts<AppState> for ClientMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let hops = parts
            .extensions
            .get::<ProxyHops>()
            .map_or(state.config.server.trusted_proxy_hops, |h| h.0);
        let ip = client_addr::client_ip(&parts.headers, Some(peer), hops).unwrap_or(peer);
        let user_agent = client_addr::header_text(&parts.headers, header::USER_AGENT);
        Ok(Self { ip, user_agent })
    }
}
