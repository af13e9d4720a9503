//! Security headers on every response (DESIGN "Account security rules").

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Scripts and styles only from our own static files: no inline code, so an
/// injected `<script>` does not run even if escaping ever failed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

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
