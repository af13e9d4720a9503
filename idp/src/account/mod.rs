//! Customer accounts: creating them, their passwords. The web flows (sign-in,
//! registration, reset, lockout) build on this.

mod hasher;
mod users;

pub use hasher::{HashError, PasswordHasher, Verification};
pub use users::{CreateUserError, NewAccount, create_user};
