//! `/forgot-password` and `/reset-password`: a 256-bit single-use link by
//! mail, stored as its SHA-256, valid 60 minutes by default. Opening the link
//! only shows the form; submitting it uses the token, so mail scanners that
//! pre-open links cannot burn it. The request page always gives the same
//! answer, at once; the lookup and the mail happen after the response.

use std::time::Duration;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::forms::{
    FlowQuery, LinkQuery, captcha_message, captcha_required, keep_new_password,
    new_password_errors, pending_client, portal_rules, render_captcha,
};
use crate::credentials::policy::PasswordPolicy;
use crate::credentials::{HashError, captcha, lockout};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::ClientId;
use crate::domain::{AuditKind, Email, PlainPassword, Token};
use crate::ephemeral::keys;
use crate::mail::{compose as mailer, notices};
use crate::store::{Client, NewToken};
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::{self, MaybeUser};
use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState, audit, paths};

/// The forgot-password page and its answer list the email providers the
/// deployment cannot deliver to (seed 000, step 4), when it names any.
fn with_blocked_domains(state: &AppState, page: Page) -> Page {
    page.with(
        "blocked_domains",
        &state.config.account.blocked_email_domains,
    )
}

/// The look of a page: the flow's client (the server's record) when there
/// is one, else the portal the link or form names.
fn look(flow: Option<&Client>, named: Option<&str>) -> Option<String> {
    flow.map(|c| c.id.to_string())
        .or_else(|| named.map(str::to_owned))
}

pub async fn forgot_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    let pending = pending_client(&state, &jar, q.req.as_deref()).await?;
    let flow = pending.as_ref().map(|(_, c)| c);
    let look = look(flow, q.client_id.as_deref());
    let mut ui = Ui::new(&state, jar, &headers, look.as_deref(), user).await?;
    let in_flow = pending.is_some();
    ui.set_request(pending.map(|(req, _)| req));
    let page = with_blocked_domains(
        &state,
        Page::new("forgot_password.html", "Reset your password"),
    );
    // Without a pending flow the door is shared: see `captcha_required`.
    let captcha =
        captcha_required(&state, in_flow.then_some(&*ui.theme), |m| m.captcha_forgot).await?;
    let page = render_captcha(&state, captcha, page).await?;
    Ok(ui.render(page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ForgotForm {
    email: String,
    csrf_token: String,
    client_id: String,
    captcha_challenge: String,
    captcha_nonce: String,
    req: String,
}

pub async fn forgot_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<ForgotForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: ForgotForm = form(body);
    // The pending flow (the server's record), never the form's client_id,
    // decides the captcha and the link's lifetime.
    let pending = pending_client(&state, &jar, Some(&f.req)).await?;
    let portal = pending.as_ref().map(|(_, c)| c.clone());
    let look = look(portal.as_ref(), Some(&f.client_id));
    let mut ui = Ui::new(&state, jar, &headers, look.as_deref(), None).await?;
    let in_flow = pending.is_some();
    ui.set_request(pending.map(|(req, _)| req));
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let retry = || {
        with_blocked_domains(
            &state,
            Page::new("forgot_password.html", "Reset your password"),
        )
        .value("email", f.email.trim())
        .invalid()
    };
    let captcha =
        captcha_required(&state, in_flow.then_some(&*ui.theme), |m| m.captcha_forgot).await?;
    if captcha
        && let Err(e) =
            captcha::verify(&state.ephemeral, &f.captcha_challenge, &f.captcha_nonce).await
    {
        let page = render_captcha(
            &state,
            true,
            retry().field_error("captcha", captcha_message(&e)),
        )
        .await?;
        return Ok(ui.render(page));
    }
    let email = match Email::parse(&f.email) {
        Ok(email) => email,
        Err(e) => {
            let page = render_captcha(&state, captcha, retry().field_error("email", e.0)).await?;
            return Ok(ui.render(page));
        }
    };
    let ttl = portal_rules(&state, portal.as_ref(), None)
        .await?
        .reset_link_ttl_minutes;
    let task_state = state.clone();
    let theme = ui.theme.clone();
    let flow_query = ui.flow_query();
    let portal = portal.map(|c| c.id);
    tokio::spawn(async move {
        let link = ResetLink {
            theme: &theme,
            flow_query: &flow_query,
            ttl_minutes: ttl,
            portal: portal.as_ref(),
        };
        if let Err(e) = send_link(&task_state, &link, &meta, &email).await {
            tracing::error!(error = %e, "password reset request failed after the answer was sent");
        }
    });
    let sent = Page::new("forgot_sent.html", "Check your email").with("ttl_minutes", &ttl);
    Ok(ui.render(with_blocked_domains(&state, sent)))
}

/// How a reset link is mailed: in which theme, keeping which flow, valid
/// how long, and for which portal's rules.
struct ResetLink<'a> {
    theme: &'a crate::web::theme::Theme,
    flow_query: &'a str,
    ttl_minutes: u64,
    portal: Option<&'a ClientId>,
}

