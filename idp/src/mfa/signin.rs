//! The second step of sign-in: `/login/otp` (a code or a recovery code) and
//! `/login/mfa-setup` (setting up an authenticator when one is required).
//! Both work only in the browser that passed the first step (the pending
//! cookie); a session starts only when they succeed.

use axum::Form;
use axum::extract::State;
use axum::extract::rejection::FormRejection;
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
use crate::credentials::lockout::{self, Gate};
use crate::domain::AuditKind;
use crate::signin::pending::{self, Pending};
use crate::signin::{expired::page as expired, route};
use crate::store::User;
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session;
use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState, audit, paths};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CodeForm {
    code: String,
    csrf_token: String,
}

/// A page for the pending sign-in: its client's theme, its request carried.
async fn ui_for(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    p: &Pending,
) -> Result<Ui, AppError> {
    let mut ui = Ui::new(state, jar, headers, p.client_id.as_deref(), None).await?;
    ui.set_request(p.req.clone());
    if let Some(to) = &p.return_to {
        ui.allow_form_to(to);
    }
    Ok(ui)
}

/// The second step's page: the code form when the account has an
/// authenticator app, the passkey button (the page's script) when it has
/// passkeys and the server offers them; either one passes.
async fn otp_page(state: &AppState, p: &Pending) -> Result<Page, AppError> {
    let app = crate::signin::authenticator_app(state, &p.user_id).await?;
    let passkeys = crate::signin::has_passkeys(state, &p.user_id).await?;
    Ok(Page::new("login_otp.html", "Two-step sign-in")
        .with("email", &p.email)
        .with("otp_offered", &app)
        .with("passkey_step", &passkeys))
}

/// The pending sign-in's user, if still allowed to sign in.
async fn pending_user(state: &AppState, p: &Pending) -> Result<Option<User>, AppError> {
    let user = state.store.user_by_id(&p.user_id).await?;
    Ok(user.filter(|u| !u.disabled))
}

/// Ends the pending sign-in and shows the locked page (audited).
async fn refuse_locked(
    state: &AppState,
    mut ui: Ui,
    meta: &ClientMeta,
    pid: &str,
    user: &User,
    lock: lockout::Lock,
) -> Result<Response, AppError> {
    let jar = pending::finish(state, ui.take_jar(), pid).await?;
    ui.set_jar(jar);
    if lock.newly {
        crate::mail::notices::account_locked(state, &ui, meta, &user.email, Some(user), lock.until)
            .await?;
    }
    audit::record(
        state,
        meta,
        AuditKind::MfaRefusedLocked,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    Ok(lockout::locked_page(state, ui, lock.until))
}

/// Counts a code of the second step against the address and the IP before
/// it is checked: `Err(page)` when the lockout refuses it unchecked.
async fn count_attempt(
    state: &AppState,
    ui: Ui,
    meta: &ClientMeta,
    pid: &str,
    user: &User,
) -> Result<Result<(Ui, lockout::Attempt), Response>, AppError> {
    match lockout::attempt(state, &user.email, Some(user), meta.ip).await? {
        Gate::Open(attempt) => Ok(Ok((ui, attempt))),
        Gate::Locked(lock) => Ok(Err(refuse_locked(state, ui, meta, pid, user, lock).await?)),
        Gate::IpThrottled => Ok(Err(lockout::throttled_page(ui))),
    }
}

/// Both steps passed: the pending state ends, the session starts, and the
/// browser goes back to the relying party (or to the account page).
async fn complete(
    state: &AppState,
    ui: &mut Ui,
    meta: &ClientMeta,
    pid: &str,
    user: &User,
) -> Result<String, AppError> {
    let jar = pending::finish(state, ui.take_jar(), pid).await?;
    let amr = vec!["pwd".to_owned(), "otp".to_owned()];
    let origin = session::Origin {
        portal: ui.client_id(),
        // The pending step carries a request only when its sign-in
        // continued a flow bound to this browser.
        from_flow: ui.request().is_some(),
        request: ui.request(),
    };
    let jar = session::start(state, jar, &user.id, amr.clone(), meta, origin).await?;
    ui.set_jar(jar);
    audit::record(
        state,
        meta,
        AuditKind::LoginSucceeded,
        Some(&user.id),
        ui.client.as_ref().map(|c| &c.id),
        json!({ "amr": amr }),
    )
    .await;
    Ok(route::after_step(ui.request(), &ui.flow_query()))
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some((_, p)) = pending::load(&state, &jar).await? else {
        return expired(&state, jar, &headers).await;
    };
    if p.enrol {
        return Ok(Redirect::to(paths::LOGIN_MFA_SETUP).into_response());
    }
    let ui = ui_for(&state, jar, &headers, &p).await?;
    Ok(ui.render(otp_page(&state, &p).await?))
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let Some((pid, mut p)) = pending::load(&state, &jar).await? else {
        return expired(&state, jar, &headers).await;
    };
    let ui = ui_for(&state, jar, &headers, &p).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    if p.enrol {
        return Ok(Redirect::to(paths::LOGIN_MFA_SETUP).into_response());
    }
    let Some(user) = pending_user(&state, &p).await? else {
        return expired(&state, ui.jar().clone(), &headers).await;
    };
    // Turned off meanwhile (an administrator's reset): start again.
    let Some(secret) = active_secret(&state, &user).await? else {
        return expired(&state, ui.jar().clone(), &headers).await;
    };
    let (mut ui, attempt) = match count_attempt(&state, ui, &meta, &pid, &user).await? {
        Ok(counted) => counted,
        Err(page) => return Ok(page),
    };
    let checked = check_code(&state, &user, &secret, &f.code, true).await?;
    if !checked.passed() {
        let locked = lockout::failed(&state, attempt, &user.email, Some(&user)).await?;
        audit::record(
            &state,
            &meta,
            AuditKind::MfaFailed,
            Some(&user.id),
            ui.client.as_ref().map(|c| &c.id),
            json!({ "reason": checked.reason() }),
        )
        .await;
        if !p.failure_mailed {
            notices::send(&state, &ui, &user, Notice::Failed).await;
            p.failure_mailed = true;
            pending::save(&state, &pid, &p).await?;
        }
        if let Some(lock) = locked {
            return refuse_locked(&state, ui, &meta, &pid, &user, lock).await;
        }
        return Ok(ui.render(
            otp_page(&state, &p)
                .await?
                .field_error("code", checked.message())
                .invalid(),
        ));
    }
    // Right, but a parallel wrong code locked the address meanwhile.
    if let Some(until) = lockout::succeeded(&state, attempt).await? {
        let lock = lockout::Lock {
            until,
            newly: false,
        };
        return refuse_locked(&state, ui, &meta, &pid, &user, lock).await;
    }
    let target = complete(&state, &mut ui, &meta, &pid, &user).await?;
    match checked {
        Checked::Recovery { remaining } => {
            audit::record(
                &state,
                &meta,
                AuditKind::MfaRecoveryCodeUsed,
                Some(&user.id),
                ui.client.as_ref().map(|c| &c.id),
                json!({ "remaining": remaining }),
            )
            .await;
            notices::send(&state, &ui, &user, Notice::RecoveryCodeUsed { remaining }).await;
            Ok(ui.render(
                Page::new("login_recovery_used.html", "Recovery code used")
                    .with("remaining", &remaining)
                    .with("continue_url", &target),
            ))
        }
        _ => {
            let jar = ui.take_jar();
            Ok((jar, Redirect::to(&target)).into_response())
        }
    }
}

pub async fn setup_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some((pid, mut p)) = pending::load(&state, &jar).await? else {
        return expired(&state, jar, &headers).await;
    };
    if !p.enrol {
        return Ok(Redirect::to(paths::LOGIN_OTP).into_response());
    }
    let Some(user) = pending_user(&state, &p).await? else {
        return expired(&state, jar, &headers).await;
    };
    let Some(secret) = enrolment_secret(&state, &user).await? else {
        // Set up meanwhile (another tab): a code is all that is left.
        p.enrol = false;
        pending::save(&state, &pid, &p).await?;
        return Ok(Redirect::to(paths::LOGIN_OTP).into_response());
    };
    let ui = ui_for(&state, jar, &headers, &p).await?;
    let page = enrol_page(
        &state,
        &user,
        &secret,
        paths::LOGIN_MFA_SETUP,
        true,
        paths::LOGIN,
    )?;
    Ok(ui.render(page))
}

