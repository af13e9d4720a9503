//! `/account/activity`: what happened to the account lately, as its owner
//! needs to see it — sign-ins and failed attempts, locks, changes of
//! password, address and two-step sign-in, devices and apps signed out or
//! removed, administrators' actions — read from the audit trail. Events an
//! owner has no use for (tokens issued to apps) are left out.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;

use super::devices::{describe_browser, when};
use super::forms::FlowQuery;
use crate::domain::AuditKind;
use crate::store::{AuditQuery, RecordedAuditEvent};
use crate::web::session::CurrentUser;
use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState};

/// Events read from the trail at a time, pages read at most, and entries
/// shown (newest first).
const READ: u32 = 200;
const PAGES: usize = 10;
const SHOWN: usize = 50;

/// What an audit event means to the account's owner; `None`: not shown.
fn describe(kind: AuditKind) -> Option<&'static str> {
    Some(match kind {
        AuditKind::LoginSucceeded => "Signed in",
        AuditKind::LoginFailed => "Wrong password entered at sign-in",
        AuditKind::LoginRefusedLocked | AuditKind::MfaRefusedLocked => {
            "Sign-in refused while locked"
        }
        AuditKind::AccountLocked => "Sign-in locked after repeated failures",
        AuditKind::MfaFailed => "Wrong code entered at sign-in",
        AuditKind::MfaRecoveryCodeUsed => "Signed in with a recovery code",
        AuditKind::MfaEnrolled => "Two-step sign-in turned on",
        AuditKind::MfaDisabled => "Two-step sign-in turned off",
        AuditKind::MfaDisableFailed => "Refused: turning two-step sign-in off",
        AuditKind::MfaReset => "Two-step sign-in removed by an administrator",
        AuditKind::MfaRecoveryCodesRegenerated => "New recovery codes made",
        AuditKind::MfaRecoveryCodesFailed => "Refused: making new recovery codes (wrong code)",
        AuditKind::MfaEnrolFailed => "Refused: turning two-step sign-in on (wrong code)",
        AuditKind::ReauthSucceeded => "Confirmed it was you",
        AuditKind::ReauthFailed => "Refused: confirming it was you",
        AuditKind::PasskeyAdded => "Passkey added",
        AuditKind::PasskeyRenamed => "Passkey renamed",
        AuditKind::PasskeyRemoved => "Passkey removed",
        AuditKind::AdminPasskeyRemoved => "Passkey removed by an administrator",
        AuditKind::PasskeyRegisterFailed => "Refused: adding a passkey",
        AuditKind::PasskeySigninFailed => "Refused: signing in with a passkey",
        AuditKind::PasskeyCloneWarning => {
            "Refused: a passkey whose counter went back (it may have been copied)"
        }
        AuditKind::PasswordChangeSucceeded => "Password changed",
        AuditKind::PasswordChangeFailed => {
            "Refused: changing the password (wrong current password)"
        }
        AuditKind::PasswordResetRequested => "Password reset link asked for",
        AuditKind::PasswordResetCompleted => "Password reset with an emailed link",
        AuditKind::EmailVerified => "Email address confirmed",
        AuditKind::EmailChangeRequested => "Change of email address asked for",
        AuditKind::EmailChangeFailed => "Refused: changing the email address (wrong password)",
        AuditKind::EmailChangeConfirmed => "Email address changed",
        AuditKind::ProfileNameChanged => "Name changed",
        AuditKind::SessionEnded => "A device was signed out",
        AuditKind::SessionOthersEnded => "Every other device was signed out",
        AuditKind::ConsentGranted => "An app was allowed to use the account",
        AuditKind::ConsentRevoked => "An app's access was removed",
        AuditKind::UserImported => "Account brought over from a portal's records",
        AuditKind::UserImportLinked => "Linked to another portal's customer record",
        AuditKind::UserImportUpdated => "Updated from a portal's records",
        AuditKind::UserMigrated => "Account moved over at its first sign-in here",
        k if k.by_administrator() => "Changed by an administrator",
        _ => return None,
    })
}

/// How an event reads on the page, if it is shown.
fn entry(e: RecordedAuditEvent) -> Option<EntryView> {
    let kind = AuditKind::parse(&e.event.kind)?;
    let what = match describe(kind)? {
        // How the sign-in was made, from the methods it recorded.
        signed_in if kind == AuditKind::LoginSucceeded => {
            let by_passkey = e.event.detail["amr"]
                .as_array()
                .is_some_and(|amr| amr.iter().any(|m| m == "pop"));
            if by_passkey {
                "Signed in with a passkey"
            } else {
                signed_in
            }
        }
        what => what,
    };
    // An administrator acted from their own browser: not the owner's.
    let by_owner = !kind.by_administrator();
    Some(EntryView {
        what,
        when: when(e.occurred_at.unix_timestamp()),
        ip: e.event.ip.filter(|_| by_owner),
        browser: by_owner.then(|| describe_browser(e.event.user_agent.as_deref())),
    })
}

#[derive(Debug, Serialize)]
struct EntryView {
    what: &'static str,
    when: String,
    ip: Option<String>,
    browser: Option<String>,
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    // Events not shown (tokens issued to apps, anyone's registration
    // attempts with the address) must not push the shown ones out of view:
    // read page after page until enough are shown.
    let mut entries: Vec<EntryView> = Vec::new();
    let mut query = AuditQuery {
        user: Some(current.user.id.clone()),
        limit: READ,
        ..AuditQuery::default()
    };
    for _ in 0..PAGES {
        let events = state.store.search_audit_events(&query).await?;
        let full = events.len() == READ as usize;
        query.before_id = events.last().map(|e| e.id);
        entries.extend(events.into_iter().filter_map(entry));
        if !full || entries.len() >= SHOWN {
            break;
        }
    }
    entries.truncate(SHOWN);
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(Page::new("activity.html", "Recent activity").with("entries", &entries)))
}

#[cfg(test)]
mod tests {
    use super::describe;
    use crate::domain::AuditKind;

    #[test]
    fn what_an_owner_is_shown() {
        assert_eq!(describe(AuditKind::LoginSucceeded), Some("Signed in"));
        assert_eq!(
            describe(AuditKind::AdminUserUnlocked),
            Some("Changed by an administrator")
        );
        assert_eq!(
            describe(AuditKind::TokenIssued),
            None,
            "apps' tokens are not the owner's business here"
        );
        assert_eq!(AuditKind::parse("no.such_event"), None);
    }
}
