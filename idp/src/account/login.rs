//! `/login`, `/logout` and the account page: sign-in with email and password.
//! Unknown email and wrong password take the same path (a dummy hash is
//! verified) and give the same answer.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::forms::{FlowQuery, captcha_message, captcha_required, render_captcha};
use crate::credentials::captcha;
use crate::credentials::jit;
use crate::credentials::lockout::{self, Gate};
use crate::credentials::{HashError, Verification};
use crate::domain::{AuditKind, Email, PlainPassword};
use crate::signin::pending::Flow;
use crate::signin::{self, Next, Proof};
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::{self, CurrentUser, MaybeUser};
use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState, audit};

pub const BAD_CREDENTIALS: &str = "Incorrect email or password.";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
    client_id: String,
    captcha_challenge: String,
    captcha_nonce: String,
    req: String,
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    // Sent here by /authorize: the request names the client (theme) and may
    // hint the email; it counts only in the browser that started it.
    let pending = match q.req.as_deref() {
        Some(id) => signin::load(&state, &jar, id).await?,
        None => None,
    };
    let client_id = pending
        .as_ref()
        .map(|p| p.client.id.to_string())
        .or(q.client_id.clone());
    let mut ui = Ui::new(&state, jar, &headers, client_id.as_deref(), user).await?;
    let hint = pending.as_ref().and_then(|p| p.request.login_hint.clone());
    if let Some(p) = &pending {
        ui.allow_form_to(&p.request.redirect_uri);
    }
    let in_flow = pending.is_some();
    ui.set_request(pending.map(|p| p.id));
    let email = hint.or(q.login_hint.clone()).unwrap_or_default();
    login_form(
        &state,
        ui,
        in_flow,
        Page::new("login.html", "Sign in").value("email", email),
    )
    .await
}

/// Whether the sign-in form asks for the captcha: see [`captcha_required`].
async fn captcha_on(state: &AppState, ui: &Ui, in_flow: bool) -> Result<bool, AppError> {
    captcha_required(state, in_flow.then_some(&*ui.theme), |m| m.captcha_login).await
}

