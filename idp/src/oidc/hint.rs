//! `id_token_hint` (OIDC Core 3.1.2.1, RP-Initiated Logout 1.0 §2): an ID
//! token this provider issued, handed back by a relying party to say which
//! account it means. A hint names someone and proves nothing, so an
//! expired one is as good as a fresh one; what is checked is that it is
//! ours: our signature (a key still published), our issuer, and the `typ`
//! of an ID token, so that an access token (`at+jwt`) is no hint.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::response::issuer;
use crate::tokens::keys::{KeyError, TokenError, VerifyOptions};
use crate::web::AppState;

/// What a valid hint says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The account (`sub`).
    pub subject: String,
    /// The clients it was issued to (`aud`), in order.
    pub audiences: Vec<String>,
}

impl IdTokenHint {
    pub fn issued_to(&self, client_id: &str) -> bool {
        self.audiences.iter().any(|a| a == client_id)
    }
}

/// Why a hint names nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Signed with a key this provider does not publish (any more): an ID
    /// token of a key retired since rotation looks like this, so what it
    /// names cannot be checked, but it need not be a forgery.
    UnknownKey,
    /// Not an ID token of ours.
    NotOurs,
}

/// What the hint names, if it is an ID token of ours.
pub fn read(state: &AppState, hint: &str) -> Result<IdTokenHint, Refused> {
    let iss = issuer(state);
    let options = VerifyOptions {
        typ: Some("JWT"),
        issuer: Some(&iss),
        audience: None,
        // Expired hints are fine (see above); ten years is "any".
        leeway: time::Duration::days(3650),
    };
    let claims = match state.keys.verify_claims(hint, &options) {
        Ok(claims) => claims,
        Err(KeyError::Token(TokenError::UnknownKey)) => return Err(Refused::UnknownKey),
        Err(_) => return Err(Refused::NotOurs),
    };
    let subject = claims
        .get("sub")
        .and_then(|s| s.as_str())
        .ok_or(Refused::NotOurs)?
        .to_owned();
    let audiences = audiences(&claims).ok_or(Refused::NotOurs)?;
    Ok(IdTokenHint { subject, audiences })
}

/// `aud`: one client or several.
fn audiences(claims: &serde_json::Value) -> Option<Vec<String>> {
    match claims.get("aud")? {
        serde_json::Value::String(a) => Some(vec![a.clone()]),
        serde_json::Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// The first `aud` of a token whose signature cannot be checked, read
/// without any check: only to pick the client whose registered addresses
/// a sign-out's `post_logout_redirect_uri` must match, which the request
/// could name itself with `client_id`. Never to decide whom it names.
pub fn unverified_audience(hint: &str) -> Option<String> {
    let payload = hint.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    audiences(&claims)?.into_iter().next()
}
