//! Console sessions: the browser holds a random id in an HttpOnly cookie;
//! the tokens stay on the server, in a `SessionStore` (store.rs) under the id's
//! SHA-256 (a copy of the store does not open sessions), sealed with
//! AES-256-GCM under a key derived from the id (HKDF-SHA-256), so a copy of
//! the store does not yield the administrator's tokens either: only the
//! browser holds what opens them.
//!
//! `idp serve` keeps them in its ephemeral store (Redis in production), so
//! any node serves any console request; the standalone console keeps them
//! in memory.

use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::console::Console;
use crate::error::PageError;
use crate::store::StoreError;

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
