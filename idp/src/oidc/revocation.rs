//! Revoked access tokens (RFC 7009 section 2, and the code replay of RFC
//! 6749 section 4.1.2), checked on every `/userinfo` and `/introspect`.
//!
//! Why it looks like this (docs/decisions.md has the longer story):
//! - The durable store is the record: a revocation is written there first,
//!   then to the ephemeral store, which answers the per-request check. A
//!   revocation must not die with the ephemeral store's data (a Redis
//!   restart without persistence, a crash between snapshots, the embedded
//!   store after a process restart).
//! - The check costs one ephemeral round trip: one `MGET` of the token's
//!   `revoked-at:{jti}` and of the `revocations-loaded` marker. The marker
//!   is written (without expiry) once the revocations of the durable store
//!   are in the ephemeral store; if the store loses its data the marker goes
//!   with it, and the first check that misses it loads every revocation of a
//!   still-live token back (once per node: later checks wait for it) before
//!   answering.
//! - Rows are written before the ephemeral entry, and the marker after the
//!   rows are loaded, so a loaded store never lacks a revocation that the
//!   durable store had when the load began; one made meanwhile writes its
//!   own entry.

use std::time::Duration;

use crate::ephemeral::keys;
use crate::store::RevokedToken;
use crate::web::AppState;

use super::error::OAuthError;
use super::request::revoked_access_key;

/// How long the marker lives: for ever, in practice (Redis caps the ttl).
const MARKER_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Refuses the access token `jti` until its expiry (`exp`, unix seconds).
pub async fn revoke(state: &AppState, jti: &str, exp: i64) -> Result<(), OAuthError> {
    let now = state.clock.now();
    let expires_at =
        time::OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now + time::Duration::hours(1));
    let token = RevokedToken {
        jti: jti.to_owned(),
        expires_at,
    };
    state.store.revoke_access_token(&token, now).await?;
    remember(state, &token, now).await?;
    Ok(())
}

/// Whether the access token `jti` was revoked.
pub async fn is_revoked(state: &AppState, jti: &str) -> Result<bool, OAuthError> {
    let (revoked, loaded) = state
        .ephemeral
        .get_pair(&revoked_access_key(jti), &keys::revocations_loaded())
        .await?;
    if revoked.is_some() {
        return Ok(true);
    }
    if loaded.is_some() {
        return Ok(false);
    }
    reload(state).await?;
    Ok(state
        .ephemeral
        .get(&revoked_access_key(jti))
        .await?
        .is_some())
}

/// Copies every revocation of a still-live token from the durable store
/// into the ephemeral one, then writes the marker. Run when the marker is
/// missing: on a fresh store, or one that lost its data.
async fn reload(state: &AppState) -> Result<(), OAuthError> {
    let _one_at_a_time = state.revocation_reload.enter().await;
    // Another request of this node may have done it while this one waited.
    if state
        .ephemeral
        .get(&keys::revocations_loaded())
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now = state.clock.now();
    let revoked = state.store.revoked_access_tokens(now).await?;
    for token in &revoked {
        remember(state, token, now).await?;
    }
    state
        .ephemeral
        .put(
            &keys::revocations_loaded(),
            &now.unix_timestamp(),
            MARKER_TTL,
        )
        .await?;
    if !revoked.is_empty() {
        tracing::warn!(
            count = revoked.len(),
            "the ephemeral store had lost its revocations: loaded them again from the durable store"
        );
    }
    Ok(())
}

async fn remember(
    state: &AppState,
    token: &RevokedToken,
    now: time::OffsetDateTime,
) -> Result<(), OAuthError> {
    let left = (token.expires_at - now).whole_seconds().max(1) as u64;
    state
        .ephemeral
        .put(
            &revoked_access_key(&token.jti),
            &now.unix_timestamp(),
            Duration::from_secs(left),
        )
        .await?;
    Ok(())
}
