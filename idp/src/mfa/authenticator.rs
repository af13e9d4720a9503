//! The account's authenticator app, as the sign-in step, the settings page
//! and "confirm it's you" all use it: its secret, the set-up page, checking
//! a code and turning it on. (Kept apart from `mod.rs`, which the pages'
//! router names: shared items in their own file, no import circle.)

use super::{notices, totp};
use crate::domain::AuditKind;
use crate::store::{NewTotp, TotpCredential, User};
use crate::web::ui::Page;
use crate::web::{AppError, AppState};

/// The name authenticator apps show for this deployment.
fn issuer_name(state: &AppState) -> String {
    let configured = state.config.mfa.issuer.trim();
    if configured.is_empty() {
        state
            .config
            .server
            .issuer
            .host_str()
            .unwrap_or("idp")
            .to_owned()
    } else {
        configured.to_owned()
    }
}

fn internal(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(e.to_string())
}

/// The base32 secret of a stored credential.
fn open_secret(state: &AppState, c: &TotpCredential) -> Result<String, AppError> {
    crate::credentials::totp_secret::open(
        state.kek.as_deref(),
        &c.user_id,
        &c.secret,
        c.secret_encrypted,
    )
    .map_err(internal)
}

/// The user's active secret (base32), if TOTP is on.
pub(super) async fn active_secret(
    state: &AppState,
    user: &User,
) -> Result<Option<String>, AppError> {
    match state.store.totp_credential(&user.id).await? {
        Some(c) if c.is_active() => Ok(Some(open_secret(state, &c)?)),
        _ => Ok(None),
    }
}

/// How long an unconfirmed secret is offered again (a reload, a second try)
/// before a fresh one replaces it.
const ENROLMENT_REUSE: time::Duration = time::Duration::minutes(15);

/// The secret being set up: the unconfirmed one if recent, else a fresh one.
/// `None` when TOTP is already on.
pub(super) async fn enrolment_secret(
    state: &AppState,
    user: &User,
) -> Result<Option<String>, AppError> {
    let now = state.clock.now();
    match state.store.totp_credential(&user.id).await? {
        Some(c) if c.is_active() => return Ok(None),
        Some(c) if now - c.created_at < ENROLMENT_REUSE => {
            return Ok(Some(open_secret(state, &c)?));
        }
        _ => {}
    }
    let secret = totp::new_secret();
    let (stored, encrypted) =
        crate::credentials::totp_secret::seal(state.kek.as_deref(), &user.id, &secret)
            .map_err(internal)?;
    let fresh = NewTotp {
        secret: stored,
        secret_encrypted: encrypted,
        digits: totp::DIGITS,
        period_secs: totp::PERIOD_SECS,
    };
    if !state
        .store
        .start_totp_enrolment(&user.id, fresh, now)
        .await?
    {
        return Ok(None);
    }
    Ok(Some(secret))
}

/// The unconfirmed secret a setup form refers to (no fresh one is made on POST).
pub(super) async fn unconfirmed_secret(
    state: &AppState,
    user: &User,
) -> Result<Option<String>, AppError> {
    match state.store.totp_credential(&user.id).await? {
        Some(c) if !c.is_active() => Ok(Some(open_secret(state, &c)?)),
        _ => Ok(None),
    }
}

/// The set-up page: QR code, key to type, code box.
pub(super) fn enrol_page(
    state: &AppState,
    user: &User,
    secret: &str,
    action: &str,
    required: bool,
    cancel_url: &str,
) -> Result<Page, AppError> {
    let uri = totp::otpauth_uri(secret, user.email.as_str(), &issuer_name(state))
        .ok_or_else(|| internal("cannot build the otpauth URI"))?;
    let svg = totp::qr_svg(&uri).ok_or_else(|| internal("cannot draw the QR code"))?;
    Ok(Page::new("mfa_enrol.html", "Set up two-step sign-in")
        .with("qr_svg", &svg)
        .with("secret_groups", &totp::grouped(secret))
        .with("otpauth_uri", &uri)
        .with("action", action)
        .with("required", &required)
        .with("cancel_url", cancel_url))
}

/// The outcome of checking what a person typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    Totp,
    Recovery {
        remaining: u32,
    },
    Wrong,
    Replayed,
    Malformed,
    /// Not checked: the account's allowance of codes is spent.
    Limited,
}

