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
fn describe(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "login.succeeded" => "Signed in",
        "login.failed" => "Wrong password entered at sign-in",
        "login.refused_locked" | "mfa.refused_locked" => "Sign-in refused while locked",
        "account.locked" => "Sign-in locked after repeated failures",
        "mfa.failed" => "Wrong code entered at sign-in",
        "mfa.recovery_code_used" => "Signed in with a recovery code",
        "mfa.enrolled" => "Two-step sign-in turned on",
        "mfa.disabled" => "Two-step sign-in turned off",
        "mfa.disable_failed" => "Refused: turning two-step sign-in off",
        "mfa.reset" => "Two-step sign-in removed by an administrator",
        "mfa.recovery_codes_regenerated" => "New recovery codes made",
        "mfa.recovery_codes_failed" => "Refused: making new recovery codes (wrong code)",
        "mfa.enrol_failed" => "Refused: turning two-step sign-in on (wrong code)",
        "reauth.succeeded" => "Confirmed it was you",
        "reauth.failed" => "Refused: confirming it was you",
        "password_change.succeeded" => "Password changed",
        "password_change.failed" => "Refused: changing the password (wrong current password)",
        "password_reset.requested" => "Password reset link asked for",
        "password_reset.completed" => "Password reset with an emailed link",
        "email.verified" => "Email address confirmed",
        "email_change.requested" => "Change of email address asked for",
        "email_change.failed" => "Refused: changing the email address (wrong password)",
        "email_change.confirmed" => "Email address changed",
        "profile.name_changed" => "Name changed",
        "session.ended" => "A device was signed out",
        "session.others_ended" => "Every other device was signed out",
        "consent.granted" => "An app was allowed to use the account",
        "consent.revoked" => "An app's access was removed",
        k if k.starts_with("admin.") => "Changed by an administrator",
        _ => return None,
    })
}

/// How an event reads on the page, if it is shown.
fn entry(e: RecordedAuditEvent) -> Option<EntryView> {
    let what = describe(&e.event.kind)?;
    // An administrator acted from their own browser: not the owner's.
    let by_owner = !e.event.kind.starts_with("admin.") && e.event.kind != "mfa.reset";
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

    #[test]
    fn what_an_owner_is_shown() {
        assert_eq!(describe("login.succeeded"), Some("Signed in"));
        assert_eq!(
            describe("admin.user_unlocked"),
            Some("Changed by an administrator")
        );
        assert_eq!(
            describe("token.issued"),
            None,
            "apps' tokens are not the owner's business here"
        );
        assert_eq!(describe("no.such_event"), None);
    }
}
