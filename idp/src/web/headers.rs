//! Security headers on every response (DESIGN "Account security rules").

use axum::http::Response;
use axum::http::{HeaderValue, header};

/// Scripts and styles only from our own static files: no inline code, so an
/// injected `<script>` does not run even if escaping ever failed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The CSP source that lets a form of ours end at `uri` (a client's
/// `redirect_uri` or `post_logout_redirect_uri`). Chromium checks
/// `form-action` of the page holding the form against every hop of the
/// redirects that follow its POST, so a page whose form can end a flow must
/// allow that flow's destination, and only that one: its origin for http(s),
/// its scheme for a native app's private-use scheme (`com.example.app:`).
/// `None` when CSP cannot express the origin (an IPv6 literal such as
/// `http://[::1]:port`, a host with characters outside CSP's grammar): such
/// flows end on a page with a link to the application instead.
pub fn form_action_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let host = match url.host()? {
                url::Host::Domain(d) => d.to_owned(),
                url::Host::Ipv4(ip) => ip.to_string(),
                url::Host::Ipv6(_) => return None,
            };
            let host_ok = !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            host_ok.then(|| url.origin().ascii_serialization())
        }
        // A private-use scheme (RFC 8252 7.1): the scheme is all CSP can name.
        scheme => Some(format!("{scheme}:")),
    }
}

/// The page CSP with `form-action` widened to one more source.
pub fn csp_with_form_target(source: &str) -> String {
    CSP.replacen(
        "form-action 'self'",
        &format!("form-action 'self' {source}"),
        1,
    )
}

/// Whether HSTS is sent: outside dev mode only (dev runs on plain http).
#[derive(Debug, Clone, Copy)]
pub struct Hsts(pub bool);

const COOP: header::HeaderName = header::HeaderName::from_static("cross-origin-opener-policy");

/// The headers every response gets unless its handler set its own, built
/// once (at compile time): no value is validated or copied per response.
const ALWAYS: [(header::HeaderName, HeaderValue); 5] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    ),
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    // Reset and verification links carry tokens: never leak the URL onwards.
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (COOP, HeaderValue::from_static("same-origin")),
];
const HSTS: HeaderValue = HeaderValue::from_static("max-age=63072000; includeSubDomains");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Adds the headers a handler did not set itself. A plain function over the
/// response (through `tower`'s `MapResponseLayer`): no future to box on
/// every request, unlike a `from_fn` middleware.
pub fn security_headers<B>(hsts: Hsts, mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    // Room for all of them and the request id at once: a map that grows
    // past its capacity rehashes every header it holds.
    let _ = headers.try_reserve(ALWAYS.len() + 3);
    for (name, value) in ALWAYS {
        headers.entry(name).or_insert(value);
    }
    if hsts.0 {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HSTS);
    }
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html {
        headers.entry(header::CACHE_CONTROL).or_insert(NO_STORE);
    }
    response
}
