//! The browser a flow belongs to. Pending flow state (an authorization
//! request and what was decided on it) records the SHA-256 of a random id
//! this browser holds in an HttpOnly cookie, and is refused in any other
//! browser: a `req` link sent to someone else opens nothing for them
//! (DESIGN "Account security rules": pending state is bound to its browser).

use axum_extra::extract::cookie::CookieJar;

use super::session;
use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::domain::Token;

fn cookie_name(dev_mode: bool) -> &'static str {
    if dev_mode {
        "idp_browser"
    } else {
        "__Host-idp_browser"
    }
}

/// This browser's binding, creating its cookie when it has none yet.
pub fn ensure(jar: CookieJar, dev_mode: bool) -> (String, CookieJar) {
    if let Some(binding) = binding(&jar, dev_mode) {
        return (binding, jar);
    }
    let id = random_token();
    let binding = sha256_hex(&id);
    (
        binding,
        jar.add(session::cookie(cookie_name(dev_mode), id, dev_mode)),
    )
}

/// This browser's binding, if it has its cookie.
pub fn binding(jar: &CookieJar, dev_mode: bool) -> Option<String> {
    jar.get(cookie_name(dev_mode))
        .map(|c| c.value())
        .filter(|v| Token::parse(v).is_some())
        .map(sha256_hex)
}

/// Whether state bound to `expected` may be used by the browser holding `jar`.
pub fn matches(jar: &CookieJar, dev_mode: bool, expected: &str) -> bool {
    binding(jar, dev_mode).is_some_and(|b| constant_time_eq(b.as_bytes(), expected.as_bytes()))
}
