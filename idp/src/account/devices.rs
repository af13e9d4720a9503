//! `/account/sessions`: the browsers signed in to the account, for their
//! owner to look at and sign out one by one (a lost laptop, a shared
//! computer) or all but the one in hand. Apps holding refresh tokens are
//! on `/account/grants`.
//!
//! A session is named by its handle (a hash of its id): the ids of the
//! other sessions, bearer credentials, never reach a page.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::forms::FlowQuery;
use crate::domain::AuditKind;
use crate::web::client_meta::ClientMeta;
use crate::web::session::{self, CurrentUser, UserSession};
use crate::web::ui::{FlashKind, Page, Ui};
use crate::web::{AppError, AppState, audit};

/// What the form asks to end: one session's handle, or every other one.
const OTHERS: &str = "others";

#[derive(Debug, Serialize)]
struct DeviceView {
    handle: String,
    /// The browser this page is shown in.
    current: bool,
    browser: String,
    ip: Option<String>,
    signed_in: String,
    last_seen: String,
    with_code: bool,
    with_passkey: bool,
}

impl DeviceView {
    fn of(s: UserSession, current: &str) -> Self {
        Self {
            current: s.handle == current,
            browser: describe_browser(s.data.user_agent.as_deref()),
            ip: s.data.ip,
            signed_in: when(s.data.created),
            last_seen: when(s.data.last_seen),
            with_code: s.data.amr.iter().any(|m| m == "otp"),
            with_passkey: s.data.amr.iter().any(|m| m == "pop"),
            handle: s.handle,
        }
    }
}

/// A moment as the account pages show it: "23 November 2026, 04:54 UTC".
pub(super) fn when(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[day padding:none] [month repr:long] [year], [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// "Firefox on Linux", from a user agent; what it says when nothing is known.
pub fn describe_browser(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent.filter(|u| !u.trim().is_empty()) else {
        return "Unknown browser".to_owned();
    };
    // Order matters: Edge and Opera also say Chrome; Chrome also says Safari.
    const BROWSERS: &[(&str, &str)] = &[
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: &[(&str, &str)] = &[
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| ua.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(BROWSERS), find(SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        // Not a browser we know: what it calls itself, shortened.
        _ => ua.chars().take(60).collect(),
    }
}

async fn devices_page(
    state: &AppState,
    ui: Ui,
    user_id: &crate::domain::UserId,
    current: &str,
    flash: Option<(FlashKind, &str)>,
) -> Result<Response, AppError> {
    let devices: Vec<DeviceView> = session::list(state, user_id)
        .await?
        .into_iter()
        .map(|s| DeviceView::of(s, current))
        .collect();
    let others = devices.iter().filter(|d| !d.current).count();
    let mut page = Page::new("sessions.html", "Signed-in devices")
        .with("devices", &devices)
        .with("others", &others);
    if let Some((kind, message)) = flash {
        page = page.flash(kind, message);
    }
    Ok(ui.render(page))
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<FlowQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let user_id = current.user.id.clone();
    let this = session::handle(&current.session_id);
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    devices_page(&state, ui, &user_id, &this, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct EndForm {
    /// A session's handle, or `others`.
    end: String,
    csrf_token: String,
    client_id: String,
}

pub async fn end(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<EndForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = body.map(|Form(f)| f).unwrap_or_default();
    let user_id = current.user.id.clone();
    let this = session::handle(&current.session_id);
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let flash = if f.end == OTHERS {
        let ended = session::end_all_but(&state, &user_id, &this).await?;
        if ended > 0 {
            let details = json!({ "count": ended });
            audit::record(
                &state,
                &meta,
                AuditKind::SessionOthersEnded,
                Some(&user_id),
                None,
                details,
            )
            .await;
        }
        (FlashKind::Success, "Every other device is signed out.")
    } else if f.end != this && session::end_by_handle(&state, &user_id, &f.end).await? {
        let details = json!({ "session": f.end });
        audit::record(
            &state,
            &meta,
            AuditKind::SessionEnded,
            Some(&user_id),
            None,
            details,
        )
        .await;
        (FlashKind::Success, "That device is signed out.")
    } else {
        // Gone already (it expired, or was signed out elsewhere), or this
        // very browser, which signs out with the Sign out button.
        (FlashKind::Error, "That device is no longer signed in here.")
    };
    devices_page(&state, ui, &user_id, &this, Some(flash)).await
}

#[cfg(test)]
mod tests {
    use super::describe_browser;

    #[test]
    fn browsers_are_named_by_what_people_call_them() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (Linux; Android 15) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("idp-black-box-tests/1.0", "idp-black-box-tests/1.0"),
        ];
        for (ua, want) in cases {
            assert_eq!(describe_browser(Some(ua)), want, "{ua}");
        }
        assert_eq!(describe_browser(None), "Unknown browser");
        assert_eq!(describe_browser(Some("  ")), "Unknown browser");
    }
}
