//! Who is asking: the client's address and user agent, read one way by the
//! identity provider's listeners and by the admin console (which also runs
//! on its own, without the provider's code). A crate of its own below both,
//! so the provider's core does not import the console and the console does
//! not import the provider.

use std::net::IpAddr;

use axum::http::HeaderMap;
use axum::http::header::AsHeaderName;

/// The administrator's browser's address and user agent, as the console saw
/// them, sent with each admin API call (the admin API believes them only
/// with a person's token, which only the console holds).
pub const BROWSER_IP: &str = "idp-console-browser-ip";
pub const BROWSER_AGENT: &str = "idp-console-browser-agent";

/// The client's address: the TCP `peer`, or behind `hops` trusted reverse
/// proxies the address the outermost one appended to `X-Forwarded-For`
/// (each proxy appends the address it saw; a client may write anything to
/// the left of those).
pub fn client_ip(headers: &HeaderMap, peer: Option<IpAddr>, hops: usize) -> Option<IpAddr> {
    if hops == 0 {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .len()
        .checked_sub(hops)
        .and_then(|i| forwarded.get(i).copied())
        .or(peer)
}

/// A header's value as text, at most 300 characters (user agents, for
/// sessions and the audit trail).
pub fn header_text(headers: &HeaderMap, name: impl AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use axum::http::HeaderMap;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn the_client_is_found_behind_as_many_proxies_as_are_trusted() {
        let mut headers = HeaderMap::new();
        // The client wrote the first entry itself; two proxies appended theirs.
        headers.append("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        headers.append("x-forwarded-for", "10.0.0.2".parse().unwrap());
        let peer = ip("10.0.0.3");
        assert_eq!(super::client_ip(&headers, peer, 0), peer, "no proxy");
        assert_eq!(super::client_ip(&headers, peer, 1), ip("10.0.0.2"));
        assert_eq!(super::client_ip(&headers, peer, 2), ip("203.0.113.9"));
        assert_eq!(
            super::client_ip(&headers, peer, 4),
            peer,
            "fewer entries than proxies: the peer"
        );
        let mut garbage = HeaderMap::new();
        garbage.insert("x-forwarded-for", "not an address".parse().unwrap());
        assert_eq!(super::client_ip(&garbage, peer, 1), peer);
    }
}
