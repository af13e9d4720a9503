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

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use webauthn_rs::prelude::{
    CreationChallengeResponse, Passkey, PasskeyRegistration, Uuid, Webauthn, WebauthnBuilder,
};
use webauthn_rs_proto::ResidentKeyRequirement;

use crate::domain::UserId;
use crate::ephemeral::{Key, keys};
use crate::store::{StoredPasskey, User};
use crate::web::{AppError, AppState};

/// How long a started registration can be finished.
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// The relying party: the issuer's host as RP id, its origin the only one
/// allowed. `None` when the issuer's host is not a domain name (an IP
/// address): WebAuthn RP ids are domains, so passkeys are off there.
pub fn relying_party(state: &AppState) -> Option<Webauthn> {
    let issuer = &state.config.server.issuer;
    let rp_id = issuer.domain()?;
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
fn user_handle(user: &UserId) -> Uuid {
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
    URL_SAFE_NO_PAD.encode(passkey.cred_id())
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
    let pending = match state.ephemeral.take(&pending_key(session_id)).await {
        Ok(pending) => pending,
        // Unreadable (another version's format): as good as none.
        Err(crate::ephemeral::Error::Decode(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(pending
        .filter(|p| &p.user_id == user)
        .map(|p| p.registration))
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
