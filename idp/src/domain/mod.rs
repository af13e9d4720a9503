//! Types that validate on construction: holding one means the value was
//! checked. Shared by every capability, so no capability imports another's
//! internals.

mod audit;
mod claims;
mod client;
mod email;
mod token;
mod user;

pub use audit::AuditKind;
pub use claims::{Claim, MalformedClaims, RequestedClaims};
pub use client::{ClientId, ClientKind, GrantType, IdTokenAlg, RedirectUri};
pub use email::Email;
pub use token::Token;
pub use user::{PlainPassword, UserId};

/// A value refused at the boundary, with a message fit for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub(crate) fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}
