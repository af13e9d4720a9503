//! `/account/passkeys`: the account's passkeys (name, when added, when last
//! used), renaming and removing them. Adding one is `register`, driven by
//! the page's script. Removing needs a recent sign-in like every change to
//! how the account signs in; the last way to sign in (the only passkey of
//! an account without a password) cannot be removed.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::domain::AuditKind;
use crate::store::{StoredPasskey, User};
use crate::web::client_meta::ClientMeta;
use crate::web::form::form;
use crate::web::session::{self, CurrentUser};
use crate::web::ui::{FlashKind, Page, Ui, urlencode};
use crate::web::{AppError, AppState, audit, paths};

/// The longest name a passkey can have, in characters.
const NAME_MAX: usize = 64;

/// A passkey's name as typed: trimmed, "Passkey" when empty; refused when
/// too long or with control characters.
pub fn passkey_name(typed: &str) -> Result<String, &'static str> {
    let name = typed.trim();
    if name.chars().count() > NAME_MAX {
        return Err("Use at most 64 characters for the name.");
    }
    if name.chars().any(char::is_control) {
        return Err("The name cannot contain control characters.");
    }
    Ok(if name.is_empty() { "Passkey" } else { name }.to_owned())
}

/// "Confirm it's you", coming back here. The rule (how recent a sign-in
/// must be) is `session::signed_in_recently`; the page is the authenticator
/// app's (`/account/reauth`), which returns to any of the account's pages.
pub fn confirm_path(client_id: Option<&str>) -> String {
    let mut to = format!(
        "{}?return_to={}",
        paths::ACCOUNT_REAUTH,
        urlencode(paths::ACCOUNT_PASSKEYS)
    );
    if let Some(id) = client_id.filter(|id| !id.is_empty()) {
        to.push_str(&format!("&client_id={}", urlencode(id)));
    }
    to
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ThemeQuery {
    client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PasskeyForm {
    name: String,
    csrf_token: String,
    client_id: String,
}

#[derive(Debug, Serialize)]
struct PasskeyView {
    id: String,
    name: String,
    added: String,
    last_used: String,
}

fn day(t: OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[day padding:none] [month repr:long] [year]"
    ))
    .unwrap_or_default()
}

/// The page as it stands now.
async fn list_page(state: &AppState, user: &User) -> Result<Page, AppError> {
    let passkeys: Vec<PasskeyView> = state
        .store
        .passkeys(&user.id)
        .await?
        .into_iter()
        .map(|p: StoredPasskey| PasskeyView {
            id: p.id,
            name: p.name,
            added: day(p.created_at),
            last_used: p.last_used_at.map(day).unwrap_or_default(),
        })
        .collect();
    let available = super::ceremony::relying_party(state).is_some();
    Ok(Page::new("passkeys.html", "Passkeys")
        .with("passkeys", &passkeys)
        .with("passkeys_available", &available)
        .with("name_max", &NAME_MAX))
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    Query(q): Query<ThemeQuery>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, q.client_id.as_deref(), Some(current)).await?;
    Ok(ui.render(list_page(&state, &user).await?))
}

/// One of the user's passkeys by the id in the path.
async fn find(state: &AppState, user: &User, id: &str) -> Result<Option<StoredPasskey>, AppError> {
    let all = state.store.passkeys(&user.id).await?;
    Ok(all.into_iter().find(|p| p.id == id))
}

fn not_found(page: Page) -> Page {
    page.flash(FlashKind::Error, "That passkey is not on your account.")
        .status(StatusCode::NOT_FOUND)
}

pub async fn rename(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    Path(id): Path<String>,
    current: CurrentUser,
    body: Result<Form<PasskeyForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let name = match passkey_name(&f.name) {
        Ok(name) => name,
        Err(message) => {
            let page = list_page(&state, &user)
                .await?
                .flash(FlashKind::Error, message)
                .invalid();
            return Ok(ui.render(page));
        }
    };
    if !state.store.rename_passkey(&user.id, &id, &name).await? {
        return Ok(ui.render(not_found(list_page(&state, &user).await?)));
    }
    audit::record(
        &state,
        &meta,
        AuditKind::PasskeyRenamed,
        Some(&user.id),
        None,
        json!({ "passkey_id": id, "name": name }),
    )
    .await;
    let page = list_page(&state, &user)
        .await?
        .flash(FlashKind::Success, "Passkey renamed.");
    Ok(ui.render(page))
}

pub async fn remove(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    Path(id): Path<String>,
    current: CurrentUser,
    body: Result<Form<PasskeyForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = form(body);
    let user = current.user.clone();
    let recent = session::signed_in_recently(&state, &current.session);
    let ui = Ui::new(&state, jar, &headers, Some(&f.client_id), Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    // A stolen session alone must not change how the account signs in.
    if !recent {
        return Ok(Redirect::to(&confirm_path(ui.client_id())).into_response());
    }
    let Some(passkey) = find(&state, &user, &id).await? else {
        return Ok(ui.render(not_found(list_page(&state, &user).await?)));
    };
    // Without a password, the last passkey is the only way in (the store
    // reads the password and the count as they are when it removes).
    if !state.store.remove_passkey(&user.id, &id, true).await? {
        let page = list_page(&state, &user)
            .await?
            .flash(
                FlashKind::Error,
                "This passkey is the only way you can sign in, so it cannot be removed. Add another passkey first.",
            )
            .status(StatusCode::CONFLICT);
        return Ok(ui.render(page));
    }
    audit::record(
        &state,
        &meta,
        AuditKind::PasskeyRemoved,
        Some(&user.id),
        None,
        json!({ "passkey_id": passkey.id, "name": passkey.name }),
    )
    .await;
    let page = list_page(&state, &user).await?.flash(
        FlashKind::Success,
        format!("Passkey “{}” removed.", passkey.name),
    );
    Ok(ui.render(page))
}

#[cfg(test)]
mod tests {
    use super::passkey_name;

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(passkey_name("  Laptop "), Ok("Laptop".to_owned()));
        assert_eq!(passkey_name(""), Ok("Passkey".to_owned()));
        assert!(passkey_name(&"x".repeat(65)).is_err());
        assert!(passkey_name("a\u{0}b").is_err());
    }
}
