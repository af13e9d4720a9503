//! Pieces shared by the account forms.

use axum::Form;
use axum::extract::rejection::FormRejection;
use serde::Deserialize;

use super::captcha;
use crate::web::ui::Page;
use crate::web::{AppError, AppState};

/// Query parameters every flow page accepts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FlowQuery {
    pub client_id: Option<String>,
    pub login_hint: Option<String>,
    /// A pending authorization request (see `oidc::authorize`).
    pub req: Option<String>,
}

/// The query of a link mailed to someone (verification, reset, change of
/// address): its token, and the portal it was sent from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkQuery {
    pub token: String,
    pub client_id: Option<String>,
}

/// The form, or an empty one when the body could not be read: an empty form
/// fails its CSRF check and gets the "form expired" page, never a bare 400.
pub fn form<T: Default>(body: Result<Form<T>, FormRejection>) -> T {
    body.map(|Form(f)| f).unwrap_or_default()
}

/// Whether the proof-of-work captcha guards a door (sign-in or
/// forgot-password; `wants` reads the theme's switch for it). Never chosen by
/// the request: a pending flow's client (the server's record of the flow)
/// decides; without one, any registered portal whose theme asks for it makes
/// the shared door ask too, since the accounts behind every door are the same.
pub async fn captcha_required(
    state: &AppState,
    flow_theme: Option<&crate::web::theme::Theme>,
    wants: fn(&crate::web::theme::ThemeMeta) -> bool,
) -> Result<bool, AppError> {
    if let Some(theme) = flow_theme {
        return Ok(wants(&theme.meta));
    }
    let clients = state.store.list_clients().await?;
    Ok(clients
        .iter()
        .any(|c| wants(&state.themes.get(c.theme.as_deref()).meta))
        || wants(&state.themes.get(None).meta))
}

/// Adds a fresh captcha challenge to the page when `on`.
pub async fn render_captcha(state: &AppState, on: bool, page: Page) -> Result<Page, AppError> {
    if !on {
        return Ok(page);
    }
    let challenge = captcha::issue(&state.ephemeral, &state.config.captcha).await?;
    Ok(page.with("captcha", &challenge))
}

pub fn captcha_message(e: &captcha::CaptchaError) -> &'static str {
    match e {
        captcha::CaptchaError::Missing => {
            "Please wait for the automatic robot check to finish (it needs JavaScript), then submit again."
        }
        _ => "The robot check did not pass or has expired. Please try again.",
    }
}

/// Checks a new password twice typed against the policy; one message per broken rule.
pub fn new_password_errors(
    state: &AppState,
    password: &str,
    confirm: &str,
    personal: &[&str],
) -> (Vec<String>, Vec<String>) {
    let mut errors = state.policy.check(password, personal);
    if password.is_empty() {
        errors = vec!["Enter a new password.".into()];
    }
    let confirm_errors = if password != confirm {
        vec!["The two passwords do not match.".into()]
    } else {
        Vec::new()
    };
    (errors, confirm_errors)
}
