//! Calls to the admin API with the signed-in administrator's access token.
//! Its answers are JSON; its refusals are `{"error", "message"}` with a
//! status that tells the console what to do.

use axum::http::Method;
use client_addr::{BROWSER_AGENT, BROWSER_IP};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::console::Console;
use crate::error::PageError;
use crate::signed::Signed;

/// Why a call did not do what was asked.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 400, 404, 409: the request was refused; the message is for the administrator.
    Refused { status: u16, message: String },
    /// Everything else: 401/403 (sign in again, or not an administrator),
    /// 5xx, no answer.
    Page(PageError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Refused {
                status: 404,
                message,
            } => PageError::NotFound(message),
            ApiError::Refused { message, .. } => PageError::Refused(message),
            ApiError::Page(p) => p,
        }
    }
}

impl Console {
    pub(crate) async fn api_get<T: DeserializeOwned>(
        &self,
        who: &Signed,
        path_and_query: &str,
    ) -> Result<T, ApiError> {
        let value = self.api(who, Method::GET, path_and_query, None).await?;
        decode(path_and_query, value)
    }

    /// A call that changes something; the answer's body (`null` for 204).
    pub(crate) async fn api_send(
        &self,
        who: &Signed,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.api(who, method, path, body).await
    }

    async fn api(
        &self,
        who: &Signed,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let url = self.config().api_url(path);
        let mut request = self.0.http.request(method, &url).bearer_auth(who.token());
        // The admin API records these in its audit trail instead of the
        // console's own address (it believes them from the console's tokens only).
        if let Some(ip) = who.browser.ip {
            request = request.header(BROWSER_IP, ip.to_string());
        }
        if let Some(agent) = &who.browser.user_agent {
            request = request.header(BROWSER_AGENT, agent);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| ApiError::Page(PageError::Upstream(format!("admin API {path}: {e}"))))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ApiError::Page(PageError::Upstream(format!("admin API {path}: {e}"))))?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let message = || {
            crate::error::capitalised(
                value
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("the request was refused"),
            )
        };
        match status {
            200..=299 => Ok(value),
            401 => Err(ApiError::Page(PageError::SignIn)),
            403 => Err(ApiError::Page(PageError::Forbidden(message()))),
            400 | 404 | 409 | 422 => Err(ApiError::Refused {
                status,
                message: message(),
            }),
            _ => Err(ApiError::Page(PageError::Upstream(format!(
                "admin API {path} answered {status}"
            )))),
        }
    }
}

fn decode<T: DeserializeOwned>(path: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| {
        ApiError::Page(PageError::Upstream(format!(
            "admin API {path}: unexpected answer: {e}"
        )))
    })
}

/// `a b`, `x/y` → `a%20b`, `x%2Fy`: safe as one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    // Form encoding writes a space as `+`, which a path would keep as a plus.
    crate::session::urlencode(s).replace('+', "%20")
}
