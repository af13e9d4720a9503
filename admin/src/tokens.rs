//! The console's calls to the provider's token endpoint: redeeming a code,
//! renewing the access token.

use serde::Deserialize;
use serde_json::Value;

use crate::console::Console;
use crate::error::PageError;
use crate::session::{self, SessionData};

#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    pub(crate) access_token: String,
    pub(crate) expires_in: Option<i64>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) id_token: Option<String>,
}

/// Calls the token endpoint as the console's client (`client_secret_basic`).
/// `None`: the grant was refused (`invalid_grant`): sign in again.
pub(crate) async fn token_call(
    console: &Console,
    form: &[(&str, &str)],
) -> Result<Option<TokenAnswer>, PageError> {
    let config = console.config();
    let response = console
        .0
        .http
        .post(config.endpoints.token.clone())
        // RFC 6749 2.3.1: both form-encoded before the Basic encoding.
        .basic_auth(
            session::urlencode(&config.client_id),
            Some(session::urlencode(&config.client_secret)),
        )
        .form(form)
        .send()
        .await
        .map_err(|e| PageError::Upstream(format!("token endpoint: {e}")))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| PageError::Upstream(format!("token endpoint: {e}")))?;
    if status.is_success() {
        return serde_json::from_value(body)
            .map(Some)
            .map_err(|e| PageError::Upstream(format!("token endpoint: {e}")));
    }
    match body.get("error").and_then(Value::as_str) {
        Some("invalid_grant") => Ok(None),
        // The console's own credentials: a configuration problem, said plainly.
        Some("invalid_client") => Err(PageError::Upstream(
            "the provider refused the console's client credentials (client id or secret)".into(),
        )),
        other => Err(PageError::Upstream(format!(
            "token endpoint answered {status}: {}",
            other.unwrap_or("no error code")
        ))),
    }
}

/// Renews the access token with the refresh token. `false`: it cannot be
/// renewed (expired, revoked, sign-in too old): sign in again.
pub(crate) async fn refresh(console: &Console, data: &mut SessionData) -> Result<bool, PageError> {
    let Some(refresh_token) = data.refresh_token.clone() else {
        return Ok(false);
    };
    let Some(answer) = token_call(
        console,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await?
    else {
        return Ok(false);
    };
    data.access_expires_at = console.now() + answer.expires_in.unwrap_or(60);
    data.access_token = answer.access_token;
    if let Some(rotated) = answer.refresh_token {
        data.refresh_token = Some(rotated);
    }
    if let Some(id_token) = answer.id_token {
        data.id_token = id_token;
    }
    Ok(true)
}
