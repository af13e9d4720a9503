//! The one decision of the pipeline: what a sign-in needs next, from the
//! pending request, what this browser has proved so far, and what the
//! account, the client and the deployment require.

use super::acr::{self, Essential, has_second_factor};
use super::request::PendingRequest;
use crate::domain::UserId;
use crate::store::User;
use crate::web::session::CurrentUser;
use crate::web::{AppError, AppState};

/// What a pending sign-in needs next. Each value but `Complete` is a step
/// with a page of its own ([`super::route::location`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Who is signing in: the email and password form.
    Password,
    /// A second factor: a code from the account's authenticator app (or a
    /// recovery code), or one of its passkeys.
    Code,
    /// An authenticator must be set up first: one is required and the
    /// account has none.
    SetUpAuthenticator,
    /// The person has not (yet) allowed this client what it asks for.
    Consent,
    /// The request asks for an essential `acr` (OIDC Core 5.5.1.1) that
    /// this sign-in cannot reach: the client gets
    /// `unmet_authentication_requirements` (OpenID Connect Unmet
    /// Authentication Requirements 1.0). After a step, as `Complete`.
    Unmet,
    /// Nothing more. For a session: the request can be answered. After a
    /// step (no session yet): the session starts and the browser goes back
    /// to the pipeline, which decides again with it.
    Complete,
}

/// What the browser has proved so far.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    Nobody,
    /// The password was right just now; no session exists yet.
    Password(&'a User),
    /// A live session.
    Session(&'a CurrentUser),
}

/// What comes next for `pending` (none: a sign-in that began on our own
/// sign-in page) given `proof`. For [`Proof::Password`] only the sign-in
/// steps are decided: consent belongs to the session that follows.
///
/// The second factor (OIDC Core: `acr` 2), when the session lacks one:
/// - required by the deployment (`mfa.required`) or the client
///   (`require_mfa`): a code, or setting up an authenticator first;
/// - an essential `acr` claim (the `claims` parameter, 5.5.1.1) that only
///   the second factor meets: a code when the account has an
///   authenticator, else [`Next::Unmet`];
/// - preferred by `acr_values` (3.1.2.1, voluntary), and right after the
///   password when the account has an authenticator (its owner's choice):
///   a code when it has one, else nothing: a preference never enrols and
///   never fails the request.
pub async fn next(
    state: &AppState,
    pending: Option<&PendingRequest>,
    proof: Proof<'_>,
) -> Result<Next, AppError> {
    let essential = acr::essential(pending.and_then(|p| p.request.essential_acr.as_deref()));
    // Nobody can meet it: fail at once rather than after a sign-in. Right
    // after a password, the steps the account and the deployment require
    // are decided first; the session that follows gets the answer.
    if essential == Essential::Never && !matches!(proof, Proof::Password(_)) {
        return Ok(Next::Unmet);
    }
    let (user, session) = match proof {
        Proof::Nobody => return Ok(Next::Password),
        Proof::Password(user) => (user, None),
        Proof::Session(current) => (&current.user, Some(current)),
    };
    if let (Some(p), Some(current)) = (pending, session)
        && needs_login(state, p, current)
    {
        return Ok(Next::Password);
    }
    let has_second = session.is_some_and(|c| has_second_factor(&c.session.amr));
    if !has_second {
        let required = state.config.mfa.required || pending.is_some_and(|p| p.client.require_mfa);
        let essential_mfa = essential == Essential::SecondFactor;
        // A preference (acr_values) never fails a silent request: with
        // prompt=none the session's own acr is the answer.
        let preferred = session.is_none()
            || pending.is_some_and(|p| p.request.prefers_mfa && !p.request.prompt_none);
        if required || essential_mfa || preferred {
            // A preference asks for the authenticator app only: a passkey
            // is offered as a second step only where one is needed, so
            // an account whose passkey is lost (or was added by someone
            // else) still signs in with its password where nothing more
            // is asked, and can remove it.
            let passkeys_count = required || essential_mfa;
            if has_authenticator(state, user, passkeys_count).await? {
                return Ok(Next::Code);
            }
            if required {
                return Ok(Next::SetUpAuthenticator);
            }
            if essential_mfa {
                return Ok(Next::Unmet);
            }
        }
    }
    let Some(p) = pending.filter(|_| session.is_some()) else {
        return Ok(Next::Complete);
    };
    if !p.client.first_party && !p.consented_by(&user.id) {
        let remembered = state.store.consent(&user.id, &p.client.id).await?;
        let covered =
            remembered.is_some_and(|c| p.request.scopes.iter().all(|s| c.scopes.contains(s)));
        if p.request.prompt_consent || !covered {
            return Ok(Next::Consent);
        }
    }
    Ok(Next::Complete)
}

/// The session does not serve this request: `prompt=login` (or
/// `max_age=0`, the same thing, OIDC Core 3.1.2.1) asks for a sign-in made
/// for this request, or the session's sign-in is more than `max_age`
/// seconds old. A sign-in made for this request meets both, however long
/// it took to get back here: no clock is compared with another's.
fn needs_login(state: &AppState, pending: &PendingRequest, current: &CurrentUser) -> bool {
    if current.session.signed_in_for(&pending.id) {
        return false;
    }
    let now = state.clock.now().unix_timestamp();
    let request = &pending.request;
    request.prompt_login
        || request
            .max_age
            .is_some_and(|max| max == 0 || now - current.session.auth_time > max)
}

/// Whether the account has a second factor: an authenticator app turned
/// on, or (`passkeys`) a passkey.
async fn has_authenticator(
    state: &AppState,
    user: &User,
    passkeys: bool,
) -> Result<bool, AppError> {
    if authenticator_app(state, &user.id).await? {
        return Ok(true);
    }
    Ok(passkeys && has_passkeys(state, &user.id).await?)
}

/// Whether the account has an authenticator app turned on.
pub async fn authenticator_app(state: &AppState, user: &UserId) -> Result<bool, AppError> {
    Ok(state
        .store
        .totp_credential(user)
        .await?
        .is_some_and(|c| c.is_active()))
}

/// Whether the account has a passkey that can be used here (this server
/// offers passkeys at all).
pub async fn has_passkeys(state: &AppState, user: &UserId) -> Result<bool, AppError> {
    let offered = state.config.server.passkey_rp_id().is_some();
    Ok(offered && !state.store.passkeys(user).await?.is_empty())
}
