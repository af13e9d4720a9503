//! The one place where errors become HTTP responses. A 500 never shows its
//! cause: the client gets the request id, the log gets the cause chain.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::{ephemeral, store};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Ephemeral(#[from] ephemeral::Error),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Store(store::Error::Unavailable(_))
            | AppError::Ephemeral(ephemeral::Error::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Logged inside the request span, which carries the request id.
        tracing::error!(error = %self, "request failed");
        let body = match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                "The service is temporarily unavailable. Please try again shortly."
            }
            _ => {
                "Something went wrong on our side. Please try again; if it persists, quote the request id shown in the x-request-id header."
            }
        };
        (status, body).into_response()
    }
}
