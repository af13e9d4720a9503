//! Mail telling owners what happened to their two-step sign-in.

use crate::mail::compose as mailer;
use crate::store::{OutgoingMail, User};
use crate::web::theme::Theme;
use crate::web::ui::Ui;
use crate::web::{AppError, AppState, paths};

/// The mails of docs/mfa.md, by template name.
#[derive(Debug, Clone, Copy)]
pub enum Notice {
    Enabled,
    Disabled,
    /// An administrator removed it.
    Reset,
    RecoveryCodeUsed {
        remaining: u32,
    },
    RecoveryCodesRegenerated,
    /// A correct password, then a wrong code.
    Failed,
}

impl Notice {
    fn template(self) -> &'static str {
        match self {
            Self::Enabled => "mfa_enabled",
            Self::Disabled => "mfa_disabled",
            Self::Reset => "mfa_reset",
            Self::RecoveryCodeUsed { .. } => "mfa_recovery_code_used",
            Self::RecoveryCodesRegenerated => "mfa_recovery_codes_regenerated",
            Self::Failed => "mfa_failed",
        }
    }
}

/// The mail, rendered in the page's portal's theme, its links in that
/// portal too, for the outbox.
pub fn compose(
    state: &AppState,
    ui: &Ui,
    user: &User,
    notice: Notice,
) -> Result<OutgoingMail, AppError> {
    compose_at(
        &ui.theme,
        &ui.portal_query(),
        &state.config.server.issuer,
        state.clock.now(),
        user,
        notice,
    )
}

/// [`compose`] without an app state (the CLI); `portal_query` is
/// `?client_id=…` or empty.
pub fn compose_at(
    theme: &Theme,
    portal_query: &str,
    issuer: &url::Url,
    now: time::OffsetDateTime,
    user: &User,
    notice: Notice,
) -> Result<OutgoingMail, AppError> {
    let mut context = tera::Context::new();
    let when = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    context.insert("when", &when);
    context.insert(
        "reset_link",
        &mailer::forgot_password_link(issuer, portal_query),
    );
    context.insert(
        "account_link",
        &mailer::link(issuer, &format!("{}{portal_query}", paths::ACCOUNT_MFA)),
    );
    if let Notice::RecoveryCodeUsed { remaining } = notice {
        context.insert("remaining", &remaining);
    }
    Ok(mailer::compose(
        theme,
        notice.template(),
        &user.email,
        &user.name,
        context,
    )?)
}

/// Queues the mail; a failure to queue is logged, the action already happened.
pub async fn send(state: &AppState, ui: &Ui, user: &User, notice: Notice) {
    let queued = match compose(state, ui, user, notice) {
        Ok(mail) => state
            .mail
            .enqueue(mail)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = queued {
        tracing::error!(%error, notice = notice.template(), "mfa notice not queued");
    }
}
