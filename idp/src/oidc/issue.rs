//! Minting tokens: ID tokens (OIDC Core 2), JWT access tokens (RFC 9068),
//! opaque refresh tokens stored as their SHA-256.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256, Sha512};
use time::{Duration, OffsetDateTime};

use super::error::{OAuthCode, OAuthError, oauth};
use super::response::issuer;
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{Claim, ClientId, IdTokenAlg, RequestedClaims, UserId};
use crate::store::{Client, NewRefreshToken, User};
use crate::tokens::AccessClaims;
use crate::web::AppState;

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    azp: &'a str,
    at_hash: String,
    acr: &'a str,
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    /// Only when asked for by name (OIDC Core 5.5): the profile scope puts
    /// it in userinfo alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
    /// The account's id in the client's portal, under the client's claim
    /// name (`oidc::external_id`); empty for most clients.
    #[serde(flatten)]
    portal: std::collections::BTreeMap<&'a str, &'a str>,
}

/// The signed-in facts a token carries.
#[derive(Debug, Clone)]
pub struct Authentication {
    pub auth_time: i64,
    pub amr: Vec<String>,
    pub acr: String,
}

static NO_CLAIMS: RequestedClaims = RequestedClaims::NONE;

/// What a grant releases about the account: its scopes, and the claims its
/// authorization request asked for by name (OIDC Core 5.5).
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub scopes: &'a [String],
    pub claims: &'a RequestedClaims,
}

impl<'a> Release<'a> {
    /// The scopes alone (a grant without an authorization request, or one
    /// that asked for no claim by name).
    pub fn scopes(scopes: &'a [String]) -> Self {
        Self {
            scopes,
            claims: &NO_CLAIMS,
        }
    }

    /// Whether `claim` goes in the ID token: asked for there by name, or
    /// (as this provider has always done for `email`, `email_verified` and
    /// `name`) released by a scope.
    fn in_id_token(&self, claim: Claim) -> bool {
        self.claims.id_token.contains(&claim)
            || (claim != Claim::UpdatedAt && self.scopes.iter().any(|s| s == claim.scope()))
    }
}

/// The `/token` success body (RFC 6749 5.1, OIDC Core 3.1.3.3).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

fn sign_error(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "signing failed");
    oauth(
        OAuthCode::ServerError,
        "the server could not sign the token",
    )
}

/// Signs an access token; returns it with its claims.
pub fn access_token(
    state: &AppState,
    client_id: &ClientId,
    subject: &str,
    release: Release<'_>,
    auth: Option<&Authentication>,
) -> Result<(String, AccessClaims), OAuthError> {
    let now = state.clock.now().unix_timestamp();
    let iss = issuer(state);
    let claims = AccessClaims {
        aud: iss.clone(),
        iss,
        sub: subject.to_owned(),
        exp: now + state.config.tokens.access_token_ttl_secs as i64,
        iat: now,
        jti: random_token(),
        client_id: client_id.to_string(),
        scope: release.scopes.join(" "),
        auth_time: auth.map(|a| a.auth_time),
        acr: auth.map(|a| a.acr.clone()),
        amr: auth.map(|a| a.amr.clone()).unwrap_or_default(),
        userinfo_claims: release.claims.userinfo.clone(),
    };
    // One algorithm for every access token (tokens.access_token_alg, ES256 by
    // default: RFC 9068 resource servers verify it, and it signs ~30x faster than RS256).
    let token = state
        .keys
        .sign(state.config.tokens.access_token_alg, "at+jwt", &claims)
        .map_err(sign_error)?;
    Ok((token, claims))
}

/// `at_hash`: the left half of the access token's hash, with the hash of the
/// ID token's algorithm (SHA-512 for Ed25519).
fn at_hash(alg: IdTokenAlg, access_token: &str) -> String {
    match alg {
        IdTokenAlg::RS256 | IdTokenAlg::ES256 => {
            let d = Sha256::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..16])
        }
        IdTokenAlg::EdDSA => {
            let d = Sha512::digest(access_token.as_bytes());
            URL_SAFE_NO_PAD.encode(&d[..32])
        }
    }
}

/// Whom an ID token is about: the account, and its id in the client's
/// portal as `(claim name, id)` when the client receives one
/// (`oidc::external_id`).
pub struct IdSubject<'a> {
    pub user: &'a User,
    pub portal: Option<(&'a str, &'a str)>,
}

pub fn id_token(
    state: &AppState,
    client: &Client,
    subject: IdSubject<'_>,
    release: Release<'_>,
    nonce: Option<&str>,
    auth: &Authentication,
    access_token: &str,
) -> Result<String, OAuthError> {
    let user = subject.user;
    let now = state.clock.now().unix_timestamp();
    let iss = issuer(state);
    let has = |claim: Claim| release.in_id_token(claim);
    let claims = IdClaims {
        iss: &iss,
        sub: user.id.as_str(),
        aud: client.id.as_str(),
        exp: now + state.config.tokens.id_token_ttl_secs as i64,
        iat: now,
        auth_time: auth.auth_time,
        nonce,
        azp: client.id.as_str(),
        at_hash: at_hash(client.id_token_alg, access_token),
        acr: &auth.acr,
        amr: &auth.amr,
        email: has(Claim::Email).then(|| user.email.as_str()),
        email_verified: has(Claim::EmailVerified).then_some(user.email_verified),
        name: has(Claim::Name).then_some(user.name.as_str()),
        updated_at: has(Claim::UpdatedAt).then(|| user.updated_at.unix_timestamp()),
        portal: subject.portal.into_iter().collect(),
    };
    state
        .keys
        .sign(client.id_token_alg, "JWT", &claims)
        .map_err(sign_error)
}

/// A refresh token value and what to store for it.
pub fn refresh_token(
    state: &AppState,
    client: &ClientId,
    user: &UserId,
    release: Release<'_>,
    auth: &Authentication,
    family: Option<(&str, OffsetDateTime)>,
) -> (String, NewRefreshToken) {
    let now = state.clock.now();
    let t = &state.config.tokens;
    let (family_id, family_expires_at) = match family {
        Some((id, until)) => (id.to_owned(), until),
        None => (
            uuid::Uuid::now_v7().to_string(),
            now + Duration::seconds(t.refresh_token_absolute_secs as i64),
        ),
    };
    let token = random_token();
    let record = NewRefreshToken {
        token_hash: sha256_hex(&token),
        family_id,
        user_id: user.clone(),
        client_id: client.clone(),
        scopes: release.scopes.to_vec(),
        auth_time: OffsetDateTime::from_unix_timestamp(auth.auth_time).unwrap_or(now),
        amr: auth.amr.clone(),
        acr: Some(auth.acr.clone()),
        claims: release.claims.clone(),
        expires_at: (now + Duration::seconds(t.refresh_token_idle_secs as i64))
            .min(family_expires_at),
        family_expires_at,
    };
    (token, record)
}