/// Renders the sign-in form, with a fresh captcha when the door asks for one.
async fn login_form(
    state: &AppState,
    ui: Ui,
    in_flow: bool,
    page: Page,
) -> Result<Response, AppError> {
    let on = captcha_on(state, &ui, in_flow).await?;
    let page = render_captcha(state, on, page).await?;
    Ok(ui.render(page))
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: LoginForm = form(body);
    let pending = signin::request::load_opt(&state, &jar, Some(&f.req)).await?;
    // The form's client_id chooses only the look; the pending request (the
    // server's record of the flow) chooses the rules.
    let client_id = pending
        .as_ref()
        .map(|p| p.client.id.to_string())
        .unwrap_or(f.client_id.clone());
    let mut ui = Ui::new(&state, jar, &headers, Some(&client_id), None).await?;
    if let Some(p) = &pending {
        ui.allow_form_to(&p.request.redirect_uri);
    }
    let in_flow = pending.is_some();
    ui.set_request(pending.as_ref().map(|p| p.id.clone()));
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let retry = |page: Page| page.value("email", f.email.trim()).invalid();
    if captcha_on(&state, &ui, in_flow).await?
        && let Err(e) =
            captcha::verify(&state.ephemeral, &f.captcha_challenge, &f.captcha_nonce).await
    {
        let page =
            retry(Page::new("login.html", "Sign in")).field_error("captcha", captcha_message(&e));
        return login_form(&state, ui, in_flow, page).await;
    }
    let email = match Email::parse(&f.email) {
        Ok(e) => e,
        Err(e) => {
            let page = retry(Page::new("login.html", "Sign in")).field_error("email", e.0);
            return login_form(&state, ui, in_flow, page).await;
        }
    };
    let Ok(password) = PlainPassword::parse(&f.password) else {
        let page = retry(Page::new("login.html", "Sign in"))
            .field_error("password", "Enter your password.");
        return login_form(&state, ui, in_flow, page).await;
    };
    let user = state.store.user_by_email(&email).await?;
    let attempt = match lockout::attempt(&state, &email, user.as_ref(), meta.ip).await? {
        Gate::Open(attempt) => attempt,
        Gate::Locked(lock) => {
            if lock.newly {
                crate::mail::notices::account_locked(
                    &state,
                    &ui,
                    &meta,
                    &email,
                    user.as_ref(),
                    lock.until,
                )
                .await?;
            }
            audit::record(
                &state,
                &meta,
                AuditKind::LoginRefusedLocked,
                user.as_ref().map(|u| &u.id),
                None,
                json!({}),
            )
            .await;
            return Ok(lockout::locked_page(&state, ui, lock.until));
        }
        Gate::IpThrottled => {
            audit::record(
                &state,
                &meta,
                AuditKind::LoginRefusedIpThrottled,
                None,
                None,
                json!({}),
            )
            .await;
            return Ok(lockout::throttled_page(ui));
        }
    };
    // No account here: a legacy portal's migration hook may vouch for the
    // password and the account be made now (docs/jit-migration.md).
    let user = match user {
        None => {
            let migrated = jit::migrate(
                &state,
                &meta,
                &email,
                &password,
                pending.as_ref().map(|p| &p.client),
            )
            .await;
            match migrated {
                Err(AppError::Hash(HashError::Busy)) => {
                    return refused_busy(&state, attempt, ui).await;
                }
                // Nothing said the password was wrong: the attempt goes back.
                Err(e) => {
                    lockout::release(&state, attempt).await?;
                    return Err(e);
                }
                Ok(user) => user,
            }
        }
        known => known,
    };
    let usable = user.as_ref().filter(|u| !u.disabled);
    let verification = match state
        .hasher
        .verify(&password, usable.and_then(|u| u.password_hash.as_deref()))
        .await
    {
        // Nothing was checked: not a failure, and nothing is recorded.
        Err(HashError::Busy) => return refused_busy(&state, attempt, ui).await,
        // The check itself failed (no memory for it, say): the password
        // was not found wrong, so the attempt is given back.
        Err(e) => {
            lockout::release(&state, attempt).await?;
            return Err(e.into());
        }
        Ok(verification) => verification,
    };
    let user = match (verification, usable) {
        (Verification::Match, Some(u)) => u.clone(),
        (Verification::MatchRehashed(hash), Some(u)) => {
            state
                .store
                .set_password_hash(&u.id, &hash, state.clock.now())
                .await?;
            u.clone()
        }
        _ => {
            let locked = lockout::failed(&state, attempt, &email, user.as_ref()).await?;
            audit::record(
                &state,
                &meta,
                AuditKind::LoginFailed,
                user.as_ref().map(|u| &u.id),
                None,
                json!({}),
            )
            .await;
            if let Some(lock) = locked {
                if lock.newly {
                    crate::mail::notices::account_locked(
                        &state,
                        &ui,
                        &meta,
                        &email,
                        user.as_ref(),
                        lock.until,
                    )
                    .await?;
                }
                return Ok(lockout::locked_page(&state, ui, lock.until));
            }
            // To every failure alike (docs/imported-signin.md): an imported
            // account without a password sets one by mail, and showing the
            // way to them alone would say they exist.
            let page = retry(Page::new("login.html", "Sign in"))
                .form_error(BAD_CREDENTIALS)
                .with("offer_set_password", &true);
            return login_form(&state, ui, in_flow, page).await;
        }
    };
    // Right, but a parallel attempt locked the address meanwhile: a burst
    // past the limit lets nobody in.
    if let Some(until) = lockout::succeeded(&state, attempt).await? {
        audit::record(
            &state,
            &meta,
            AuditKind::LoginRefusedLocked,
            Some(&user.id),
            None,
            json!({}),
        )
        .await;
        return Ok(lockout::locked_page(&state, ui, until));
    }
    // A second step may follow: its wrong codes count against the same
    // address, and nothing but the window's end forgets a failure.
    let next = signin::next(&state, pending.as_ref(), Proof::Password(&user)).await?;
    // Every other answer starts a password session, and the pipeline
    // decides the rest (consent, the answer to the client) with it.
    let second_step = match next {
        Next::Code | Next::SetUpAuthenticator => true,
        Next::Password | Next::Consent | Next::Complete | Next::Unmet => false,
    };
    if second_step {
        audit::record(
            &state,
            &meta,
            AuditKind::LoginPasswordAccepted,
            Some(&user.id),
            ui.client.as_ref().map(|c| &c.id),
            json!({ "next": if next == Next::Code { "otp" } else { "mfa_setup" } }),
        )
        .await;
        let flow = Flow {
            req: ui.request().map(str::to_owned),
            client_id: ui.client_id().map(str::to_owned),
            return_to: pending.as_ref().map(|p| p.request.redirect_uri.clone()),
        };
        return signin::route::second_step(&state, ui.take_jar(), &user, next, flow).await;
    }
    let jar = session::start(
        &state,
        ui.take_jar(),
        &user.id,
        vec!["pwd".into()],
        &meta,
        session::Origin {
            portal: ui.client_id(),
            from_flow: in_flow,
            request: ui.request(),
        },
    )
    .await?;
    audit::record(
        &state,
        &meta,
        AuditKind::LoginSucceeded,
        Some(&user.id),
        ui.client.as_ref().map(|c| &c.id),
        json!({ "amr": ["pwd"] }),
    )
    .await;
    let target = signin::route::after_step(ui.request(), &ui.flow_query());
    Ok((jar, Redirect::to(&target)).into_response())
}

/// The password hashing queue was full: the attempt is given back, as if
/// it had not been made (no failure counted, nothing audited), and the
/// person is asked to try again in a few seconds.
async fn refused_busy(
    state: &AppState,
    attempt: lockout::Attempt,
    ui: Ui,
) -> Result<Response, AppError> {
    lockout::release(state, attempt).await?;
    Ok(crate::web::busy_page(ui))
}

pub async fn account(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(Page::new("account.html", "Your account")))
}
