//! Users: search, create, one user's page (details, sessions, refresh
//! tokens, passkeys, audit trail) and every action on an account.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::frame::Confirm;
use super::passkeys::{self, PasskeyList};
use super::records::{ListPage, audit_rows};
use super::user_paths::{page_path, user_path};
use crate::api::{ApiError, enc};
use crate::console::Console;
use crate::error::{PageError, PageResult};
use crate::form::Fields;
use crate::signed::Signed;
use crate::views::when;

#[derive(Debug, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

fn user_row(u: &Value, tz: &jiff::tz::TimeZone) -> Value {
    let mut row = u.clone();
    if let Some(obj) = row.as_object_mut() {
        for key in ["created_at", "updated_at", "locked_until"] {
            if let Some(t) = u.get(key).and_then(Value::as_str) {
                obj.insert(key.to_owned(), Value::String(when(t, tz)));
            }
        }
    }
    row
}

pub(crate) async fn list(
    State(console): State<Console>,
    mut who: Signed,
    Query(search): Query<Search>,
) -> PageResult {
    let q = search.q.trim();
    let mut path = format!("/admin/api/users?limit=50&q={}", enc(q));
    if !search.cursor.is_empty() {
        path.push_str(&format!("&cursor={}", enc(&search.cursor)));
    }
    let page: ListPage = console.api_get(&who, &path).await?;
    let next = page
        .next_cursor
        .map(|c| format!("/admin/users?q={}&cursor={}", enc(q), enc(&c)));
    let users: Vec<Value> = page
        .items
        .iter()
        .map(|u| user_row(u, console.tz()))
        .collect();
    let data = json!({"q": q, "users": users, "next": next});
    console.page(&mut who, "users.html", "users", data).await
}

pub(crate) async fn new_form(State(console): State<Console>, mut who: Signed) -> PageResult {
    let data = json!({"values": {"email_verified": true}});
    console.page(&mut who, "user_new.html", "users", data).await
}

