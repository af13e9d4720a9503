//! `/account/profile`: the account holder changes their name, and their
//! email address. A new address takes effect only once a link mailed to it
//! is opened (proving it is theirs and reachable); the old address is then
//! told. The answer to a request never says whether another account has the
//! address: that account's owner is told instead, and nothing changes.
//!
//! A pending change lives in the ephemeral store under the SHA-256 of its
//! link's token, for `account.email_change_link_ttl_minutes`; opening the
//! link takes it (once, on any node).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::MAX_NAME_CHARS;
use super::forms::{FlowQuery, LinkQuery};
use crate::credentials::guesses::check_current_password;
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{AuditKind, Email, UserId};
use crate::ephemeral::{Key, keys};
use crate::mail::{compose as mailer, notices};
use crate::store::{User, UserChanges};
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::{CurrentUser, MaybeUser};
use crate::web::theme::Theme;
use crate::web::ui::{FlashKind, Page, Ui};
use crate::web::{AppError, AppState, audit, paths};

/// Change requests a user may make per hour (each sends a mail or tests the
/// password).
const CHANGES_PER_HOUR: u64 = 5;

/// A requested change of address, until its link is opened.
#[derive(Debug, Serialize, Deserialize)]
struct PendingChange {
    user_id: UserId,
    /// The address the account had when the change was asked: a change made
    /// meanwhile (by an administrator, another link) voids this one.
    from: String,
    to: String,
}

fn pending_key(token: &str) -> Key<PendingChange> {
    keys::typed("email-change", &sha256_hex(token))
}

/// The page shows `user` as they are now, when they are the one signed in.
fn show_user(ui: &mut Ui, user: &User) {
    if let Some(mut current) = ui.user().filter(|c| c.user.id == user.id).cloned() {
        current.user = user.clone();
        ui.set_user(Some(current));
    }
}

fn profile_page(user: &User) -> Page {
    Page::new("profile.html", "Your profile").value("name", &user.name)
}

