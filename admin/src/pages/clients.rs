//! Relying applications: list, register, edit, rotate the secret (shown
//! once), delete.

use axum::extract::{Path, State};
use axum::http::Method;
use serde_json::{Value, json};

use super::records::ListPage;
use super::{Confirm, PageResult};
use crate::Console;
use crate::api::{ApiError, enc};
use crate::form::Fields;
use crate::session::Signed;
use crate::views::when;

/// The choices the forms offer.
fn choices() -> Value {
    json!({
        "grants": ["authorization_code", "refresh_token", "client_credentials"],
        "algs": ["RS256", "ES256", "EdDSA"],
    })
}

fn client_row(c: &Value) -> Value {
    let mut row = c.clone();
    if let Some(obj) = row.as_object_mut() {
        for key in ["created_at", "updated_at"] {
            if let Some(t) = c.get(key).and_then(Value::as_str) {
                obj.insert(key.to_owned(), Value::String(when(t)));
            }
        }
        // What the form's text areas show: one entry per line.
        for key in ["redirect_uris", "post_logout_redirect_uris"] {
            let lines: Vec<&str> = c
                .get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            obj.insert(format!("{key}_text"), Value::String(lines.join("\n")));
        }
        let scopes: Vec<&str> = c
            .get("scopes")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        obj.insert("scopes_text".into(), Value::String(scopes.join(" ")));
    }
    row
}

/// The members both forms share, as the API takes them.
fn settings(fields: &Fields) -> Value {
    let theme = fields.get("theme").map(str::to_owned);
    json!({
        "name": fields.text("name"),
        "redirect_uris": fields.words("redirect_uris"),
        "post_logout_redirect_uris": fields.words("post_logout_redirect_uris"),
        "first_party": fields.checked("first_party"),
        "theme": theme,
        "grant_types": fields.all("grant_types"),
        "scopes": fields.words("scopes"),
        "id_token_alg": fields.get("id_token_alg").unwrap_or("RS256"),
        "require_mfa": fields.checked("require_mfa"),
    })
}

/// The form's values again, after a refusal.
fn values(fields: &Fields) -> Value {
    json!({
        "client_id": fields.text("client_id"),
        "name": fields.text("name"),
        "public": fields.checked("public"),
        "redirect_uris_text": fields.text("redirect_uris"),
        "post_logout_redirect_uris_text": fields.text("post_logout_redirect_uris"),
        "first_party": fields.checked("first_party"),
        "theme": fields.text("theme"),
        "grant_types": fields.all("grant_types"),
        "scopes_text": fields.text("scopes"),
        "id_token_alg": fields.get("id_token_alg").unwrap_or("RS256"),
        "require_mfa": fields.checked("require_mfa"),
    })
}

fn api_path(id: &str) -> String {
    format!("/admin/api/clients/{}", enc(id))
}

fn page_path(id: &str) -> String {
    format!("/admin/clients/{}", enc(id))
}

pub(crate) async fn list(State(console): State<Console>, mut who: Signed) -> PageResult {
    let page: ListPage = console.api_get(&who, "/admin/api/clients").await?;
    let clients: Vec<Value> = page.items.iter().map(client_row).collect();
    console
        .page(
            &mut who,
            "clients.html",
            "clients",
            json!({"clients": clients}),
        )
        .await
}

pub(crate) async fn new_form(State(console): State<Console>, mut who: Signed) -> PageResult {
    let values = json!({
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes_text": "openid profile email offline_access",
        "id_token_alg": "RS256",
    });
    let data = json!({"values": values, "choices": choices()});
    console
        .page(&mut who, "client_new.html", "clients", data)
        .await
}

pub(crate) async fn create(
    State(console): State<Console>,
    mut who: Signed,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let mut body = settings(&fields);
    body["client_id"] = json!(fields.text("client_id"));
    body["public"] = json!(fields.checked("public"));
    match console
        .api_send(&who, Method::POST, "/admin/api/clients", Some(&body))
        .await
    {
        Ok(answer) => secret_page(&console, &mut who, &answer, true).await,
        Err(ApiError::Refused { message, .. }) => {
            let data = json!({"values": values(&fields), "choices": choices(), "error": message});
            console
                .page(&mut who, "client_new.html", "clients", data)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The registration (or rotation) answer: the secret, shown this once.
async fn secret_page(
    console: &Console,
    who: &mut Signed,
    answer: &Value,
    created: bool,
) -> PageResult {
    let client = answer.get("client").cloned().unwrap_or(Value::Null);
    let data = json!({
        "client": client_row(&client),
        "secret": answer.get("client_secret"),
        "created": created,
    });
    console.page(who, "secret.html", "clients", data).await
}

pub(crate) async fn show(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
) -> PageResult {
    let client: Value = console.api_get(&who, &api_path(&id)).await?;
    let data = json!({
        "client": client_row(&client),
        "values": client_row(&client),
        "choices": choices(),
        "builtin": id == console.config().client_id,
    });
    console.page(&mut who, "client.html", "clients", data).await
}

pub(crate) async fn update(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let back = page_path(&id);
    match console
        .api_send(
            &who,
            Method::PATCH,
            &api_path(&id),
            Some(&settings(&fields)),
        )
        .await
    {
        Ok(_) => console.done(&mut who, "Saved.".into(), &back).await,
        Err(ApiError::Refused { status, message }) if status != 404 => {
            let client: Value = console.api_get(&who, &api_path(&id)).await?;
            let data = json!({
                "client": client_row(&client),
                "values": values(&fields),
                "choices": choices(),
                "error": message,
            });
            console.page(&mut who, "client.html", "clients", data).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn rotate(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let back = page_path(&id);
    if !fields.confirmed() {
        let ask = Confirm {
            nav: "clients",
            title: format!("Rotate the secret of {id}?"),
            message: "A new secret is shown once. The current one stops working at once: update the application right after.".into(),
            action: format!("{back}/rotate-secret"),
            button: "Rotate secret",
            cancel: back.clone(),
        };
        return console.confirm(&mut who, ask, &fields).await;
    }
    let path = format!("{}/rotate-secret", api_path(&id));
    match console.api_send(&who, Method::POST, &path, None).await {
        Ok(answer) => secret_page(&console, &mut who, &answer, false).await,
        Err(ApiError::Refused { message, .. }) => console.refused(&mut who, message, &back).await,
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn delete(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let back = page_path(&id);
    if !fields.confirmed() {
        let ask = Confirm {
            nav: "clients",
            title: format!("Delete {id}?"),
            message: "The application can no longer sign anyone in; its users' consents and refresh tokens are removed. This cannot be undone.".into(),
            action: format!("{back}/delete"),
            button: "Delete client",
            cancel: back.clone(),
        };
        return console.confirm(&mut who, ask, &fields).await;
    }
    match console
        .api_send(&who, Method::DELETE, &api_path(&id), None)
        .await
    {
        Ok(_) => {
            let message = format!("The client {id} was deleted.");
            console.done(&mut who, message, "/admin/clients").await
        }
        Err(ApiError::Refused { status, message }) if status != 404 => {
            console.refused(&mut who, message, &back).await
        }
        Err(e) => Err(e.into()),
    }
}