pub(crate) async fn create(
    State(console): State<Console>,
    mut who: Signed,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let mut body = json!({
        "email": fields.text("email"),
        "name": fields.text("name"),
        "email_verified": fields.checked("email_verified"),
        "is_admin": fields.checked("is_admin"),
    });
    if let Some(password) = fields.get("password") {
        body["password"] = json!(password);
    }
    match console
        .api_send(&who, Method::POST, "/admin/api/users", Some(&body))
        .await
    {
        Ok(user) => {
            let id = user.get("id").and_then(Value::as_str).unwrap_or_default();
            let email = user
                .get("email")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let message = format!("The account {email} was created.");
            console
                .done(&mut who, message, &format!("/admin/users/{}", enc(id)))
                .await
        }
        Err(ApiError::Refused { message, .. }) => {
            body["password"] = Value::Null;
            let data = json!({"values": body, "error": message});
            console.page(&mut who, "user_new.html", "users", data).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn show(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
) -> PageResult {
    let user_path = user_path(&id);
    let events_path = format!("/admin/api/audit-events?user_id={}&limit=25", enc(&id));
    let sessions_path = format!("{user_path}/sessions");
    let tokens_path = format!("{user_path}/refresh-tokens");
    let passkeys_path = passkeys::list_path(&id);
    // Independent reads: asked together.
    let (user, events, sessions, tokens, passkey_list) = tokio::try_join!(
        console.api_get::<Value>(&who, &user_path),
        console.api_get::<ListPage>(&who, &events_path),
        console.api_get::<ListPage>(&who, &sessions_path),
        console.api_get::<ListPage>(&who, &tokens_path),
        console.api_get::<PasskeyList>(&who, &passkeys_path),
    )?;
    let tz = console.tz();
    let sessions: Vec<Value> = sessions
        .items
        .iter()
        .map(|s| {
            json!({
                "id": s.get("id"),
                "created": s.get("created_at").and_then(Value::as_str).map(|t| when(t, tz)),
                "last_seen": s.get("last_seen_at").and_then(Value::as_str).map(|t| when(t, tz)),
                "amr": s.get("amr").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" + ")),
                "ip": s.get("ip"),
                "user_agent": s.get("user_agent"),
                "browser": s.get("browser"),
            })
        })
        .collect();
    let tokens: Vec<Value> = tokens
        .items
        .iter()
        .map(|t| {
            json!({
                "id": t.get("id"),
                "client_id": t.get("client_id"),
                "scopes": t.get("scopes").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")),
                "created": t.get("created_at").and_then(Value::as_str).map(|t| when(t, tz)),
                "last_used": t.get("last_used_at").and_then(Value::as_str).map(|t| when(t, tz)),
                "expires": t.get("expires_at").and_then(Value::as_str).map(|t| when(t, tz)),
            })
        })
        .collect();
    let is_self = user.get("id").and_then(Value::as_str) == Some(who.data.sub.as_str());
    let data = json!({
        "user": user_row(&user, tz),
        "is_self": is_self,
        "actions": actions_for(&user, is_self),
        "sessions": sessions,
        "tokens": tokens,
        "passkeys": passkeys::rows(&passkey_list, tz),
        "events": audit_rows(&events.items, tz),
        "more_events": events.next_cursor.is_some(),
    });
    console.page(&mut who, "user.html", "users", data).await
}

/// Saves the details form: name, email, verified.
pub(crate) async fn update(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let body = json!({
        "name": fields.text("name"),
        "email": fields.text("email"),
        "email_verified": fields.checked("email_verified"),
    });
    let back = page_path(&id);
    let path = user_path(&id);
    let call = (Method::PATCH, path.as_str(), Some(&body));
    console
        .perform(&mut who, call, "Saved.".into(), &back)
        .await
}

/// The account actions: what each is called, asks, and says once done.
struct Action {
    api: &'static str,
    /// `Some`: ask first, with this explanation.
    confirm: Option<&'static str>,
    button: &'static str,
    done: &'static str,
}

fn action(name: &str) -> Option<Action> {
    let a = |api, confirm, button, done| Action {
        api,
        confirm,
        button,
        done,
    };
    Some(match name {
        "disable" => a(
            "disable",
            Some(
                "They can no longer sign in; their sessions end and their applications' refresh tokens are revoked.",
            ),
            "Disable account",
            "The account is disabled.",
        ),
        "enable" => a("enable", None, "Enable account", "The account is enabled."),
        "unlock" => a(
            "unlock",
            None,
            "Unlock",
            "The account is unlocked: sign-in works again now.",
        ),
        "sign-out" => a(
            "sign-out",
            Some(
                "Every browser session ends and every refresh token is revoked; the account stays usable.",
            ),
            "Sign out everywhere",
            "Every session ended and every refresh token was revoked.",
        ),
        "send-password-reset" => a(
            "send-password-reset",
            None,
            "Send password reset mail",
            "A password reset link is on its way.",
        ),
        "reset-mfa" => a(
            "reset-mfa",
            Some(
                "Their authenticator app and recovery codes stop working; they set up two-step sign-in again at their next sign-in where it is required. They are told by mail.",
            ),
            "Reset two-step sign-in",
            "Two-step sign-in was reset.",
        ),
        "grant-admin" => a(
            "grant-admin",
            Some(
                "They can then run the identity provider from this console (after signing in with a one-time code).",
            ),
            "Make administrator",
            "They are now an administrator.",
        ),
        "revoke-admin" => a(
            "revoke-admin",
            Some("They can no longer use the console or the admin API, from their next request."),
            "Remove administrator role",
            "They are no longer an administrator.",
        ),
        _ => return None,
    })
}

/// The actions that make sense for this account now, in page order.
fn actions_for(user: &Value, is_self: bool) -> Vec<Value> {
    let flag = |k: &str| user.get(k).and_then(Value::as_bool).unwrap_or(false);
    let locked = user.get("locked_until").is_some_and(|v| !v.is_null());
    let mut names = Vec::new();
    if locked {
        names.push("unlock");
    }
    if flag("disabled") {
        names.push("enable");
    } else {
        names.extend(["send-password-reset", "sign-out"]);
    }
    if flag("mfa_enabled") {
        names.push("reset-mfa");
    }
    // The API refuses these on oneself (409): not offered.
    if !is_self {
        names.push(if flag("is_admin") {
            "revoke-admin"
        } else {
            "grant-admin"
        });
        if !flag("disabled") {
            names.push("disable");
        }
    }
    names
        .into_iter()
        .filter_map(|n| {
            action(n).map(|a| json!({"name": n, "label": a.button, "danger": a.confirm.is_some()}))
        })
        .collect()
}

pub(crate) async fn act(
    State(console): State<Console>,
    mut who: Signed,
    Path((id, name)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let action = action(&name).ok_or_else(|| PageError::NotFound("no such action".into()))?;
    let back = page_path(&id);
    if let Some(why) = action.confirm
        && !fields.confirmed()
    {
        let user: Value = console.api_get(&who, &user_path(&id)).await?;
        let email = user
            .get("email")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ask = Confirm {
            nav: "users",
            title: format!("{} — {email}?", action.button),
            message: why.to_owned(),
            action: format!("{back}/{name}"),
            button: action.button,
            cancel: back.clone(),
        };
        return console.confirm(&mut who, ask, &fields).await;
    }
    let path = format!("{}/{}", user_path(&id), action.api);
    let call = (Method::POST, path.as_str(), None);
    console
        .perform(&mut who, call, action.done.into(), &back)
        .await
}

/// What can be ended one at a time on a user's page.
struct One {
    /// The admin API's collection under the user, and the page's action.
    collection: &'static str,
    verb: &'static str,
    title: &'static str,
    message: &'static str,
    button: &'static str,
    done: &'static str,
}

const SESSION: One = One {
    collection: "sessions",
    verb: "end",
    title: "End this session?",
    message: "That browser is signed out at its next request.",
    button: "End session",
    done: "The session ended.",
};

const REFRESH_TOKEN: One = One {
    collection: "refresh-tokens",
    verb: "revoke",
    title: "Revoke this refresh token?",
    message: "The application can no longer renew its access for this user; they sign in again there.",
    button: "Revoke",
    done: "The refresh token was revoked.",
};

async fn end_one(
    console: &Console,
    mut who: Signed,
    (id, item): (String, String),
    one: One,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let back = page_path(&id);
    if !fields.confirmed() {
        let ask = Confirm {
            nav: "users",
            title: one.title.into(),
            message: one.message.into(),
            action: format!("{back}/{}/{}/{}", one.collection, enc(&item), one.verb),
            button: one.button,
            cancel: back.clone(),
        };
        return console.confirm(&mut who, ask, &fields).await;
    }
    let path = format!("{}/{}/{}", user_path(&id), one.collection, enc(&item));
    let call = (Method::DELETE, path.as_str(), None);
    console
        .perform(&mut who, call, one.done.into(), &back)
        .await
}

pub(crate) async fn end_session(
    State(console): State<Console>,
    who: Signed,
    Path(ids): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    end_one(&console, who, ids, SESSION, fields).await
}

pub(crate) async fn revoke_refresh_token(
    State(console): State<Console>,
    who: Signed,
    Path(ids): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    end_one(&console, who, ids, REFRESH_TOKEN, fields).await
}