async fn send_link(
    state: &AppState,
    link: &ResetLink<'_>,
    meta: &ClientMeta,
    email: &Email,
) -> Result<(), AppError> {
    let hour = Duration::from_secs(3600);
    let per_ip = state
        .ephemeral
        .increment(&keys::counter("reset-ip", &meta.ip.to_string()), hour)
        .await?;
    let per_email = state
        .ephemeral
        .increment(&keys::counter("reset-email", &email.key()), hour)
        .await?;
    let user = state.store.user_by_email(email).await?;
    let limits = &state.config.account;
    if per_ip > limits.reset_requests_per_ip_per_hour
        || per_email > limits.reset_requests_per_email_per_hour
    {
        audit::record(
            state,
            meta,
            AuditKind::PasswordResetThrottled,
            user.as_ref().map(|u| &u.id),
            None,
            json!({}),
        )
        .await;
        return Ok(());
    }
    let Some(user) = user.filter(|u| !u.disabled) else {
        audit::record(
            state,
            meta,
            AuditKind::PasswordResetUnknownEmail,
            None,
            None,
            json!({}),
        )
        .await;
        return Ok(());
    };
    create_link(state, link, &user).await?;
    audit::record(
        state,
        meta,
        AuditKind::PasswordResetRequested,
        Some(&user.id),
        link.portal,
        json!({ "ttl_minutes": link.ttl_minutes }),
    )
    .await;
    Ok(())
}

/// Mails `user` a single-use reset link valid `ttl_minutes`, in `theme`;
/// `flow_query` keeps the portal's flow. The forgot-password page (after its
/// limits) and administrators both send it this way.
pub async fn mail_reset_link(
    state: &AppState,
    theme: &crate::web::theme::Theme,
    flow_query: &str,
    user: &crate::store::User,
    ttl_minutes: u64,
) -> Result<(), AppError> {
    let link = ResetLink {
        theme,
        flow_query,
        ttl_minutes,
        portal: None,
    };
    create_link(state, &link, user).await
}

async fn create_link(
    state: &AppState,
    link: &ResetLink<'_>,
    user: &crate::store::User,
) -> Result<(), AppError> {
    let ResetLink {
        theme,
        flow_query,
        ttl_minutes,
        portal,
    } = *link;
    let now = state.clock.now();
    let token = random_token();
    let sep = if flow_query.is_empty() { "?" } else { "&" };
    let mut context = tera::Context::new();
    context.insert(
        "link",
        &mailer::link(
            &state.config.server.issuer,
            &format!("{}{flow_query}{sep}token={token}", paths::RESET_PASSWORD),
        ),
    );
    context.insert("ttl_minutes", &ttl_minutes);
    let mail = mailer::compose(theme, "reset_password", &user.email, &user.name, context)?;
    let token = NewToken {
        hash: sha256_hex(&token),
        expires_at: now + time::Duration::minutes(ttl_minutes as i64),
    };
    state
        .store
        .create_password_reset(&user.id, token, portal, mail, now)
        .await?;
    state.mail.notify();
    Ok(())
}

fn invalid_link(ui: Ui) -> Response {
    ui.render(Page::new("reset_invalid.html", "This link has expired").status(StatusCode::GONE))
}

fn reset_form(token: &str, policy: &PasswordPolicy) -> Page {
    Page::new("reset_password.html", "Choose a new password")
        .with("token", token)
        .with("policy", &policy.describe())
}

