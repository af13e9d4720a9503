//! `/account/reauth`: "confirm it's you". Changing how an account signs in
//! (two-step sign-in on or off, new recovery codes) needs a sign-in at most
//! `account.reauth_max_age_minutes` old, so a stolen session alone cannot
//! enrol its own authenticator and lock the owner out. An older session is
//! sent here: any factor the account has (its password, or a code from its
//! authenticator app for accounts without one) moves the session's
//! `auth_time` to now, and the person goes back where they were, in the
//! portal's theme. Tries are counted before they are checked.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::authenticator::{Checked, active_secret, check_code};
use crate::credentials::guesses::{CurrentPassword, check_current_password, code_try_allowed};
use crate::domain::AuditKind;
use crate::store::User;
use crate::web::client_meta::ClientMeta;
use crate::web::session::{self, CurrentUser};
use crate::web::ui::{Page, Ui, urlencode};
use crate::web::{AppError, AppState, audit, paths};

/// Where to go once confirmed, when the request names nowhere usable.
const DEFAULT_RETURN: &str = paths::ACCOUNT_MFA;

/// Only the account's own pages: never another host or an arbitrary path
/// (the value comes from the request).
fn safe_return(to: Option<&str>) -> &str {
    match to {
        Some(to)
            if to.starts_with("/account/")
                && to.len() <= 64
                && !to.contains("//")
                && to
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-' || b == b'_') =>
        {
            to
        }
        _ => DEFAULT_RETURN,
    }
}

/// `Some(redirect to the confirmation)` when `current`'s sign-in is too old
/// to change how the account signs in; `return_to` is the page to come back
/// to, `client_id` the portal whose theme the pages wear.
pub fn required(
    state: &AppState,
    current: &CurrentUser,
    return_to: &str,
    client_id: Option<&str>,
) -> Option<Response> {
    if session::signed_in_recently(state, &current.session) {
        return None;
    }
    let mut to = format!(
        "{}?return_to={}",
        paths::ACCOUNT_REAUTH,
        urlencode(safe_return(Some(return_to)))
    );
    if let Some(id) = client_id.filter(|id| !id.is_empty()) {
        to.push_str(&format!("&client_id={}", urlencode(id)));
    }
    Some(Redirect::to(&to).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReauthQuery {
    return_to: Option<String>,
    client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReauthForm {
    password: String,
    code: String,
    return_to: String,
    csrf_token: String,
    client_id: String,
}

/// The form, for the factors this account has.
async fn reauth_page(state: &AppState, user: &User, return_to: &str) -> Result<Page, AppError> {
    let has_code = active_secret(state, user).await?.is_some();
    Ok(Page::new("reauth.html", "Confirm it's you")
        .with("has_password", &user.password_hash.is_some())
        .with("has_code", &has_code)
        .with("return_to", return_to))
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ReauthQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let user = current.user.clone();
    let return_to = safe_return(q.return_to.as_deref()).to_owned();
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(reauth_page(&state, &user, &return_to).await?))
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<ReauthForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: ReauthForm = body.map(|Form(f)| f).unwrap_or_default();
    let user = current.user.clone();
    let session_id = current.session_id.clone();
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let return_to = safe_return(Some(&f.return_to)).to_owned();
    let secret = active_secret(&state, &user).await?;
    // The password when one is typed and the account has one; else the code.
    let error: Option<(&str, &str)> = if !f.password.is_empty() && user.password_hash.is_some() {
        let checked = check_current_password(&state, &user, &f.password).await?;
        (checked != CurrentPassword::Right)
            .then(|| ("password", checked.message().unwrap_or("Wrong password.")))
    } else if let (Some(secret), false) = (secret.as_deref(), f.code.trim().is_empty()) {
        let checked = if code_try_allowed(&state, &user).await? {
            check_code(&state, &user, secret, &f.code, false).await?
        } else {
            Checked::Limited
        };
        (!checked.passed()).then(|| ("code", checked.message()))
    } else if user.password_hash.is_some() {
        Some(("password", "Enter your password."))
    } else {
        Some(("code", "Enter the code from your authenticator app."))
    };
    if let Some((field, message)) = error {
        audit::record(
            &state,
            &meta,
            AuditKind::ReauthFailed,
            Some(&user.id),
            None,
            json!({ "factor": field }),
        )
        .await;
        let page = reauth_page(&state, &user, &return_to)
            .await?
            .field_error(field, message)
            .status(StatusCode::UNPROCESSABLE_ENTITY);
        return Ok(ui.render(page));
    }
    if !session::reauthenticated(&state, &session_id).await? {
        return Ok(Redirect::to(paths::LOGIN).into_response());
    }
    audit::record(
        &state,
        &meta,
        AuditKind::ReauthSucceeded,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    let to = format!("{return_to}{}", ui.flow_query());
    Ok(Redirect::to(&to).into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_return;

    #[test]
    fn only_the_accounts_own_pages_are_returned_to() {
        assert_eq!(
            safe_return(Some("/account/mfa/setup")),
            "/account/mfa/setup"
        );
        for bad in [
            "https://evil.example/account/",
            "//evil.example/account/mfa",
            "/account//evil",
            "/account/mfa?x=1",
            "/login",
            "",
        ] {
            assert_eq!(safe_return(Some(bad)), "/account/mfa", "{bad}");
        }
        assert_eq!(safe_return(None), "/account/mfa");
    }
}
