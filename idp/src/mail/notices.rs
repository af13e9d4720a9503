//! Mail that tells an owner about something that happened to their account.

use serde_json::json;
use time::OffsetDateTime;

use super::compose as mailer;
use crate::credentials::lockout;
use crate::domain::{AuditKind, Email};
use crate::store::User;
use crate::web::client_meta::ClientMeta;
use crate::web::ui::Ui;
use crate::web::{AppError, AppState, audit};

/// Mails `owner` the theme's `template`, whose only value is where to take
/// the account back (`reset_link`, in the flow's portal): someone tried to
/// use their address.
pub async fn address_in_use(
    state: &AppState,
    theme: &crate::web::theme::Theme,
    template: &str,
    owner: &User,
    flow_query: &str,
) -> Result<(), AppError> {
    let mut context = tera::Context::new();
    context.insert(
        "reset_link",
        &mailer::forgot_password_link(&state.config.server.issuer, flow_query),
    );
    let mail = mailer::compose(theme, template, &owner.email, &owner.name, context)?;
    state.mail.enqueue(mail).await?;
    Ok(())
}

/// The address was just locked: audit, and mail the owner if there is one.
pub async fn account_locked(
    state: &AppState,
    ui: &Ui,
    meta: &ClientMeta,
    email: &Email,
    user: Option<&User>,
    until: OffsetDateTime,
) -> Result<(), AppError> {
    audit::record(
        state,
        meta,
        AuditKind::AccountLocked,
        user.map(|u| &u.id),
        None,
        json!({ "until": until.unix_timestamp() }),
    )
    .await;
    let Some(user) = user else { return Ok(()) };
    let mut context = tera::Context::new();
    context.insert(
        "until",
        &lockout::describe_until(&state.config.lockout, until),
    );
    context.insert(
        "reset_link",
        &mailer::forgot_password_link(&state.config.server.issuer, &ui.flow_query()),
    );
    let mail = mailer::compose(&ui.theme, "account_locked", email, &user.name, context)?;
    state.mail.enqueue(mail).await?;
    Ok(())
}

/// The "your password was changed" mail, for the outbox.
pub fn password_changed(
    state: &AppState,
    ui: &Ui,
    user: &User,
) -> Result<crate::store::OutgoingMail, AppError> {
    let mut context = tera::Context::new();
    let when = state
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    context.insert("when", &when);
    context.insert(
        "reset_link",
        &mailer::forgot_password_link(&state.config.server.issuer, &ui.flow_query()),
    );
    mailer::compose(
        &ui.theme,
        "password_changed",
        &user.email,
        &user.name,
        context,
    )
    .map_err(AppError::from)
}

/// The "a passkey was added" mail (issue 16), in the page's portal's theme,
/// for the outbox: a passkey is a way in, so its owner hears of every new one.
pub fn passkey_added(
    state: &AppState,
    ui: &Ui,
    user: &User,
    passkey_name: &str,
) -> Result<crate::store::OutgoingMail, AppError> {
    let issuer = &state.config.server.issuer;
    let portal_query = ui.portal_query();
    let mut context = tera::Context::new();
    let when = state
        .clock
        .now()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    context.insert("when", &when);
    context.insert("passkey_name", passkey_name);
    context.insert(
        "reset_link",
        &mailer::forgot_password_link(issuer, &portal_query),
    );
    context.insert(
        "account_link",
        &mailer::link(
            issuer,
            &format!("{}{portal_query}", crate::web::paths::ACCOUNT_PASSKEYS),
        ),
    );
    mailer::compose(&ui.theme, "passkey_added", &user.email, &user.name, context)
        .map_err(AppError::from)
}
