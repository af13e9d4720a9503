//! `/register` and `/verify-email`: self-service accounts. The answer to a
//! registration never says whether the address already had an account: both
//! get the same page at once, and the work (hashing, mail) happens after the
//! response; an existing owner is told by mail that someone tried.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::MAX_NAME_CHARS;
use super::forms::{
    FlowQuery, LinkQuery, keep_new_password, new_password_errors, pending_client, portal_rules,
};
use crate::credentials::HashError;
use crate::credentials::policy::PasswordPolicy;
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{AuditKind, Email, PlainPassword};
use crate::mail::compose as mailer;
use crate::store::{EmailVerification, NewToken, NewUser};
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::MaybeUser;
use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState, audit, paths};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RegisterForm {
    name: String,
    email: String,
    password: String,
    password_confirm: String,
    csrf_token: String,
    client_id: String,
    req: String,
}

fn registration_page(state: &AppState, policy: &PasswordPolicy) -> Page {
    Page::new("register.html", "Create an account")
        .with("policy", &policy.describe())
        .with(
            "blocked_domains",
            &state.config.account.blocked_email_domains,
        )
}

fn closed(ui: Ui) -> Response {
    ui.render(Page::error(
        StatusCode::NOT_FOUND,
        "Registration is closed",
        "New accounts cannot be created here. Please contact support.",
    ))
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    // The pending flow's client (the server's record) sets the rules and the
    // look; the link's client_id only the look.
    let pending = pending_client(&state, &jar, q.req.as_deref()).await?;
    let look = pending
        .as_ref()
        .map(|(_, c)| c.id.to_string())
        .or(q.client_id.clone());
    let rules = portal_rules(&state, pending.as_ref().map(|(_, c)| c), user.as_ref()).await?;
    let mut ui = Ui::new(&state, jar, &headers, look.as_deref(), user).await?;
    ui.set_request(pending.map(|(req, _)| req));
    if !state.config.account.registration_enabled {
        return Ok(closed(ui));
    }
    Ok(ui.render(registration_page(&state, &rules.policy)))
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Form<RegisterForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: RegisterForm = form(body);
    let pending = pending_client(&state, &jar, Some(&f.req)).await?;
    let look = pending
        .as_ref()
        .map(|(_, c)| c.id.to_string())
        .unwrap_or(f.client_id.clone());
    let rules = portal_rules(&state, pending.as_ref().map(|(_, c)| c), None).await?;
    let mut ui = Ui::new(&state, jar, &headers, Some(&look), None).await?;
    ui.set_request(pending.map(|(req, _)| req));
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    if !state.config.account.registration_enabled {
        return Ok(closed(ui));
    }
    let name = f.name.trim().to_owned();
    let mut page = registration_page(&state, &rules.policy)
        .value("name", &name)
        .value("email", f.email.trim());
    if name.is_empty() {
        page = page.field_error("name", "Enter your name.");
    } else if name.chars().count() > MAX_NAME_CHARS {
        page = page.field_error(
            "name",
            format!("Names can be at most {MAX_NAME_CHARS} characters."),
        );
    }
    let email = match Email::parse(&f.email) {
        Ok(email) => {
            if let Some(why) = super::profile::undeliverable(&state, &email) {
                page = page.field_error("email", why);
            }
            Some(email)
        }
        Err(e) => {
            page = page.field_error("email", e.0);
            None
        }
    };
    let personal: Vec<&str> = [
        name.as_str(),
        email.as_ref().map(|e| e.as_str()).unwrap_or(""),
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect();
    let (pw_errors, confirm_errors) =
        new_password_errors(&rules.policy, &f.password, &f.password_confirm, &personal);
    page = keep_new_password(
        page,
        &f.password,
        &f.password_confirm,
        pw_errors.is_empty(),
        confirm_errors.is_empty(),
    )
    .field_errors("password", pw_errors)
    .field_errors("password_confirm", confirm_errors);
    let (Some(email), false) = (email, page.has_errors()) else {
        return Ok(ui.render(page.invalid()));
    };
    let password = PlainPassword::parse(&f.password).map_err(|e| AppError::Internal(e.0))?;
    let sent = Page::new("register_sent.html", "Check your email").with("email", email.as_str());
    // The mail limits first: past them nothing is hashed, so one address
    // cannot keep the hashing queue full with registrations.
    let Some(counted) = crate::credentials::guesses::mail_allowed(&state, &email, meta.ip).await?
    else {
        // The same answer: whether mail went (or the address has an
        // account) is not the requester's to know.
        audit::record(
            &state,
            &meta,
            AuditKind::RegistrationThrottled,
            None,
            None,
            json!({}),
        )
        .await;
        return Ok(ui.render(sent));
    };
    // Hashed here, whether or not the address has an account (the answer
    // takes one hash either way). Refused because the hashing queue is
    // full, it changes nothing: the mail limits are given back.
    let hash = match state.hasher.hash(&password).await {
        Err(HashError::Busy) => {
            crate::credentials::guesses::mail_given_back(&state, counted).await;
            return Ok(crate::web::busy_page(ui));
        }
        other => other?,
    };

    let task_state = state.clone();
    let theme = ui.theme.clone();
    let flow_query = ui.flow_query();
    let task_email = email.clone();
    let client = ui.client.as_ref().map(|c| c.id.clone());
    tokio::spawn(async move {
        let result = register_in_background(
            &task_state,
            &theme,
            &flow_query,
            &meta,
            client,
            task_email,
            name,
            hash,
        )
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "registration failed after the answer was sent");
        }
    });
    Ok(ui.render(sent))
}