/// Why mail to `email` cannot work here (a domain the deployment cannot reach).
pub(super) fn undeliverable(state: &AppState, email: &Email) -> Option<String> {
    let domain = email.domain();
    let blocked = state.config.account.blocked_email_domains.iter().any(|d| {
        d.eq_ignore_ascii_case(domain) || domain.ends_with(&format!(".{}", d.to_ascii_lowercase()))
    });
    blocked.then(|| {
        format!("We cannot deliver mail to {domain} addresses, so you would never receive our messages. Please use another email address.")
    })
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let page = profile_page(&current.user);
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct NameForm {
    name: String,
    csrf_token: String,
    client_id: String,
}

pub async fn save_name(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<NameForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: NameForm = form(body);
    let user = current.user.clone();
    let mut ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let name = f.name.trim().to_owned();
    let error = if name.is_empty() {
        Some("Enter your name.".to_owned())
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some(format!("Names can be at most {MAX_NAME_CHARS} characters."))
    } else {
        None
    };
    if let Some(error) = error {
        let page = profile_page(&user)
            .value("name", &name)
            .field_error("name", error);
        return Ok(ui.render(page.invalid()));
    }
    if name == user.name {
        return Ok(ui.render(profile_page(&user).flash(FlashKind::Success, "Your name is saved.")));
    }
    let changes = UserChanges {
        name: Some(name),
        ..UserChanges::default()
    };
    let Some(user) = state
        .store
        .update_user(&user.id, &changes, state.clock.now())
        .await?
    else {
        return Err(AppError::Internal("the signed-in user is gone".into()));
    };
    // /userinfo on this node serves the new name at once.
    state.users.forget(&user.id);
    audit::record(
        &state,
        &meta,
        AuditKind::ProfileNameChanged,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    show_user(&mut ui, &user);
    Ok(ui.render(profile_page(&user).flash(FlashKind::Success, "Your name is saved.")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EmailForm {
    new_email: String,
    password: String,
    csrf_token: String,
    client_id: String,
}

pub async fn change_email(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<EmailForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: EmailForm = form(body);
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    // Every attempt counts, a wrong password too: each sends mail or tests
    // the password, and a stolen session must not make either cheap.
    let counter = keys::counter("email-change", user.id.as_str());
    let hour = std::time::Duration::from_secs(3600);
    if state.ephemeral.increment(&counter, hour).await? > CHANGES_PER_HOUR {
        let page = profile_page(&user).flash(
            FlashKind::Error,
            "You asked to change your address several times within the hour. Please wait a while, then try again.",
        );
        return Ok(ui.render(page.status(StatusCode::TOO_MANY_REQUESTS)));
    }
    let mut page = profile_page(&user).value("new_email", f.new_email.trim());
    let email = match Email::parse(&f.new_email) {
        Ok(email) if email.key() == user.email.key() => {
            page = page.field_error("new_email", "This is already your email address.");
            None
        }
        Ok(email) => {
            if let Some(why) = undeliverable(&state, &email) {
                page = page.field_error("new_email", why);
            }
            Some(email)
        }
        Err(e) => {
            page = page.field_error("new_email", e.0);
            None
        }
    };
    let password = check_current_password(&state, &user, &f.password).await?;
    if let Some(message) = password.message() {
        page = page.field_error("password", message);
        audit::record(
            &state,
            &meta,
            AuditKind::EmailChangeFailed,
            Some(&user.id),
            None,
            json!({}),
        )
        .await;
    }
    let (Some(email), false) = (email, page.has_errors()) else {
        return Ok(ui.render(page.invalid()));
    };
    let sent = profile_page(&user).flash(
        FlashKind::Success,
        format!(
            "We sent a link to {}. Open it to confirm the new address; until then you sign in with {}.",
            email.as_str(),
            user.email.as_str()
        ),
    );
    if crate::credentials::guesses::mail_allowed(&state, &email, meta.ip)
        .await?
        .is_none()
    {
        // The same answer as a sent link: a limit reached by mail to an
        // address with an account must not tell that it has one.
        audit::record(
            &state,
            &meta,
            AuditKind::EmailChangeThrottled,
            Some(&user.id),
            None,
            json!({}),
        )
        .await;
        return Ok(ui.render(sent));
    }
    // Whether another account has the address decides what is mailed, never
    // what this page says, nor how long it takes to say it.
    let task = (
        state.clone(),
        ui.theme.clone(),
        ui.flow_query(),
        meta.clone(),
        user,
    );
    tokio::spawn(async move {
        let (state, theme, flow_query, meta, user) = task;
        if let Err(e) = request_change(&state, &theme, &flow_query, &meta, &user, email).await {
            tracing::error!(error = %e, "an email change failed after the answer was sent");
        }
    });
    Ok(ui.render(sent))
}

async fn request_change(
    state: &AppState,
    theme: &Theme,
    flow_query: &str,
    meta: &ClientMeta,
    user: &User,
    to: Email,
) -> Result<(), AppError> {
    if let Some(owner) = state.store.user_by_email(&to).await? {
        notices::address_in_use(state, theme, "email_change_taken", &owner, flow_query).await?;
        // The same kind as a free address: the requester's activity page
        // shows it and must not tell the two apart (the detail is for
        // administrators).
        audit::record(
            state,
            meta,
            AuditKind::EmailChangeRequested,
            Some(&user.id),
            None,
            json!({ "address_in_use": true }),
        )
        .await;
        return Ok(());
    }
    let token = random_token();
    let minutes = state.config.account.email_change_link_ttl_minutes;
    let change = PendingChange {
        user_id: user.id.clone(),
        from: user.email.as_str().to_owned(),
        to: to.as_str().to_owned(),
    };
    let ttl = std::time::Duration::from_secs(minutes * 60);
    state
        .ephemeral
        .put(&pending_key(&token), &change, ttl)
        .await?;
    let sep = if flow_query.is_empty() { "?" } else { "&" };
    let link = mailer::link(
        &state.config.server.issuer,
        &format!(
            "{}{flow_query}{sep}token={token}",
            paths::CONFIRM_EMAIL_CHANGE
        ),
    );
    let mut context = tera::Context::new();
    context.insert("link", &link);
    context.insert("ttl_minutes", &minutes);
    context.insert("old_email", user.email.as_str());
    let mail = mailer::compose(theme, "email_change", &to, &user.name, context)?;
    state.mail.enqueue(mail).await?;
    audit::record(
        state,
        meta,
        AuditKind::EmailChangeRequested,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    Ok(())
}

fn result_page() -> Page {
    Page::new("email_changed.html", "New email address")
}

fn invalid_link() -> Page {
    result_page()
        .with("status", "invalid")
        .status(StatusCode::BAD_REQUEST)
}

/// Opening the link asks to confirm, and changes nothing: mail scanners
/// that open every link must not make the change (an attacker could point
/// their own account at an address behind such a scanner).
pub async fn confirm_page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<LinkQuery>,
    MaybeUser(current): MaybeUser,
) -> Result<Response, AppError> {
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), current).await?;
    let pending = if crate::domain::Token::parse(&q.token).is_some() {
        state.ephemeral.get(&pending_key(&q.token)).await?
    } else {
        None
    };
    let Some(change) = pending else {
        return Ok(ui.render(invalid_link()));
    };
    Ok(ui.render(
        result_page()
            .with("status", "confirm")
            .with("email", &change.to)
            .with("token", &q.token),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConfirmForm {
    token: String,
    csrf_token: String,
    client_id: String,
}

/// The confirmation: the address changes (verified), and the old one is told.
pub async fn confirm(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    MaybeUser(current): MaybeUser,
    body: Result<Form<ConfirmForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: ConfirmForm = form(body);
    let mut ui = Ui::new(&state, jar, &headers, Some(&f.client_id), current).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    if crate::domain::Token::parse(&f.token).is_none() {
        return Ok(ui.render(invalid_link()));
    }
    let Some(change) = state.ephemeral.take(&pending_key(&f.token)).await? else {
        return Ok(ui.render(invalid_link()));
    };
    let Some(user) = state.store.user_by_id(&change.user_id).await? else {
        return Ok(ui.render(invalid_link()));
    };
    let (Ok(to), Ok(from)) = (Email::parse(&change.to), Email::parse(&change.from)) else {
        return Ok(ui.render(invalid_link()));
    };
    if user.disabled {
        return Ok(ui.render(invalid_link()));
    }
    // Written before the change, so that a change is never made untold.
    let mut context = tera::Context::new();
    context.insert("new_email", to.as_str());
    context.insert(
        "reset_link",
        &mailer::forgot_password_link(&state.config.server.issuer, &ui.flow_query()),
    );
    let notice = mailer::compose(&ui.theme, "email_changed", &user.email, &user.name, context)?;
    let changes = UserChanges {
        email: Some(to),
        email_verified: Some(true),
        // Only while the account still has the address the change was asked
        // from: another link, or an administrator, may have moved it since.
        expect_email: Some(from),
        ..UserChanges::default()
    };
    let updated = match state
        .store
        .update_user(&user.id, &changes, state.clock.now())
        .await
    {
        Ok(Some(updated)) => updated,
        Ok(None) => return Ok(ui.render(invalid_link())),
        // Another account took the address since the link was sent.
        Err(crate::store::Error::Conflict) => {
            return Ok(ui.render(invalid_link().with("taken", &true)));
        }
        Err(e) => return Err(e.into()),
    };
    state.users.forget(&user.id);
    if let Err(e) = state.mail.enqueue(notice).await {
        tracing::error!(error = %e, "the notice of a changed address could not be queued");
    }
    audit::record(
        &state,
        &meta,
        AuditKind::EmailChangeConfirmed,
        Some(&user.id),
        None,
        json!({ "from": change.from, "to": change.to }),
    )
    .await;
    show_user(&mut ui, &updated);
    Ok(ui.render(
        result_page()
            .with("status", "changed")
            .with("email", updated.email.as_str()),
    ))
}
