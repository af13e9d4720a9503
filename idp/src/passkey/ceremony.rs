//! The relying party (from the issuer) and the registration ceremony's
//! state. webauthn-rs hands back the state to keep between the two halves
//! of a ceremony; we keep it in the ephemeral store (its
//! `danger-allow-state-serialisation` feature), so any node can finish what
//! another started. It is the part of the ceremony an attacker would want
//! to replay or carry to another browser, so it is
//!
//! - bound to the browser: stored under the SHA-256 of the session id, which
//!   only that browser's cookie holds;
//! - bound to the person: it names the user, checked again at the finish;
//! - single use: taken (read and deleted in one step), never read, whether
//!   the finish then succeeds or fails;
//! - short-lived: [`CEREMONY_TTL`].

use std::time::Duration;

use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, RequestChallengeResponse, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::crypto::random_token;
use crate::domain::{Token, UserId};
use crate::ephemeral::{Key, keys};
use crate::store::{StoredPasskey, User};
use crate::web::session;
use crate::web::{AppError, AppState};

/// How long a started registration can be finished.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// The relying party: the issuer's host as RP id, its origin the only one
/// allowed. `None` when the issuer's host is not a domain name (an IP
/// address): WebAuthn RP ids are domains, so passkeys are off there.
pub fn relying_party(state: &AppState) -> Option<Webauthn> {
    let issuer = &state.config.server.issuer;
    let rp_id = state.config.server.passkey_rp_id()?;
    let origin = url::Url::parse(&issuer.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(rp_id, &origin)
        .ok()?
        .rp_name(rp_id)
        .build()
        .ok()
}

/// A registration under way, as kept between its two requests.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub user_id: UserId,
    pub registration: PasskeyRegistration,
}

/// Under the session id's SHA-256: only the browser holding the session
/// cookie can name it.
fn pending_key(session_id: &str) -> Key<Pending> {
    keys::secret("passkey-registration", session_id)
}