#[allow(clippy::too_many_arguments)]
async fn register_in_background(
    state: &AppState,
    theme: &crate::web::theme::Theme,
    flow_query: &str,
    meta: &ClientMeta,
    client: Option<crate::domain::ClientId>,
    email: Email,
    name: String,
    hash: String,
) -> Result<(), AppError> {
    let issuer = &state.config.server.issuer;
    let now = state.clock.now();
    if let Some(existing) = state.store.user_by_email(&email).await? {
        return tell_owner(state, theme, flow_query, meta, &existing).await;
    }
    let token = random_token();
    let ttl_hours = state.config.account.verification_link_ttl_hours;
    let sep = if flow_query.is_empty() { "?" } else { "&" };
    let link = mailer::link(
        issuer,
        &format!("{}{flow_query}{sep}token={token}", paths::VERIFY_EMAIL),
    );
    let mut context = tera::Context::new();
    context.insert("link", &link);
    context.insert("ttl_hours", &ttl_hours);
    let mail = mailer::compose(theme, "verify_email", &email, &name, context)?;
    let new_user = NewUser {
        email: email.clone(),
        name,
        email_verified: false,
        password_hash: Some(hash),
        is_admin: false,
    };
    let token = NewToken {
        hash: sha256_hex(&token),
        expires_at: now + time::Duration::hours(ttl_hours as i64),
    };
    match state.store.register_user(new_user, token, mail, now).await {
        Ok(user) => {
            state.mail.notify();
            audit::record(
                state,
                meta,
                AuditKind::RegistrationCreated,
                Some(&user.id),
                client.as_ref(),
                json!({}),
            )
            .await;
            Ok(())
        }
        // Someone registered the address in between: same as above.
        Err(crate::store::Error::Conflict) => match state.store.user_by_email(&email).await? {
            Some(existing) => tell_owner(state, theme, flow_query, meta, &existing).await,
            None => Ok(()),
        },
        Err(e) => Err(e.into()),
    }
}

async fn tell_owner(
    state: &AppState,
    theme: &crate::web::theme::Theme,
    flow_query: &str,
    meta: &ClientMeta,
    owner: &crate::store::User,
) -> Result<(), AppError> {
    crate::mail::notices::address_in_use(state, theme, "registration_attempt", owner, flow_query)
        .await?;
    audit::record(
        state,
        meta,
        AuditKind::RegistrationDuplicate,
        Some(&owner.id),
        None,
        json!({}),
    )
    .await;
    Ok(())
}

/// Opening the mailed link asks to confirm and changes nothing: mail
/// gateways open every link, and one that did would verify an address for
/// whoever registered it (an attacker registering a victim's address).
pub async fn verify_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
    MaybeUser(user): MaybeUser,
) -> Result<Response, AppError> {
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), user).await?;
    let outcome = if crate::domain::Token::parse(&q.token).is_some() {
        state
            .store
            .peek_email_verification(&sha256_hex(&q.token), state.clock.now())
            .await?
    } else {
        EmailVerification::Invalid
    };
    let page = Page::new("verify_email.html", "Email confirmation");
    Ok(match outcome {
        EmailVerification::Verified(user) => ui.render(
            page.with("status", "confirm")
                .with("email", user.email.as_str())
                .with("token", &q.token),
        ),
        EmailVerification::AlreadyVerified => ui.render(page.with("status", "verified")),
        EmailVerification::Invalid => ui.render(
            page.with("status", "invalid")
                .status(StatusCode::BAD_REQUEST),
        ),
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VerifyForm {
    token: String,
    csrf_token: String,
    client_id: String,
}

/// The button on that page: the token is used and the address verified.
pub async fn verify(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    MaybeUser(user): MaybeUser,
    body: Result<Form<VerifyForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: VerifyForm = form(body);
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), user).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let outcome = if crate::domain::Token::parse(&f.token).is_some() {
        state
            .store
            .verify_email(&sha256_hex(&f.token), state.clock.now())
            .await?
    } else {
        EmailVerification::Invalid
    };
    let page = Page::new("verify_email.html", "Email confirmation");
    Ok(match outcome {
        EmailVerification::Verified(user) => {
            audit::record(
                &state,
                &meta,
                AuditKind::EmailVerified,
                Some(&user.id),
                None,
                json!({}),
            )
            .await;
            ui.render(page.with("status", "verified"))
        }
        EmailVerification::AlreadyVerified => ui.render(page.with("status", "verified")),
        EmailVerification::Invalid => ui.render(
            page.with("status", "invalid")
                .status(StatusCode::BAD_REQUEST),
        ),
    })
}
