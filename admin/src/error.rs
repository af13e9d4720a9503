//! What can go wrong: building the console ([`BuildError`]), and serving a
//! page ([`PageError`], rendered in one place, `layers::render_errors`, in
//! the console's look).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("admin console templates: {0}")]
    Templates(String),
    #[error("admin console HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("admin console: {0} is not an IANA time zone such as Europe/Paris")]
    TimeZone(String),
}

pub(crate) type PageResult = Result<Response, PageError>;

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum PageError {
    #[error("the form is out of date")]
    Csrf,
    /// The session is gone or its token no longer works: sign in again.
    #[error("sign in again")]
    SignIn,
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The admin API refused the request (400, 409): its message says why.
    #[error("refused: {0}")]
    Refused(String),
    /// The provider did not answer as it should.
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl PageError {
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// What the error page shows.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ErrorView {
    #[serde(skip)]
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    pub sign_in: bool,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message, sign_in) = match self {
            Self::SignIn => return (StatusCode::SEE_OTHER, SignInAgain).into_response(),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "The form is out of date",
                "This form was opened in another session. Go back, reload the page and try again."
                    .to_owned(),
                false,
            ),
            Self::SignInFailed(m) => (StatusCode::BAD_REQUEST, "Sign-in failed", m, true),
            Self::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!(
                    "The identity provider refused: {m}. Only administrators can use the console."
                ),
                true,
            ),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", capitalised(&m), false),
            Self::Refused(m) => (StatusCode::BAD_REQUEST, "Refused", capitalised(&m), false),
            Self::Upstream(m) => {
                tracing::error!(error = %m, "the identity provider did not answer as expected");
                (
                    StatusCode::BAD_GATEWAY,
                    "The identity provider did not answer",
                    "The console could not complete this with the identity provider. Try again; if it persists, the server log says why.".to_owned(),
                    false,
                )
            }
            Self::Internal(m) => {
                tracing::error!(error = %m, "admin console error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The console could not show this page. The server log says why.".to_owned(),
                    false,
                )
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorView {
            status,
            title,
            message,
            sign_in,
        });
        response
    }
}

pub(crate) fn capitalised(m: &str) -> String {
    let mut chars = m.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Marks a response as "sign in again" for `layers::render_errors`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignInAgain;

impl IntoResponse for SignInAgain {
    fn into_response(self) -> Response {
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.extensions_mut().insert(self);
        r
    }
}
