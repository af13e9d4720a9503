//! Errors of the admin API: JSON `{"error", "message"}` with the right
//! status. Store and ephemeral failures become an opaque 500/503 (their text
//! goes to the log only, inside the request span that carries the id).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::web::AppError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(&'static str),
    /// The request is understood but the resource's state refuses it.
    #[error("{0}")]
    Conflict(String),
    /// The body is over a limit; the message says which.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<crate::ephemeral::Error> for ApiError {
    fn from(e: crate::ephemeral::Error) -> Self {
        Self::Internal(e.into())
    }
}

pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(without_type_names(message.into()))
}

/// serde's messages name the Rust type a body is read into ("expected
/// struct NewUserBody"); an answer says what is expected instead.
fn without_type_names(message: String) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some(at) = rest.find("struct ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "struct ".len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 {
            out.push_str("struct ");
        } else {
            out.push_str("a JSON object");
        }
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable code: `bad_request`, `not_found`, `conflict`, `invalid_token`,
    /// `insufficient_scope`, `insufficient_user_authentication`,
    /// `server_error`, `temporarily_unavailable`, `too_large`.
    pub error: &'static str,
    /// For people: what went wrong and, where it helps, what to do.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(
            self,
            Self::Internal(AppError::Hash(crate::credentials::HashError::Busy))
        ) {
            // The password hashing queue is full: nothing was done.
            let body = ErrorBody {
                error: "temporarily_unavailable",
                message:
                    "too many passwords are being hashed right now; try again in a few seconds"
                        .to_owned(),
            };
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "5")],
                Json(body),
            )
                .into_response();
            response.extensions_mut().insert(crate::web::Busy);
            return response;
        }
        let (status, error, message) = match self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.to_owned()),
            Self::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            Self::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", m),
            Self::Internal(e) => {
                let _span = crate::web::plumbing::request_span().entered();
                tracing::error!(error = %e, "admin API request failed");
                let unavailable = matches!(
                    e,
                    AppError::Store(crate::store::Error::Unavailable(_))
                        | AppError::Ephemeral(crate::ephemeral::Error::Unavailable(_))
                );
                if unavailable {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "temporarily_unavailable",
                        "the service is temporarily unavailable; try again shortly".to_owned(),
                    )
                } else {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "something went wrong on our side; quote the x-request-id header if it persists"
                            .to_owned(),
                    )
                }
            }
        };
        (status, Json(ErrorBody { error, message })).into_response()
    }
}

/// A resource id from the path. A malformed one (bad percent-encoding) is a
/// JSON 400 like every other bad input, not axum's plain-text answer.
#[derive(Debug)]
pub struct Id(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(id)| Id(id))
            .map_err(|e| bad_request(e.body_text()))
    }
}

/// A sub-resource of a resource: `/{id}/…/{sub_id}` from the path, with the
/// same JSON 400 as [`Id`] for a malformed one.
#[derive(Debug)]
pub struct SubId(pub String, pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SubId {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path((id, sub))| SubId(id, sub))
            .map_err(|e| bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::without_type_names;

    #[test]
    fn answers_name_no_rust_type() {
        assert_eq!(
            without_type_names("invalid type: integer `5`, expected struct ImportBody".into()),
            "invalid type: integer `5`, expected a JSON object"
        );
        assert_eq!(
            without_type_names("missing field `email`".into()),
            "missing field `email`"
        );
    }
}
