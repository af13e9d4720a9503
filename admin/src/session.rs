//! Console sessions: the browser holds a random id in an HttpOnly cookie;
//! the tokens stay on the server, in a [`SessionStore`] under the id's
//! SHA-256 (a copy of the store does not open sessions), sealed with
//! AES-256-GCM under a key derived from the id (HKDF-SHA-256), so a copy of
//! the store does not yield the administrator's tokens either: only the
//! browser holds what opens them.
//!
//! `idp serve` keeps them in its ephemeral store (Redis in production), so
//! any node serves any console request; the standalone console keeps them
//! in memory.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Console;
use crate::pages::PageError;

#[derive(Debug, thiserror::Error)]
#[error("session store: {0}")]
pub struct StoreError(pub String);

/// Where console sessions and half-done sign-ins live: values expire after
/// their TTL; `take` reads and removes at once (a sign-in completes once).
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError>;
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
}

/// Sessions in this process (the standalone console, one instance).
#[derive(Default)]
pub struct MemorySessions(Mutex<HashMap<String, (Instant, Vec<u8>)>>);

impl MemorySessions {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Vec<u8>)>> {
        // A panic while holding the lock cannot leave a half-written entry.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl SessionStore for MemorySessions {
    async fn put(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut entries = self.entries();
        entries.retain(|_, (until, _)| *until > now);
        entries.insert(key.to_owned(), (now + ttl, value));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let entries = self.entries();
        Ok(entries
            .get(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| v.clone()))
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut entries = self.entries();
        Ok(entries
            .remove(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| v))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.entries().remove(key);
        Ok(())
    }
}

/// A console session ends after this long without a request (the
/// provider's `admin.max_sign_in_age_minutes` bounds it in any case).
pub(crate) const IDLE: Duration = Duration::from_secs(30 * 60);

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn hashed(kind: &str, token: &str) -> String {
    format!(
        "console:{kind}:{}",
        hex::encode(Sha256::digest(token.as_bytes()))
    )
}

/// Seals a value kept under `hashed(kind, token)` with a key only the
/// holder of `token` can derive: HKDF-SHA-256 of the token, salted and
/// labelled by the kind, then AES-256-GCM with a random nonce; the store
/// key is the associated data (the value does not open under another key).
/// Stored as nonce (12 bytes) || ciphertext || tag.
pub(crate) fn seal(kind: &str, token: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
    let key = LessSafeKey::new(value_key(kind, token)?);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| StoreError("no random nonce".into()))?;
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(hashed(kind, token).as_bytes()),
        &mut sealed,
    )
    .map_err(|_| StoreError("cannot seal a console value".into()))?;
    let mut out = nonce.to_vec();
    out.append(&mut sealed);
    Ok(out)
}

/// Opens what [`seal`] made with the same kind and token; `None` for
/// anything else (another token, an altered or older value).
pub(crate) fn open(kind: &str, token: &str, stored: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
    let key = LessSafeKey::new(value_key(kind, token).ok()?);
    let (nonce, sealed) = stored.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = sealed.to_vec();
    let plain = key
        .open_in_place(
            nonce,
            Aad::from(hashed(kind, token).as_bytes()),
            &mut buffer,
        )
        .ok()?;
    Some(plain.to_vec())
}

fn value_key(kind: &str, token: &str) -> Result<aws_lc_rs::aead::UnboundKey, StoreError> {
    use aws_lc_rs::{aead, hkdf};
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"idp admin console value");
    let info = [kind.as_bytes()];
    let prk = salt.extract(token.as_bytes());
    let okm = prk
        .expand(&info, &aead::AES_256_GCM)
        .map_err(|_| StoreError("cannot derive a console value key".into()))?;
    Ok(aead::UnboundKey::from(okm))
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The session cookie's name: `__Host-` (Secure, host-only, path `/`) when
/// the console is served over https.
pub(crate) fn cookie_name(console: &Console, base: &'static str) -> String {
    if console.config().secure_cookies() {
        format!("__Host-{base}")
    } else {
        base.to_owned()
    }
}

