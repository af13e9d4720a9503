//! The current password typed by someone already signed in (to change the
//! password or the address, to turn two-step sign-in off). Such a check is
//! a password oracle for whoever holds the session, so tries are counted
//! per account: after `TRIES_PER_HOUR` within an hour the password is not
//! even checked until the hour has passed. They do not lock the account
//! (its owner is the one signed in; see docs/decisions.md).
//!
//! Also the other allowances counted before the check: codes typed outside
//! the sign-in's second step, and requests that send mail.

use super::HashError;
use crate::ephemeral::{Counted, Key, keys};
use crate::store::User;
use crate::web::{AppError, AppState};

/// Current passwords an account checks per hour, right or wrong.
pub const TRIES_PER_HOUR: u64 = 10;

/// What the password typed turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentPassword {
    Right,
    Wrong,
    /// Too many wrong ones this hour: not checked.
    NotTried,
}

impl CurrentPassword {
    /// The message for the password box, when it was not right.
    pub fn message(self) -> Option<&'static str> {
        match self {
            Self::Right => None,
            Self::Wrong => Some("That is not your current password."),
            Self::NotTried => {
                Some("Too many tries in the last hour. Please wait a while, then try again.")
            }
        }
    }
}

/// Checks `typed` against `user`'s password, within the hourly allowance.
/// Every try is counted before the (slow) check, a right one too: counting
/// only wrong answers after the check would let parallel requests all pass
/// the limit before any of them was counted.
pub async fn check_current_password(
    state: &AppState,
    user: &User,
    typed: &str,
) -> Result<CurrentPassword, AppError> {
    let key = keys::counter("current-password-tries", user.id.as_str());
    let hour = std::time::Duration::from_secs(3600);
    let counted = state.ephemeral.count(&key, hour).await?;
    if counted.count > TRIES_PER_HOUR {
        return Ok(CurrentPassword::NotTried);
    }
    let right = match state
        .hasher
        .matches(typed, user.password_hash.as_deref())
        .await
    {
        Err(HashError::Busy) => {
            // Not checked: the try is given back.
            state.ephemeral.give_back(&key, counted).await?;
            return Err(HashError::Busy.into());
        }
        other => other?,
    };
    Ok(if right {
        CurrentPassword::Right
    } else {
        CurrentPassword::Wrong
    })
}

/// One-time and recovery codes an account may have checked per hour outside
/// the sign-in's second step (which the lockout counts): confirming an
/// authenticator, new recovery codes, turning two-step sign-in off.
pub const CODE_TRIES_PER_HOUR: u64 = 10;

/// Counts one code typed for `user` and says whether it may be checked
/// (counted first, so parallel requests get no more than the allowance).
pub async fn code_try_allowed(state: &AppState, user: &User) -> Result<bool, AppError> {
    let key = keys::counter("code-tries", user.id.as_str());
    let hour = std::time::Duration::from_secs(3600);
    Ok(state.ephemeral.increment(&key, hour).await? <= CODE_TRIES_PER_HOUR)
}

/// The message for a code box when the allowance is spent.
pub const CODE_TRIES_SPENT: &str =
    "Too many codes were tried in the last hour. Please wait a while, then try again.";

/// Counts one mail-sending request (registration, change of address) to
/// `to` from `ip` and says whether its mail may go: at most
/// `account.mails_per_address_per_hour` to one address and
/// `account.mail_requests_per_ip_per_hour` from one IP. Both counts come
/// first, so a burst gets no more than the limits; a request refused gives
/// its counts back, so the counts are of mails that may go, not of tries
/// (otherwise a burst from one IP past its own limit would use up the
/// allowance of the address it names, and what a burst leaves would depend
/// on how its requests interleave). The caller answers the same either way
/// (an answer must not tell whether an address has an account). `Some`:
/// the mail may go, and what was counted, to give back if it does not.
pub async fn mail_allowed(
    state: &AppState,
    to: &crate::domain::Email,
    ip: std::net::IpAddr,
) -> Result<Option<MailCounts>, AppError> {
    let hour = std::time::Duration::from_secs(3600);
    let config = &state.config.account;
    let ip_key = keys::counter("mail-ip", &ip.to_string());
    let address_key = keys::counter("mail-address", &to.mailbox_key());
    let (ip_counted, address_counted) = state
        .ephemeral
        .count_both((&ip_key, hour), (&address_key, hour))
        .await?;
    let allowed = ip_counted.count <= config.mail_requests_per_ip_per_hour
        && address_counted.count <= config.mails_per_address_per_hour;
    let counts = MailCounts([(ip_key, ip_counted), (address_key, address_counted)]);
    if allowed {
        return Ok(Some(counts));
    }
    mail_given_back(state, counts).await;
    Ok(None)
}

/// What [`mail_allowed`] counted, each in its hour's window.
#[derive(Debug)]
pub struct MailCounts([(Key<u64>, Counted); 2]);

/// Gives back what [`mail_allowed`] counted, for a request that then sent
/// nothing (refused by a limit, or because the hashing queue was full).
/// Each count goes back to the hour it was counted in: if that hour has
/// ended meanwhile, the next one is not given an extra mail. Both go back
/// in one round trip. A store that cannot take them
/// back is logged, not answered: the requester sees the same page either
/// way (an error here would tell them they were refused).
pub async fn mail_given_back(state: &AppState, counts: MailCounts) {
    if let Err(e) = state.ephemeral.give_back_many(&counts.0).await {
        tracing::warn!(error = %e, "a mail request's counts were not given back");
    }
}
