//! Checking the access tokens this provider issued (RFC 9068 section 4):
//! signature by a published key, `typ: at+jwt`, issuer, audience, expiry by
//! the app clock, and not revoked.

use axum::http::{HeaderMap, header};

use super::error::{OAuthCode, OAuthError, oauth};
use super::response::issuer;
use crate::tokens::AccessClaims;
use crate::tokens::keys::VerifyOptions;
use crate::web::AppState;

/// Clock difference tolerated between the nodes of a deployment.
const CLOCK_SKEW: time::Duration = time::Duration::seconds(5);

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The claims of a live access token, or `None` (bad, expired or revoked).
pub async fn active_access_token(
    state: &AppState,
    token: &str,
) -> Result<Option<AccessClaims>, OAuthError> {
    let iss = issuer(state);
    let options = VerifyOptions {
        typ: Some("at+jwt"),
        issuer: Some(&iss),
        audience: Some(&iss),
        // Another node may have issued it with a clock slightly ahead: without
        // slack its `iat` is "in the future" here and a fresh token is refused.
        leeway: CLOCK_SKEW,
    };
    let claims = match state.verified_tokens.get(token) {
        // Checked before: only its expiry can have changed.
        Some(claims) => {
            if claims.exp + CLOCK_SKEW.whole_seconds() <= state.clock.now().unix_timestamp() {
                return Ok(None);
            }
            claims
        }
        None => {
            let Ok(claims) = state.keys.verify::<AccessClaims>(token, &options) else {
                return Ok(None);
            };
            state
                .verified_tokens
                .insert(token.to_owned(), claims.clone());
            claims
        }
    };
    if super::revocation::is_revoked(state, &claims.jti).await? {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// How long a node remembers that an access token's signature checked out
/// (ES256 verification is most of the cost of `/userinfo` and
/// `/introspect`); revocation and expiry are still checked every time. A
/// token string cannot change, so its signature stays valid; the key that
/// signed it stays published until every token it signed has expired.
const VERIFIED_TTL: time::Duration = time::Duration::seconds(60);
/// About 1 KB each: a few MB at most.
const VERIFIED_CAPACITY: usize = 4096;

pub fn verified_cache(
    clock: crate::clock::SharedClock,
) -> crate::store::cache::TtlCache<String, AccessClaims> {
    crate::store::cache::TtlCache::new(clock, VERIFIED_TTL, VERIFIED_CAPACITY)
}

pub fn invalid_token(description: &str) -> OAuthError {
    oauth(OAuthCode::InvalidToken, description)
}
