//! Checking a passkey's answer (a WebAuthn assertion) for either step of
//! a sign-in, and recording its use. The signature, challenge, origin, RP
//! id, user verification and signature counter are webauthn-rs's checks;
//! ours are which stored passkey it names, whose it is, and that its use
//! is recorded once.

use serde_json::json;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PublicKeyCredential, Webauthn, WebauthnError,
};

use super::ceremony::{self, decode, encoded_id};
use crate::domain::{AuditKind, UserId};
use crate::store::{StoredPasskey, User};
use crate::web::client_meta::ClientMeta;
use crate::web::{AppError, AppState, audit};

/// Why an answer was refused, as audited (`reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a `PublicKeyCredential`, or without the user handle a
    /// discoverable sign-in needs.
    Malformed,
    /// No passkey stored with that credential id (removed, or never here).
    Unknown,
    /// The user handle is not the one of the passkey's owner.
    OtherUser,
    /// The signature counter did not move forward: the passkey may have
    /// been copied (WebAuthn 7.2 step 21).
    Counter,
    /// Another check failed: signature, challenge, origin, RP id, user
    /// verification.
    Refused,
    /// The account is disabled or gone.
    Account,
    /// Another sign-in with the same passkey was recorded meanwhile.
    Raced,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown_passkey",
            Refusal::OtherUser => "other_user",
            Refusal::Counter => "counter",
            Refusal::Refused => "refused",
            Refusal::Account => "account",
            Refusal::Raced => "raced",
        }
    }

    /// What the person is told: the same for everything they cannot fix.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Malformed => "The answer from your passkey could not be read. Try again.",
            Refusal::Unknown => {
                "This passkey is not registered here (perhaps it was removed). Sign in with your password."
            }
            _ => "Your passkey could not be accepted. Try again, or sign in with your password.",
        }
    }
}

/// A passkey that passed: its owner and the stored row.
pub struct Passed {
    pub user: User,
    pub passkey: StoredPasskey,
}

/// The answer of a passkey sign-in's first step (no one named yet): the
/// stored passkey is found by its credential id, and the user handle the
/// authenticator gave must be its owner's.
pub async fn check_signin(
    state: &AppState,
    meta: &ClientMeta,
    webauthn: &Webauthn,
    answer: serde_json::Value,
    started: DiscoverableAuthentication,
) -> Result<Result<Passed, Refusal>, AppError> {
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(answer) else {
        return refuse(state, meta, None, Refusal::Malformed).await;
    };
    let Ok((handle, cred_id)) = webauthn.identify_discoverable_authentication(&credential) else {
        return refuse(state, meta, None, Refusal::Malformed).await;
    };
    let cred_id = encoded_id(cred_id);
    let Some(stored) = state.store.passkey_by_credential_id(&cred_id).await? else {
        return refuse(state, meta, None, Refusal::Unknown).await;
    };
    if ceremony::user_handle(&stored.user_id) != handle {
        return refuse(state, meta, Some(&stored.user_id), Refusal::OtherUser).await;
    }
    let passkey = readable(&stored)?;
    let checked = webauthn.finish_discoverable_authentication_v2(&credential, started, &passkey);
    finish(state, meta, stored, passkey, checked).await
}

/// The answer of a passkey as the second step of `user`'s sign-in: one of
/// the passkeys the check was started with (the account's own).
pub async fn check_second_step(
    state: &AppState,
    meta: &ClientMeta,
    webauthn: &Webauthn,
    user: &UserId,
    answer: serde_json::Value,
    started: &PasskeyAuthentication,
) -> Result<Result<Passed, Refusal>, AppError> {
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(answer) else {
        return refuse(state, meta, Some(user), Refusal::Malformed).await;
    };
    let checked = webauthn.finish_passkey_authentication(&credential, started);
    let cred_id = match &checked {
        Ok(result) => encoded_id(result.cred_id()),
        Err(_) => encoded_id(credential.get_credential_id()),
    };
    let stored = state
        .store
        .passkeys(user)
        .await?
        .into_iter()
        .find(|p| p.credential_id == cred_id);
    let Some(stored) = stored else {
        return refuse(state, meta, Some(user), Refusal::Unknown).await;
    };
    let passkey = readable(&stored)?;
    finish(state, meta, stored, passkey, checked).await
}

/// The signature counter of the credential as stored (webauthn-rs keeps it
/// inside the serialised passkey and offers no getter); 0 if unreadable,
/// which skips the check as for a passkey without a counter.
fn counter_of(stored: &StoredPasskey) -> u64 {
    serde_json::from_str::<serde_json::Value>(&stored.credential)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64())
        .unwrap_or(0)
}

fn readable(stored: &StoredPasskey) -> Result<Passkey, AppError> {
    decode(stored).ok_or_else(|| AppError::Internal("a stored passkey could not be read".into()))
}

/// After webauthn-rs's checks: a counter that went back is audited as a
/// possible copy; a passkey that passed has its use recorded (once: a
/// parallel use of the same passkey that moved its counter first wins)
/// and its owner must still be allowed in.
async fn finish(
    state: &AppState,
    meta: &ClientMeta,
    stored: StoredPasskey,
    mut passkey: Passkey,
    checked: Result<AuthenticationResult, WebauthnError>,
) -> Result<Result<Passed, Refusal>, AppError> {
    let owner = Some(&stored.user_id);
    let copied = match &checked {
        Err(WebauthnError::CredentialPossibleCompromise) => true,
        // The library compared with the counter it was given, which for a
        // second step is the one read when the step started: compared
        // again with the counter stored now, read after the check.
        Ok(result) => {
            let stored_counter = counter_of(&stored);
            let counter = u64::from(result.counter());
            (counter > 0 || stored_counter > 0) && counter <= stored_counter
        }
        Err(_) => false,
    };
    if copied {
        audit::record(
            state,
            meta,
            AuditKind::PasskeyCloneWarning,
            owner,
            None,
            json!({ "passkey_id": stored.id, "name": stored.name }),
        )
        .await;
        return refuse(state, meta, owner, Refusal::Counter).await;
    }
    let result = match checked {
        Ok(result) => result,
        Err(e) => {
            tracing::info!(error = %e, "passkey answer refused");
            return refuse(state, meta, owner, Refusal::Refused).await;
        }
    };
    let Some(user) = state
        .store
        .user_by_id(&stored.user_id)
        .await?
        .filter(|u| !u.disabled)
    else {
        return refuse(state, meta, owner, Refusal::Account).await;
    };
    let updated = match passkey.update_credential(&result) {
        Some(true) => Some(
            serde_json::to_string(&passkey)
                .map_err(|e| AppError::Internal(format!("passkey not serialised: {e}")))?,
        ),
        _ => None,
    };
    let now = state.clock.now();
    if !state
        .store
        .passkey_used(&stored.id, &stored.credential, updated.as_deref(), now)
        .await?
    {
        return refuse(state, meta, owner, Refusal::Raced).await;
    }
    Ok(Ok(Passed {
        user,
        passkey: stored,
    }))
}

/// Audits a refused answer (`passkey.signin_failed`) and returns it.
async fn refuse(
    state: &AppState,
    meta: &ClientMeta,
    user: Option<&UserId>,
    refusal: Refusal,
) -> Result<Result<Passed, Refusal>, AppError> {
    audit::record(
        state,
        meta,
        AuditKind::PasskeySigninFailed,
        user,
        None,
        json!({ "reason": refusal.reason() }),
    )
    .await;
    Ok(Err(refusal))
}
