//! `/account/password`: changing the password while signed in (current
//! password + new twice). Other sessions of the user end; this one goes on
//! under a new id.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::forms::{FlowQuery, keep_new_password, new_password_errors, portal_rules};
use crate::credentials::HashError;
use crate::credentials::guesses::{CurrentPassword, check_current_password};
use crate::credentials::policy::PasswordPolicy;
use crate::domain::{AuditKind, PlainPassword};
use crate::mail::notices;
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::{self, CurrentUser};
use crate::web::ui::{FlashKind, Page, Ui};
use crate::web::{AppError, AppState, audit};

fn change_page(policy: &PasswordPolicy) -> Page {
    Page::new("change_password.html", "Change password").with("policy", &policy.describe())
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    // No pending flow here: the session decides (see `portal_rules`).
    let rules = portal_rules(&state, None, Some(&current)).await?;
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(change_page(&rules.policy)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChangeForm {
    current_password: String,
    password: String,
    password_confirm: String,
    csrf_token: String,
    client_id: String,
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<ChangeForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f: ChangeForm = form(body);
    let user = current.user.clone();
    let session_id = current.session_id.clone();
    let amr = current.session.amr.clone();
    let rules = portal_rules(&state, None, Some(&current)).await?;
    let portal = current.session.portal.clone();
    let from_flow = current.session.portal_from_flow;
    let mut ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let current = check_current_password(&state, &user, &f.current_password).await?;
    let current_ok = current == CurrentPassword::Right;
    let mut page = change_page(&rules.policy);
    if let Some(message) = current.message() {
        page = page.field_error("current_password", message);
    }
    let (pw_errors, confirm_errors) = new_password_errors(
        &rules.policy,
        &f.password,
        &f.password_confirm,
        &[&user.name, user.email.as_str()],
    );
    page = keep_new_password(
        page,
        &f.password,
        &f.password_confirm,
        pw_errors.is_empty(),
        confirm_errors.is_empty(),
    )
    .field_errors("password", pw_errors)
    .field_errors("password_confirm", confirm_errors);
    if page.has_errors() {
        if !current_ok {
            audit::record(
                &state,
                &meta,
                AuditKind::PasswordChangeFailed,
                Some(&user.id),
                None,
                json!({}),
            )
            .await;
        }
        return Ok(ui.render(page.invalid()));
    }
    let password = PlainPassword::parse(&f.password).map_err(|e| AppError::Internal(e.0))?;
    let hash = match state.hasher.hash(&password).await {
        Err(HashError::Busy) => return Ok(crate::web::busy_page(ui)),
        other => other?,
    };
    let mail = notices::password_changed(&state, &ui, &user)?;
    state
        .store
        .change_password(&user.id, &hash, mail, state.clock.now())
        .await?;
    state.mail.notify();
    // End every session, then give this browser a fresh one.
    session::end_all(&state, &user.id).await?;
    let jar = session::end(&state, ui.take_jar(), &session_id).await?;
    let origin = session::Origin {
        portal: portal.as_deref(),
        from_flow,
        // A new password is no sign-in for a pending request.
        request: None,
    };
    let jar = session::start(&state, jar, &user.id, amr, &meta, origin).await?;
    ui.set_jar(jar);
    audit::record(
        &state,
        &meta,
        AuditKind::PasswordChangeSucceeded,
        Some(&user.id),
        None,
        json!({}),
    )
    .await;
    Ok(ui.render(change_page(&rules.policy).flash(
        FlashKind::Success,
        "Your password was changed. Use it the next time you sign in.",
    )))
}
