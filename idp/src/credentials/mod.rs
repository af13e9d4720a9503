//! What proves who a user is, shared by every capability that asks for it:
//! password hashing, the password policy, lockout after repeated failures,
//! limits on guesses of a current password or a code, and the captcha.
//! Below the capabilities (account, mfa, oidc), which all use it; it never
//! uses them.

pub mod captcha;
pub mod guesses;
mod hasher;
pub mod jit;
pub mod legacy;
pub mod lockout;
pub mod policy;
pub mod totp_secret;

pub use hasher::{HashError, HashMemory, Load as HashLoad, PasswordHasher, Verification};