pub async fn setup_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<CodeForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let Some((pid, p)) = pending::load(&state, &jar).await? else {
        return expired(&state, jar, &headers).await;
    };
    let ui = ui_for(&state, jar, &headers, &p).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    if !p.enrol {
        return Ok(Redirect::to(paths::LOGIN_OTP).into_response());
    }
    let Some(user) = pending_user(&state, &p).await? else {
        return expired(&state, ui.jar().clone(), &headers).await;
    };
    if let Some(until) = lockout::current_lock(&state, &user.email, Some(&user)).await? {
        let lock = lockout::Lock {
            until,
            newly: false,
        };
        return refuse_locked(&state, ui, &meta, &pid, &user, lock).await;
    }
    let mut ui = ui;
    let Some(secret) = unconfirmed_secret(&state, &user).await? else {
        return Ok(Redirect::to(paths::LOGIN_MFA_SETUP).into_response());
    };
    // A wrong code here guesses nothing of the account (the secret is new
    // and shown on the page), so it does not count toward the lockout; it
    // has the per-account allowance of codes and is audited.
    let codes =
        match confirm_enrolment(&state, &ui, &meta, &user, &secret, &f.code, "sign-in").await? {
            Confirmed::On(codes) => codes,
            Confirmed::Refused(failed) => {
                let page = enrol_page(
                    &state,
                    &user,
                    &secret,
                    paths::LOGIN_MFA_SETUP,
                    true,
                    paths::LOGIN,
                )?
                .field_error("code", failed.message())
                .invalid();
                return Ok(ui.render(page));
            }
            Confirmed::Gone => return Ok(Redirect::to(paths::LOGIN_MFA_SETUP).into_response()),
        };
    let target = complete(&state, &mut ui, &meta, &pid, &user).await?;
    Ok(ui.render(
        Page::new("mfa_recovery_codes.html", "Your recovery codes")
            .with("codes", &codes)
            .with("continue_url", &target)
            .with("first", &true),
    ))
}
