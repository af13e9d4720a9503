//! Two-step sign-in with an authenticator app (TOTP) and recovery codes:
//! enrolment and management on `/account/mfa`, the second step of sign-in on
//! `/login/otp`, enrolment during sign-in on `/login/mfa-setup` when a client
//! or the deployment requires it. See docs/mfa.md. When the second step is
//! needed is the sign-in pipeline's decision (`crate::signin`), as is the
//! pending state the two sign-in pages work on.

mod authenticator;
mod notices;
mod reauth;
mod settings;
mod signin;
pub mod totp;

use axum::Router;
use axum::routing::{get, post};

use crate::domain::AuditKind;
use crate::store::User;
use crate::web::{AppError, AppState, paths};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::LOGIN_OTP, get(signin::page).post(signin::submit))
        .route(
            paths::LOGIN_MFA_SETUP,
            get(signin::setup_page).post(signin::setup_submit),
        )
        .route(paths::ACCOUNT_MFA, get(settings::page))
        .route(
            paths::ACCOUNT_MFA_SETUP,
            get(settings::setup_page).post(settings::setup_submit),
        )
        .route(paths::ACCOUNT_MFA_DISABLE, post(settings::disable))
        .route(
            paths::ACCOUNT_MFA_RECOVERY_CODES,
            post(settings::regenerate),
        )
        .route(
            paths::ACCOUNT_REAUTH,
            get(reauth::page).post(reauth::submit),
        )
}

/// An administrator removes a user's authenticator and recovery codes (the
/// CLI now, the admin API later): audited with the actor, mailed to the
/// owner. `false` when the user had none (nothing happens).
pub async fn reset(
    store: &dyn crate::store::Store,
    theme: &crate::web::theme::Theme,
    issuer: &url::Url,
    now: time::OffsetDateTime,
    user: &User,
    actor: &str,
) -> Result<bool, AppError> {
    let mail = notices::compose_at(theme, "", issuer, now, user, notices::Notice::Reset)?;
    if !store.delete_totp(&user.id).await? {
        return Ok(false);
    }
    store.enqueue_mail(mail, now).await?;
    let event = crate::store::AuditEvent {
        kind: AuditKind::MfaReset.as_str().to_owned(),
        user_id: Some(user.id.clone()),
        actor: Some(actor.to_owned()),
        client_id: None,
        ip: None,
        user_agent: None,
        detail: serde_json::json!({}),
    };
    store.record(event, now).await?;
    Ok(true)
}
