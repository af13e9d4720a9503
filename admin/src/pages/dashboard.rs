//! The dashboard: counts, recent sign-in failures and locks, failed mail.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::records::{ListPage, audit_rows, mail_rows};
use crate::console::Console;
use crate::error::{PageError, PageResult};
use crate::signed::Signed;

pub(crate) async fn redirect_to_slash() -> Response {
    Redirect::permanent("/admin/").into_response()
}

/// A console page that does not exist: the console's 404 page (the admin
/// API keeps its JSON 404 under /admin/api/).
pub(crate) async fn not_found() -> PageError {
    PageError::NotFound("There is no such page in the console.".into())
}

pub(crate) async fn show(State(console): State<Console>, mut who: Signed) -> PageResult {
    // Independent reads: asked together.
    let (summary, failures, locks, mail) = tokio::try_join!(
        console.api_get::<Value>(&who, "/admin/api/summary"),
        console.api_get::<ListPage>(&who, "/admin/api/audit-events?type=login.failed&limit=8"),
        console.api_get::<ListPage>(&who, "/admin/api/audit-events?type=account.locked&limit=8"),
        console.api_get::<ListPage>(&who, "/admin/api/mail?status=failed&limit=8"),
    )?;
    let tz = console.tz();
    let data = json!({
        "summary": summary,
        "failures": audit_rows(&failures.items, tz),
        "locks": audit_rows(&locks.items, tz),
        "failed_mail": mail_rows(&mail.items, tz),
    });
    console
        .page(&mut who, "dashboard.html", "dashboard", data)
        .await
}
