//! A user's passkeys on their page (issue 16): each by its owner's name,
//! when it was added and last used, and a button to remove one (a lost or
//! stolen device). The admin API does the removal and audits it
//! (`admin.passkey_removed`); the console never sees a credential.

use axum::extract::{Path, State};
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::frame::Confirm;
use super::user_paths::{page_path, user_path};
use crate::api::enc;
use crate::console::Console;
use crate::error::{PageError, PageResult};
use crate::form::Fields;
use crate::signed::Signed;
use crate::views::when;

/// `GET /admin/api/users/{id}/passkeys`: not paged, every passkey at once.
#[derive(Debug, Deserialize)]
pub(crate) struct PasskeyList {
    pub items: Vec<Value>,
}

pub(super) fn list_path(user: &str) -> String {
    format!("{}/passkeys", user_path(user))
}

/// The list as the user's page shows it: dates in the console's zone.
pub(super) fn rows(list: &PasskeyList, tz: &jiff::tz::TimeZone) -> Vec<Value> {
    let at = |p: &Value, key: &str| p.get(key).and_then(Value::as_str).map(|t| when(t, tz));
    list.items
        .iter()
        .map(|p| {
            json!({
                "id": p.get("id"),
                "name": p.get("name"),
                "created": at(p, "created_at"),
                "last_used": at(p, "last_used_at"),
            })
        })
        .collect()
}

/// Removes one passkey of the user, after a confirmation that names it.
/// A passkey that is not this user's is the console's "Not found" page
/// when asked; once confirmed, the API's refusal is said on the user's
/// page (it may have gone in the meantime). Nothing is removed either way.
pub(crate) async fn remove(
    State(console): State<Console>,
    mut who: Signed,
    Path((id, passkey)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let back = page_path(&id);
    if !fields.confirmed() {
        let (user_path, list_path) = (user_path(&id), list_path(&id));
        let (user, list) = tokio::try_join!(
            console.api_get::<Value>(&who, &user_path),
            console.api_get::<PasskeyList>(&who, &list_path),
        )?;
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let Some(found) = list.items.iter().find(|p| text(p, "id") == passkey) else {
            return Err(PageError::NotFound(
                "this user has no passkey with this id".into(),
            ));
        };
        let ask = Confirm {
            nav: "users",
            title: format!(
                "Remove the passkey “{}” of {}?",
                text(found, "name"),
                text(&user, "email")
            ),
            message: "It can no longer sign in to this account, even if it is the account's last way in: the owner then signs in again with a password reset.".into(),
            action: format!("{back}/passkeys/{}/remove", enc(&passkey)),
            button: "Remove passkey",
            cancel: back.clone(),
        };
        return console.confirm(&mut who, ask, &fields).await;
    }
    let path = format!("{}/{}", list_path(&id), enc(&passkey));
    let call = (Method::DELETE, path.as_str(), None);
    console
        .perform(&mut who, call, "The passkey was removed.".into(), &back)
        .await
}
