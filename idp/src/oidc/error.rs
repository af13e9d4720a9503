//! OAuth 2.0 errors as the wire knows them (RFC 6749 section 5.2, RFC 6750
//! section 3.1): a code, a description, the right status and headers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidToken,
    UnsupportedTokenType,
    ServerError,
    TemporarilyUnavailable,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidToken => "invalid_token",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
}

pub fn oauth(code: OAuthCode, description: impl Into<String>) -> OAuthError {
    OAuthError {
        code,
        description: description.into(),
    }
}

/// A parameter the request must carry: its value, or `invalid_request`
/// naming it.
pub fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .as_deref()
        .ok_or_else(|| oauth(OAuthCode::InvalidRequest, format!("{name} is required")))
}

impl From<crate::web::AppError> for OAuthError {
    fn from(e: crate::web::AppError) -> Self {
        let _span = crate::web::plumbing::request_span().entered();
        tracing::error!(error = %e, "token endpoint failure");
        let code = match &e {
            crate::web::AppError::Store(crate::store::Error::Unavailable(_))
            | crate::web::AppError::Ephemeral(crate::ephemeral::Error::Unavailable(_)) => {
                OAuthCode::TemporarilyUnavailable
            }
            _ => OAuthCode::ServerError,
        };
        oauth(code, "the server could not complete the request")
    }
}

impl From<crate::store::Error> for OAuthError {
    fn from(e: crate::store::Error) -> Self {
        crate::web::AppError::from(e).into()
    }
}

impl From<crate::ephemeral::Error> for OAuthError {
    fn from(e: crate::ephemeral::Error) -> Self {
        crate::web::AppError::from(e).into()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self.code {
            OAuthCode::InvalidClient | OAuthCode::InvalidToken => StatusCode::UNAUTHORIZED,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = (
            status,
            Json(json!({ "error": self.code.as_str(), "error_description": self.description })),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        match self.code {
            OAuthCode::InvalidClient => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"idp\""),
                );
            }
            OAuthCode::InvalidToken => {
                let value = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    self.description.replace(['"', '\\'], "'")
                );
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        response
    }
}
