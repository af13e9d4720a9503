//! `/account/mfa`: turning two-step sign-in on and off, new recovery codes.
//! Each change needs a recent sign-in (see `reauth`), and every code typed
//! here is counted against the account's allowance before it is checked.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::authenticator::{
    Checked, Confirmed, active_secret, check_code, confirm_enrolment, enrol_page, enrolment_secret,
    unconfirmed_secret,
};
use super::notices::{self, Notice};
use super::totp;
use crate::credentials::guesses::{CurrentPassword, check_current_password, code_try_allowed};
use crate::domain::AuditKind;
use crate::store::User;
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::CurrentUser;
use crate::web::ui::{FlashKind, Page, Ui};
use crate::web::{AppError, AppState, audit, paths};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ThemeQuery {
    client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MfaForm {
    code: String,
    password: String,
    csrf_token: String,
    client_id: String,
}

/// The status page, as it stands now.
async fn status_page(state: &AppState, user: &User) -> Result<Page, AppError> {
    let credential = state.store.totp_credential(&user.id).await?;
    let enabled_on = credential
        .as_ref()
        .and_then(|c| c.confirmed_at)
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[day padding:none] [month repr:long] [year]"
            ))
            .ok()
        })
        .unwrap_or_default();
    let enabled = credential.is_some_and(|c| c.is_active());
    let remaining = if enabled {
        state.store.recovery_codes_remaining(&user.id).await?
    } else {
        0
    };
    Ok(Page::new("mfa.html", "Two-step sign-in")
        .with("mfa_enabled", &enabled)
        .with("recovery_remaining", &remaining)
        .with("enabled_on", &enabled_on))
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ThemeQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(status_page(&state, &user).await?))
}

fn setup(state: &AppState, user: &User, secret: &str) -> Result<Page, AppError> {
    enrol_page(
        state,
        user,
        secret,
        paths::ACCOUNT_MFA_SETUP,
        false,
        paths::ACCOUNT_MFA,
    )
}

pub async fn setup_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ThemeQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    if let Some(confirm) = super::reauth::required(
        &state,
        &current,
        paths::ACCOUNT_MFA_SETUP,
        q.client_id.as_deref(),
    ) {
        return Ok(confirm);
    }
    let user = current.user.clone();
    let Some(secret) = enrolment_secret(&state, &user).await? else {
        return Ok(Redirect::to(paths::ACCOUNT_MFA).into_response());
    };
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(setup(&state, &user, &secret)?))
}

pub async fn setup_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<MfaForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let user = current.user.clone();
    let confirm = super::reauth::required(
        &state,
        &current,
        paths::ACCOUNT_MFA_SETUP,
        Some(&f.client_id),
    );
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    if let Some(confirm) = confirm {
        return Ok(confirm);
    }
    let Some(secret) = unconfirmed_secret(&state, &user).await? else {
        // Already on (another tab), or never started: the status page says which.
        return Ok(Redirect::to(paths::ACCOUNT_MFA).into_response());
    };
    let codes =
        match confirm_enrolment(&state, &ui, &meta, &user, &secret, &f.code, "account").await? {
            Confirmed::On(codes) => codes,
            Confirmed::Refused(failed) => {
                let page = setup(&state, &user, &secret)?
                    .field_error("code", failed.message())
                    .invalid();
                return Ok(ui.render(page));
            }
            Confirmed::Gone => return Ok(Redirect::to(paths::ACCOUNT_MFA).into_response()),
        };
    Ok(ui.render(codes_page(codes, true)))
}

/// What turning off and new recovery codes start with: the page, a valid
/// form, a recent sign-in (else "confirm it's you"), and TOTP being on (else
/// back to the status page).
async fn while_on(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    current: CurrentUser,
    f: &MfaForm,
) -> Result<Result<(Ui, User, String), Response>, AppError> {
    let user = current.user.clone();
    let confirm = super::reauth::required(state, &current, paths::ACCOUNT_MFA, Some(&f.client_id));
    let ui = Ui::new(state, jar, headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(Err(ui.csrf_failure()));
    }
    // A stolen session alone must not change how the account signs in.
    if let Some(confirm) = confirm {
        return Ok(Err(confirm));
    }
    match active_secret(state, &user).await? {
        Some(secret) => Ok(Ok((ui, user, secret))),
        None => Ok(Err(Redirect::to(paths::ACCOUNT_MFA).into_response())),
    }
}

fn codes_page(codes: Vec<String>, first: bool) -> Page {
    Page::new("mfa_recovery_codes.html", "Your recovery codes")
        .with("codes", &codes)
        .with("continue_url", paths::ACCOUNT_MFA)
        .with("first", &first)
}

pub async fn disable(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<MfaForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let (ui, user, secret) = match while_on(&state, jar, &headers, current, &f).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    let password = check_current_password(&state, &user, &f.password).await?;
    let password_ok = password == CurrentPassword::Right;
    // The code is only spent (and counted) when the password was right.
    let checked = if !password_ok {
        Checked::Wrong
    } else if !code_try_allowed(&state, &user).await? {
        Checked::Limited
    } else {
        check_code(&state, &user, &secret, &f.code, true).await?
    };
    if !password_ok || !checked.passed() {
        let mut page = status_page(&state, &user)
            .await?
            .value("form", "disable")
            .invalid();
        if let Some(message) = password.message() {
            page = page.field_error("password", message);
        } else {
            page = page.field_error("code", checked.message());
        }
        audit::record(
            &state,
            &meta,
            AuditKind::MfaDisableFailed,
            Some(&user.id),
            None,
            json!({ "reason": if password_ok { checked.reason() } else { "password" } }),
        )
        .await;
        return Ok(ui.render(page));
    }
    state.store.delete_totp(&user.id).await?;
    audit::record(
        &state,
        &meta,
        AuditKind::MfaDisabled,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    notices::send(&state, &ui, &user, Notice::Disabled).await;
    let page = status_page(&state, &user).await?.flash(
        FlashKind::Success,
        "Two-step sign-in is off. You now sign in with your password only.",
    );
    Ok(ui.render(page))
}

pub async fn regenerate(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<MfaForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let (ui, user, secret) = match while_on(&state, jar, &headers, current, &f).await? {
        Ok(found) => found,
        Err(response) => return Ok(response),
    };
    // A code from the app: a recovery code cannot mint new ones. Counted
    // before it is checked: a stolen session must not try them all.
    let checked = if code_try_allowed(&state, &user).await? {
        check_code(&state, &user, &secret, &f.code, false).await?
    } else {
        Checked::Limited
    };
    if !checked.passed() {
        audit::record(
            &state,
            &meta,
            AuditKind::MfaRecoveryCodesFailed,
            Some(&user.id),
            None,
            json!({ "reason": checked.reason() }),
        )
        .await;
        let page = status_page(&state, &user)
            .await?
            .value("form", "regenerate")
            .field_error("code", checked.message())
            .invalid();
        return Ok(ui.render(page));
    }
    let (codes, hashes) = totp::new_recovery_codes();
    state
        .store
        .replace_recovery_codes(&user.id, &hashes, state.clock.now())
        .await?;
    audit::record(
        &state,
        &meta,
        AuditKind::MfaRecoveryCodesRegenerated,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    notices::send(&state, &ui, &user, Notice::RecoveryCodesRegenerated).await;
    Ok(ui.render(codes_page(codes, false)))
}