/// The portal recorded with a live token (the server's record of the flow
/// that asked for it), when that client still exists.
async fn token_portal(state: &AppState, token_hash: &str) -> Result<Option<Client>, AppError> {
    let Some(id) = state
        .store
        .password_reset_portal(token_hash, state.clock.now())
        .await?
    else {
        return Ok(None);
    };
    Ok(state.clients.get(&id).await?)
}

/// Shows the form; does not use the token.
pub async fn reset_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    let token_hash = sha256_hex(&q.token);
    let live = Token::parse(&q.token).is_some()
        && state
            .store
            .password_reset_user(&token_hash, state.clock.now())
            .await?
            .is_some();
    let portal = if live {
        token_portal(&state, &token_hash).await?
    } else {
        None
    };
    let look = look(portal.as_ref(), q.client_id.as_deref());
    // Opened in the browser that asked for it, the link keeps the flow, so
    // signing in afterwards ends at the relying party.
    let pending = pending_client(&state, &jar, q.req.as_deref()).await?;
    let mut ui = Ui::new(&state, jar, &headers, look.as_deref(), user).await?;
    ui.set_request(pending.map(|(req, _)| req));
    if !live {
        return Ok(invalid_link(ui));
    }
    let rules = portal_rules(&state, portal.as_ref(), None).await?;
    Ok(ui.render(reset_form(&q.token, &rules.policy)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResetForm {
    token: String,
    password: String,
    password_confirm: String,
    csrf_token: String,
    client_id: String,
    req: String,
}

pub async fn reset_submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<ResetForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: ResetForm = form(body);
    let now = state.clock.now();
    let token_hash = sha256_hex(&f.token);
    let user = if Token::parse(&f.token).is_some() {
        state.store.password_reset_user(&token_hash, now).await?
    } else {
        None
    };
    // The token's record, not the form's client_id, names the portal.
    let portal = if user.is_some() {
        token_portal(&state, &token_hash).await?
    } else {
        None
    };
    let look = look(portal.as_ref(), Some(&f.client_id));
    let pending = pending_client(&state, &jar, Some(&f.req)).await?;
    let mut ui = Ui::new(&state, jar, &headers, look.as_deref(), None).await?;
    ui.set_request(pending.map(|(req, _)| req));
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let Some(user) = user.filter(|u| !u.disabled) else {
        audit::record(
            &state,
            &meta,
            AuditKind::PasswordResetInvalidToken,
            None,
            None,
            json!({}),
        )
        .await;
        return Ok(invalid_link(ui));
    };
    let rules = portal_rules(&state, portal.as_ref(), None).await?;
    let (pw_errors, confirm_errors) = new_password_errors(
        &rules.policy,
        &f.password,
        &f.password_confirm,
        &[&user.name, user.email.as_str()],
    );
    if !pw_errors.is_empty() || !confirm_errors.is_empty() {
        let page = reset_form(&f.token, &rules.policy);
        let page = keep_new_password(
            page,
            &f.password,
            &f.password_confirm,
            pw_errors.is_empty(),
            confirm_errors.is_empty(),
        )
        .field_errors("password", pw_errors)
        .field_errors("password_confirm", confirm_errors)
        .invalid();
        return Ok(ui.render(page));
    }
    let password = PlainPassword::parse(&f.password).map_err(|e| AppError::Internal(e.0))?;
    // Before the link is used: a busy refusal leaves it valid.
    let hash = match state.hasher.hash(&password).await {
        Err(HashError::Busy) => return Ok(crate::web::busy_page(ui)),
        other => other?,
    };
    let mail = notices::password_changed(&state, &ui, &user)?;
    if !state
        .store
        .complete_password_reset(&token_hash, &user.id, &hash, mail, state.clock.now())
        .await?
    {
        return Ok(invalid_link(ui));
    }
    state.mail.notify();
    session::end_all(&state, &user.id).await?;
    lockout::clear(&state, &user.email, None).await?;
    // Any session cookie this browser held is void now; drop it.
    let jar = ui.take_jar();
    let dev = state.config.server.dev_mode;
    ui.set_jar(jar.remove(session::cookie(
        session::cookie_name(dev),
        String::new(),
        dev,
    )));
    audit::record(
        &state,
        &meta,
        AuditKind::PasswordResetCompleted,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    Ok(ui.render(Page::new("reset_done.html", "Password changed")))
}
