//! Security headers on every response (DESIGN "Account security rules").

use axum::http::{HeaderValue, header};
use axum::response::Response;

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

/// Adds the headers a handler did not set itself. A plain function over the
/// response (through `tower`'s `MapResponseLayer`): no future to box on
/// every request, unlike a `from_fn` middleware.
pub fn security_headers(hsts: Hsts, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    // Reset and verification links carry tokens: never leak the URL onwards.
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if hsts.0 {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html {
        response
            .headers_mut()
            .entry(header::CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
    }
    response
}
