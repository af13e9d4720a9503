//! The one place where errors become HTTP responses. A 500 never shows its
//! cause: the client gets the request id, the log gets the cause chain.
//!
//! A browser (an `Accept` naming `text/html`) gets these answers as a page
//! in the portal's look ([`themed`]); everything else (JSON endpoints,
//! scripts) gets the same short text as before.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::theme::ThemeError;
use crate::credentials::HashError;
use crate::crypto::envelope::EnvelopeError;
use crate::{ephemeral, store};

/// What a request can fail with. The store and the ephemeral store may be
/// unavailable (503); everything else is a 500 whose cause only the log sees.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Ephemeral(#[from] ephemeral::Error),
    /// A page or a mail could not be rendered.
    #[error(transparent)]
    Theme(#[from] ThemeError),
    /// A password could not be hashed or checked.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("{0}")]
    Internal(String),
}

/// Marks a response made from an [`AppError`], so `error_page::themed` can
/// dress it; `busy`: the password hashing queue was full.
#[derive(Debug, Clone, Copy)]
pub(super) struct FromAppError {
    pub busy: bool,
}

/// What a busy refusal says (the themed page says the same).
pub const BUSY_TEXT: &str =
    "Many people are signing in right now. Please try again in a few seconds.";

/// The `Retry-After` of a busy refusal, in seconds: about what the queue
/// takes to drain (`password_hashing.max_queued` is about a second's hashing).
pub const BUSY_RETRY_AFTER: &str = "5";

const UNAVAILABLE_TEXT: &str = "The service is temporarily unavailable. Please try again shortly.";
const INTERNAL_TEXT: &str = "Something went wrong on our side. Please try again; if it persists, quote the request id shown in the x-request-id header.";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if matches!(self, AppError::Hash(HashError::Busy)) {
            // Expected under a flood, and nothing failed: no error line.
            tracing::debug!("refused: the password hashing queue is full");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, BUSY_RETRY_AFTER)],
                BUSY_TEXT,
            )
                .into_response();
            response
                .extensions_mut()
                .insert(FromAppError { busy: true });
            response.extensions_mut().insert(super::plumbing::Busy);
            return response;
        }
        let status = match &self {
            AppError::Store(store::Error::Unavailable(_))
            | AppError::Ephemeral(ephemeral::Error::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Logged inside the request span, which carries the request id.
        let _span = super::plumbing::request_span().entered();
        tracing::error!(error = %self, "request failed");
        let body = match status {
            StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE_TEXT,
            _ => INTERNAL_TEXT,
        };
        let mut response = (status, body).into_response();
        response
            .extensions_mut()
            .insert(FromAppError { busy: false });
        response
    }
}