pub(crate) fn cookie(console: &Console, base: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((cookie_name(console, base), value))
        .http_only(true)
        // Lax: the provider's redirect back to /admin/callback is a top-level GET.
        .same_site(SameSite::Lax)
        .path("/")
        .secure(console.config().secure_cookies())
        .build()
}

pub(crate) const SESSION_COOKIE: &str = "idp_console";

/// What the console keeps for a signed-in administrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionData {
    pub sub: String,
    pub name: String,
    pub email: String,
    pub access_token: String,
    /// Unix seconds.
    pub access_expires_at: i64,
    pub refresh_token: Option<String>,
    pub id_token: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// A message for the next page (after an action's redirect).
    #[serde(default)]
    pub flash: Option<Flash>,
    pub last_seen: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Flash {
    /// `false`: the action was refused; the text says why.
    pub ok: bool,
    pub text: String,
}

/// The console's time (unix seconds): the provider's clock when mounted by
/// `idp serve` (so tests move both together), the system clock otherwise.
pub trait Clock: Send + Sync {
    fn unix_now(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }
}

impl Console {
    pub(crate) async fn save(&self, id: &str, data: &SessionData) -> Result<(), PageError> {
        let bytes = serde_json::to_vec(data).map_err(|e| PageError::internal(e.to_string()))?;
        let sealed = seal("session", id, &bytes)?;
        self.0
            .sessions
            .put(&hashed("session", id), sealed, IDLE)
            .await?;
        Ok(())
    }

    pub(crate) async fn load(&self, id: &str) -> Result<Option<SessionData>, PageError> {
        let Some(bytes) = self.0.sessions.get(&hashed("session", id)).await? else {
            return Ok(None);
        };
        // A value that does not open or decode (an older format) is no session.
        Ok(open("session", id, &bytes).and_then(|plain| serde_json::from_slice(&plain).ok()))
    }

    pub(crate) async fn forget(&self, id: &str) -> Result<(), PageError> {
        self.0.sessions.delete(&hashed("session", id)).await?;
        Ok(())
    }
}

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
            match crate::oidc::refresh(console, &mut data).await {
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

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Only the console's own pages: never an open redirect.
pub(crate) fn safe_return(to: Option<&str>) -> String {
    match to {
        Some(p) if p.starts_with("/admin/") && !p.starts_with("//") && !p.contains('\\') => {
            p.to_owned()
        }
        _ => "/admin/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_sessions_expire_and_take_once() {
        let s = MemorySessions::default();
        s.put("a", b"1".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        s.put("b", b"2".to_vec(), Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.get("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get("b").await.unwrap(), None);
        assert_eq!(s.take("a").await.unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.take("a").await.unwrap(), None);
    }

    #[test]
    fn only_console_pages_are_returned_to() {
        assert_eq!(safe_return(Some("/admin/users?q=a")), "/admin/users?q=a");
        assert_eq!(safe_return(Some("https://evil.example/")), "/admin/");
        assert_eq!(safe_return(Some("//evil.example/admin/")), "/admin/");
        assert_eq!(safe_return(Some("/admin/\\evil")), "/admin/");
        assert_eq!(safe_return(None), "/admin/");
    }

    #[test]
    fn values_open_only_with_the_cookie_they_were_sealed_for() {
        let sealed = seal("session", "cookie-1", b"access-token-xyz").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"access"), "not in clear");
        assert_eq!(
            open("session", "cookie-1", &sealed).as_deref(),
            Some(&b"access-token-xyz"[..])
        );
        assert_eq!(open("session", "cookie-2", &sealed), None, "another cookie");
        assert_eq!(open("login", "cookie-1", &sealed), None, "another kind");
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(open("session", "cookie-1", &altered), None, "altered");
        assert_eq!(open("session", "cookie-1", b"short"), None);
        let again = seal("session", "cookie-1", b"access-token-xyz").unwrap();
        assert_ne!(sealed, again, "a fresh nonce each time");
    }

    #[test]
    fn store_keys_are_hashes_of_the_cookie() {
        let k = hashed("session", "abc");
        assert!(k.starts_with("console:session:"));
        assert!(!k.contains("abc"));
        assert!(same("x", "x") && !same("x", "y") && !same("x", "xx"));
    }
}
