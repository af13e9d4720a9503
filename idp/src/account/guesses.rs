//! The current password typed by someone already signed in (to change the
//! password or the address, to turn two-step sign-in off). Such a check is
//! a password oracle for whoever holds the session, so tries are counted
//! per account: after `TRIES_PER_HOUR` within an hour the password is not
//! even checked until the hour has passed. They do not lock the account
//! (its owner is the one signed in; see docs/decisions.md).

use crate::ephemeral::keys;
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
    if state.ephemeral.increment(&key, hour).await? > TRIES_PER_HOUR {
        return Ok(CurrentPassword::NotTried);
    }
    let right = state
        .hasher
        .matches(typed, user.password_hash.as_deref())
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(if right {
        CurrentPassword::Right
    } else {
        CurrentPassword::Wrong
    })
}
