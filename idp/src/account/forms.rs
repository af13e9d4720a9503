//! Pieces shared by the account forms.

use serde::Deserialize;

use crate::credentials::captcha;
use crate::credentials::policy::PasswordPolicy;
use crate::store::Client;
use crate::web::session::CurrentUser;
use crate::web::theme::Theme;
use crate::web::ui::Page;
use crate::web::{AppError, AppState};

/// Query parameters every flow page accepts.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FlowQuery {
    pub client_id: Option<String>,
    pub login_hint: Option<String>,
    /// A pending authorization request (see `signin::request`).
    pub req: Option<String>,
}

/// The query of a link mailed to someone (verification, reset, change of
/// address): its token, and the portal it was sent from.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LinkQuery {
    pub token: String,
    pub client_id: Option<String>,
    /// The pending authorization request the link was asked for in: it
    /// counts only in the browser that started it (see `signin::request`).
    pub req: Option<String>,
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

/// The rules of the portal a page belongs to: its password policy and how
/// long its reset links live.
#[derive(Debug, Clone)]
pub struct PortalRules {
    pub policy: PasswordPolicy,
    pub reset_link_ttl_minutes: u64,
}

/// The one place that decides which portal's rules apply (policy, strength
/// minimum, reset-link lifetime). Never chosen by the request: a link's or
/// form's `client_id` picks only the look. In order:
/// - `flow_client`: the client of a pending flow, as the server recorded it
///   (a pending authorization request bound to this browser, or the portal
///   stored with a reset token);
/// - the portal the session began from ([`session_portal`]);
/// - otherwise nobody knows the portal: the password policy is the
///   strictest of the deployment's and of every registered portal's, rule
///   by rule (the accounts behind every door are the same, so a password set
///   here meets every portal's published rules), and the reset link lives
///   the deployment's `account.reset_link_ttl_minutes`.
pub async fn portal_rules(
    state: &AppState,
    flow_client: Option<&Client>,
    session: Option<&CurrentUser>,
) -> Result<PortalRules, AppError> {
    let deployment_ttl = state.config.account.reset_link_ttl_minutes;
    let portal = match flow_client {
        Some(client) => Some(client.clone()),
        None => session_portal(state, session).await?,
    };
    if let Some(client) = portal {
        let theme = state.themes.get(client.theme.as_deref());
        return Ok(PortalRules {
            policy: theme_policy(state, &theme),
            reset_link_ttl_minutes: theme.meta.reset_link_ttl_minutes.unwrap_or(deployment_ttl),
        });
    }
    let mut strictest = state.policy.config().clone();
    let clients = state.store.list_clients().await?;
    let themes = clients
        .iter()
        .map(|c| state.themes.get(c.theme.as_deref()))
        .chain(std::iter::once(state.themes.get(None)));
    for theme in themes {
        if let Some(policy) = &theme.meta.password_policy {
            strictest = strictest.strictest(policy);
        }
    }
    Ok(PortalRules {
        policy: state.policy.with_config(strictest),
        reset_link_ttl_minutes: deployment_ttl,
    })
}

/// The portal the browser session began from (server-side: recorded in the
/// session when it started from a flow or a portal's sign-in page), if that
/// client still exists.
async fn session_portal(
    state: &AppState,
    session: Option<&CurrentUser>,
) -> Result<Option<Client>, AppError> {
    match session {
        Some(current) => crate::web::portal::session_rules_portal(state, &current.session).await,
        None => Ok(None),
    }
}

/// A theme's own policy, or the deployment's when it has none.
fn theme_policy(state: &AppState, theme: &Theme) -> PasswordPolicy {
    match &theme.meta.password_policy {
        Some(config) => state.policy.with_config(config.clone()),
        None => (*state.policy).clone(),
    }
}

/// The client of the pending authorization request `req`, when it is live
/// and was started in this browser: the server's record of the flow.
pub async fn pending_client(
    state: &AppState,
    jar: &axum_extra::extract::cookie::CookieJar,
    req: Option<&str>,
) -> Result<Option<(String, Client)>, AppError> {
    Ok(crate::signin::request::load_opt(state, jar, req)
        .await?
        .map(|p| (p.id, p.client)))
}

/// Checks a new password twice typed against `policy`; one message per broken rule.
pub fn new_password_errors(
    policy: &PasswordPolicy,
    password: &str,
    confirm: &str,
    personal: &[&str],
) -> (Vec<String>, Vec<String>) {
    let mut errors = policy.check(password, personal);
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

/// Puts the typed new password back into a re-rendered form when the
/// password itself was fine (another field had the error), so nobody types
/// it twice again; the confirmation too when it matched. Only into the
/// page's HTML (`values`), which is never logged nor part of a URL.
pub fn keep_new_password(
    page: Page,
    password: &str,
    confirm: &str,
    password_ok: bool,
    confirm_ok: bool,
) -> Page {
    if !password_ok || password.is_empty() {
        return page;
    }
    let page = page.value("password", password);
    if confirm_ok {
        page.value("password_confirm", confirm)
    } else {
        page
    }
}
