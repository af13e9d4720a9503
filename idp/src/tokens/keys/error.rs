//! What loading, rotating or using the signing keys can fail with.

use super::verify::TokenError;
use crate::crypto::envelope::EnvelopeError;
use crate::domain::IdTokenAlg;
use crate::store;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("signing keys: {0}")]
    Store(#[from] store::Error),
    #[error("cannot decrypt signing keys: wrong keys.encryption_key?")]
    Decrypt,
    #[error("signing keys are stored encrypted but keys.encryption_key is not set")]
    NoEncryptionKey,
    #[error("keys.encryption_key: {0}")]
    BadEncryptionKey(EnvelopeError),
    #[error("signing keys: {0}")]
    Crypto(String),
    #[error("no {} signing key", .0.as_str())]
    NoSigningKey(IdTokenAlg),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("invalid token: {0}")]
    Token(#[from] TokenError),
}