/// The user handle the authenticator stores: the user id when it is a
/// UUID (it always is for accounts made here), else a UUID derived from
/// it. Never the email address.
pub fn user_handle(user: &UserId) -> Uuid {
    Uuid::parse_str(user.as_str()).unwrap_or_else(|_| {
        let digest = Sha256::digest(user.as_str().as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

/// The stored credential, as webauthn-rs reads it.
pub fn decode(stored: &StoredPasskey) -> Option<Passkey> {
    serde_json::from_str(&stored.credential).ok()
}

/// The credential id as stored: base64url without padding.
pub fn credential_id(passkey: &Passkey) -> String {
    encoded_id(passkey.cred_id())
}

/// A credential id (or any WebAuthn bytes) as stored and sent: base64url
/// without padding.
pub fn encoded_id(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Starts a registration for `user` in the browser of `session_id`,
/// replacing one that browser had started: the options for
/// `navigator.credentials.create`. The user's passkeys are excluded (an
/// authenticator holding one says so instead of making a second).
pub async fn begin(
    state: &AppState,
    webauthn: &Webauthn,
    session_id: &str,
    user: &User,
    existing: &[StoredPasskey],
) -> Result<CreationChallengeResponse, AppError> {
    let exclude = existing
        .iter()
        .filter_map(decode)
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let display_name = if user.name.trim().is_empty() {
        user.email.as_str()
    } else {
        user.name.as_str()
    };
    let (mut options, registration) = webauthn
        .start_passkey_registration(
            user_handle(&user.id),
            user.email.as_str(),
            display_name,
            Some(exclude),
        )
        .map_err(|e| AppError::Internal(format!("passkey registration not started: {e}")))?;
    // A discoverable credential (resident key), so it can later sign in
    // without an email address first; webauthn-rs asks for a non-resident
    // one by default and does not check this part at the finish.
    if let Some(selection) = options.public_key.authenticator_selection.as_mut() {
        selection.resident_key = Some(ResidentKeyRequirement::Required);
        selection.require_resident_key = true;
    }
    let pending = Pending {
        user_id: user.id.clone(),
        registration,
    };
    state
        .ephemeral
        .put(&pending_key(session_id), &pending, CEREMONY_TTL)
        .await?;
    Ok(options)
}

/// Takes the registration the browser of `session_id` started for `user`:
/// gone afterwards, whatever the caller does with it. `None` when there is
/// none (expired, already used, started in another browser) or it was
/// another person's.
pub async fn take(
    state: &AppState,
    session_id: &str,
    user: &UserId,
) -> Result<Option<PasskeyRegistration>, AppError> {
    let pending = readable(state.ephemeral.take(&pending_key(session_id)).await)?;
    Ok(pending
        .filter(|p| &p.user_id == user)
        .map(|p| p.registration))
}

/// Reads a taken state: one of another version's format is as good as none.
fn readable<T>(taken: Result<Option<T>, crate::ephemeral::Error>) -> Result<Option<T>, AppError> {
    match taken {
        Ok(value) => Ok(value),
        Err(crate::ephemeral::Error::Decode(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A passkey sign-in (the first step) under way in a browser that has no
/// session yet: kept under the SHA-256 of a random id that only its own
/// HttpOnly cookie holds, so no other browser can finish it, and of its
/// challenge, so each of the browser's tabs finishes its own.
fn signin_key(id: &str, challenge: &str) -> Key<DiscoverableAuthentication> {
    keys::secret("passkey-signin", &format!("{id}:{challenge}"))
}

/// The challenge of creation or request options, as they travel (base64url).
fn challenge_of(options: &RequestChallengeResponse) -> Option<String> {
    let json = serde_json::to_value(options).ok()?;
    json["publicKey"]["challenge"].as_str().map(str::to_owned)
}

/// The challenge an answer signed, from its client data (WebAuthn 5.8.1:
/// `challenge`, base64url): `None` when the answer has none to read.
pub fn answered_challenge(answer: &serde_json::Value) -> Option<String> {
    let encoded = answer["response"]["clientDataJSON"].as_str()?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).ok()?;
    let client_data: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    client_data["challenge"]
        .as_str()
        .map(|c| c.trim_end_matches('=').to_owned())
}

fn signin_cookie_name(dev_mode: bool) -> &'static str {
    if dev_mode {
        "idp_passkey"
    } else {
        "__Host-idp_passkey"
    }
}

/// This browser's passkey sign-in id, if its cookie holds a well-formed one.
fn signin_id(state: &AppState, jar: &CookieJar) -> Option<String> {
    jar.get(signin_cookie_name(state.config.server.dev_mode))
        .map(|c| c.value().to_owned())
        .filter(|id| Token::parse(id).is_some())
}

/// Starts a passkey sign-in in this browser (beside any other of its tabs'):
/// the options for `navigator.credentials.get` (no credentials listed: the
/// authenticator offers the discoverable ones it holds for this RP id,
/// user verification required) and the jar carrying the cookie.
pub async fn begin_signin(
    state: &AppState,
    webauthn: &Webauthn,
    jar: CookieJar,
) -> Result<(CookieJar, RequestChallengeResponse), AppError> {
    let dev = state.config.server.dev_mode;
    let (mut options, authentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| AppError::Internal(format!("passkey sign-in not started: {e}")))?;
    // The page's script chooses how to ask (autofill or a dialog).
    options.mediation = None;
    let challenge = challenge_of(&options)
        .ok_or_else(|| AppError::Internal("passkey options without a challenge".into()))?;
    let (id, jar) = match signin_id(state, &jar) {
        Some(id) => (id, jar),
        None => {
            let id = random_token();
            let jar = jar.add(session::cookie(signin_cookie_name(dev), id.clone(), dev));
            (id, jar)
        }
    };
    state
        .ephemeral
        .put(&signin_key(&id, &challenge), &authentication, CEREMONY_TTL)
        .await?;
    Ok((jar, options))
}

/// Takes the passkey sign-in this browser started with the challenge
/// `answer` signed: gone afterwards. `None` when there is none (expired,
/// used, another browser's, or an answer with no challenge to read).
pub async fn take_signin(
    state: &AppState,
    jar: &CookieJar,
    answer: &serde_json::Value,
) -> Result<Option<DiscoverableAuthentication>, AppError> {
    let (Some(id), Some(challenge)) = (signin_id(state, jar), answered_challenge(answer)) else {
        return Ok(None);
    };
    readable(state.ephemeral.take(&signin_key(&id, &challenge)).await)
}

/// A passkey as the second step of a sign-in, kept under the pending
/// second step's id (its own cookie's secret) and naming the person who
/// passed the password.
#[derive(Debug, Serialize, Deserialize)]
pub struct SecondStep {
    pub user_id: UserId,
    pub authentication: PasskeyAuthentication,
}

fn second_step_key(pending_id: &str) -> Key<SecondStep> {
    keys::secret("passkey-second-step", pending_id)
}

/// Starts a passkey check for the pending second step `pending_id` of
/// `user`, offering the account's own passkeys only.
pub async fn begin_second_step(
    state: &AppState,
    webauthn: &Webauthn,
    pending_id: &str,
    user: &UserId,
    passkeys: &[Passkey],
) -> Result<RequestChallengeResponse, AppError> {
    let (options, authentication) = webauthn
        .start_passkey_authentication(passkeys)
        .map_err(|e| AppError::Internal(format!("passkey check not started: {e}")))?;
    let step = SecondStep {
        user_id: user.clone(),
        authentication,
    };
    state
        .ephemeral
        .put(&second_step_key(pending_id), &step, CEREMONY_TTL)
        .await?;
    Ok(options)
}

/// Takes the passkey check of the pending second step `pending_id`, if it
/// was started for `user`: gone afterwards either way.
pub async fn take_second_step(
    state: &AppState,
    pending_id: &str,
    user: &UserId,
) -> Result<Option<PasskeyAuthentication>, AppError> {
    let taken = readable(state.ephemeral.take(&second_step_key(pending_id)).await)?;
    Ok(taken
        .filter(|s| &s.user_id == user)
        .map(|s| s.authentication))
}

#[cfg(test)]
mod tests {
    use super::user_handle;
    use crate::domain::UserId;

    #[test]
    fn the_user_handle_is_the_user_id_or_derived_from_it() {
        let id = UserId::generate();
        assert_eq!(user_handle(&id).to_string(), id.as_str());
        let odd = UserId::from_trusted("not-a-uuid".into());
        assert_eq!(user_handle(&odd), user_handle(&odd));
        assert_ne!(user_handle(&odd).to_string(), "not-a-uuid");
    }
}