impl Checked {
    pub(super) fn passed(self) -> bool {
        matches!(self, Self::Totp | Self::Recovery { .. })
    }

    /// The audit `reason` of a failure.
    pub(super) fn reason(self) -> &'static str {
        match self {
            Self::Replayed => "replayed",
            Self::Malformed => "malformed",
            Self::Limited => "limited",
            _ => "wrong",
        }
    }

    /// The field error shown for a failure.
    pub(super) fn message(self) -> &'static str {
        match self {
            Self::Replayed => {
                "That code was already used. Wait for the next code in your app, then enter it."
            }
            Self::Malformed => {
                "Enter the 6-digit code from your authenticator app, or one of your recovery codes."
            }
            Self::Limited => crate::credentials::guesses::CODE_TRIES_SPENT,
            _ => "That code is not right. Check the time on your phone and try the current code.",
        }
    }
}

/// Checks a code against the active `secret`, using up its time step (or
/// the recovery code) when it passes. Recovery codes only when `recovery`.
pub(super) async fn check_code(
    state: &AppState,
    user: &User,
    secret: &str,
    input: &str,
    recovery: bool,
) -> Result<Checked, AppError> {
    match totp::parse_code(input) {
        totp::CodeInput::Totp(code) => {
            let now = state.clock.now().unix_timestamp();
            let Some(step) = totp::matching_step(secret, &code, now) else {
                return Ok(Checked::Wrong);
            };
            Ok(if state.store.use_totp_step(&user.id, step).await? {
                Checked::Totp
            } else {
                Checked::Replayed
            })
        }
        totp::CodeInput::Recovery(code) if recovery => {
            let hash = totp::recovery_hash(&code);
            Ok(
                match state
                    .store
                    .use_recovery_code(&user.id, &hash, state.clock.now())
                    .await?
                {
                    Some(remaining) => Checked::Recovery { remaining },
                    None => Checked::Wrong,
                },
            )
        }
        totp::CodeInput::Recovery(_) | totp::CodeInput::Malformed => Ok(Checked::Malformed),
    }
}

/// What came of a code typed to confirm a new secret.
pub(super) enum Confirmed {
    /// On: the recovery codes to show once.
    On(Vec<String>),
    Refused(Checked),
    /// No secret was being set up any more (turned on in another tab).
    Gone,
}

/// Turns TOTP on when `input` is right for the unconfirmed `secret` now:
/// recovery codes made, audited (`during`: where), the owner mailed. Each
/// code is counted against the account's allowance before it is checked,
/// and a refused one is audited too.
pub(super) async fn confirm_enrolment(
    state: &AppState,
    ui: &crate::web::ui::Ui,
    meta: &crate::web::client_meta::ClientMeta,
    user: &User,
    secret: &str,
    input: &str,
    during: &str,
) -> Result<Confirmed, AppError> {
    let now = state.clock.now();
    let refused = |checked: Checked| async move {
        crate::web::audit::record(
            state,
            meta,
            AuditKind::MfaEnrolFailed,
            Some(&user.id),
            ui.client.as_ref().map(|c| &c.id),
            serde_json::json!({ "during": during, "reason": checked.reason() }),
        )
        .await;
        Ok(Confirmed::Refused(checked))
    };
    if !crate::credentials::guesses::code_try_allowed(state, user).await? {
        return refused(Checked::Limited).await;
    }
    let step = match totp::parse_code(input) {
        totp::CodeInput::Totp(code) => totp::matching_step(secret, &code, now.unix_timestamp()),
        _ => return refused(Checked::Malformed).await,
    };
    let Some(step) = step else {
        return refused(Checked::Wrong).await;
    };
    let (codes, hashes) = totp::new_recovery_codes();
    if !state
        .store
        .confirm_totp(&user.id, step, &hashes, now)
        .await?
    {
        return Ok(Confirmed::Gone);
    }
    crate::web::audit::record(
        state,
        meta,
        AuditKind::MfaEnrolled,
        Some(&user.id),
        ui.client.as_ref().map(|c| &c.id),
        serde_json::json!({ "during": during }),
    )
    .await;
    notices::send(state, ui, user, notices::Notice::Enabled).await;
    Ok(Confirmed::On(codes))
}
