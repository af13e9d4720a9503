//! Creating accounts: the one path used by the CLI, registration and the admin API.

use crate::clock::Clock;
use crate::domain::{Email, PlainPassword};
use crate::store::{self, NewUser, Store, User};

use crate::credentials::{HashError, PasswordHasher};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub name: String,
    pub password: Option<PlainPassword>,
    pub email_verified: bool,
    pub is_admin: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("names can be at most 200 characters")]
    NameTooLong,
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Store(store::Error),
}

pub const MAX_NAME_CHARS: usize = 200;

pub async fn create_user(
    store: &dyn Store,
    hasher: &PasswordHasher,
    clock: &dyn Clock,
    account: NewAccount,
) -> Result<User, CreateUserError> {
    let name = account.name.trim().to_owned();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(CreateUserError::NameTooLong);
    }
    let password_hash = match &account.password {
        Some(p) => Some(hasher.hash(p).await?),
        None => None,
    };
    let new = NewUser {
        email: account.email,
        name,
        email_verified: account.email_verified,
        password_hash,
        is_admin: account.is_admin,
    };
    store
        .create_user(new, clock.now())
        .await
        .map_err(|e| match e {
            store::Error::Conflict => CreateUserError::EmailTaken,
            other => CreateUserError::Store(other),
        })
}
