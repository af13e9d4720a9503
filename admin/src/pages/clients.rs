//! Relying applications: list, register, edit, rotate the secret (shown
//! once), delete.

use axum::extract::{Path, State};
use axum::http::Method;
use serde_json::{Value, json};

use super::frame::Confirm;
use super::records::ListPage;
use crate::api::{ApiError, enc};
use crate::console::Console;
use crate::error::PageResult;
use crate::form::Fields;
use crate::signed::Signed;
use crate::views::when;

/// The grant types the forms offer.
const GRANTS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// A theme installed on the provider, as the admin API lists it.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub(crate) struct Theme {
    name: String,
    display_name: String,
}

#[derive(Debug, serde::Deserialize)]
struct ThemeList {
    items: Vec<Theme>,
}

/// The choices the forms offer: grants, algorithms, and the themes
/// installed on the provider (a select, not a free text box).
fn choices(themes: &[Theme]) -> Value {
    json!({
        "grants": GRANTS,
        "algs": ["RS256", "ES256", "EdDSA"],
        "themes": themes,
    })
}

async fn themes(console: &Console, who: &Signed) -> Result<Vec<Theme>, ApiError> {
    let list: ThemeList = console.api_get(who, "/admin/api/themes").await?;
    Ok(list.items)
}

/// The forms' fields as administrators name them (the admin API names
/// them by member: `client_id`, `redirect_uris`, ...).
const FIELDS: [(&str, &str); 10] = [
    ("client_id", "Client ID"),
    ("name", "Name"),
    ("redirect_uris", "Redirect URIs"),
    ("post_logout_redirect_uris", "Post-logout redirect URIs"),
    ("grant_types", "Grant types"),
    ("scopes", "Scopes"),
    ("theme", "Theme"),
    ("id_token_alg", "ID token algorithm"),
    ("public", "Public client"),
    ("external_id_claim", "External ID claim"),
];

fn field_error(field: &str, message: impl Into<String>) -> Value {
    let label = FIELDS
        .iter()
        .find(|(f, _)| *f == field)
        .map_or(field, |(_, l)| l);
    json!({"field": field, "label": label, "message": message.into()})
}

/// A refusal of the admin API as a form error: its member name
/// (`client_id: ...`, `a public client cannot use client_credentials`)
/// becomes the field's human name.
fn api_error(message: &str) -> Value {
    if let Some((member, rest)) = message.split_once(": ")
        && FIELDS.iter().any(|(f, _)| *f == member)
    {
        return field_error(member, rest);
    }
    let lower = message.to_ascii_lowercase();
    let field = FIELDS
        .iter()
        .map(|(f, _)| *f)
        .find(|f| lower.starts_with(&format!("{f} ")))
        .or_else(|| {
            [
                ("client id", "client_id"),
                ("redirect uri", "redirect_uris"),
                ("grant type", "grant_types"),
                ("client_credentials", "grant_types"),
                ("scope", "scopes"),
                ("theme", "theme"),
                ("client name", "name"),
            ]
            .into_iter()
            .find(|(word, _)| lower.contains(word))
            .map(|(_, f)| f)
        });
    match field {
        Some(f) => field_error(f, message),
        None => json!({"field": "", "label": "", "message": message}),
    }
}

/// Every problem the console can see in a client form, at once (the API
/// stops at the first and stays the judge: these mirror its rules so an
/// administrator fixes the whole form in one go).
fn check(fields: &Fields, creating: bool, themes: &[Theme]) -> Vec<Value> {
    let mut errors = Vec::new();
    if creating {
        let id = fields.text("client_id");
        let ok = (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
        if id.is_empty() {
            errors.push(field_error("client_id", "Enter a client ID."));
        } else if !ok {
            errors.push(field_error(
                "client_id",
                "Use 1 to 64 letters, digits, “.”, “_”, “~” or “-”.",
            ));
        }
    }
    let name = fields.text("name");
    if name.is_empty() {
        errors.push(field_error("name", "Enter a name."));
    } else if name.chars().count() > 200 {
        errors.push(field_error("name", "Use at most 200 characters."));
    }
    let grants = fields.all("grant_types");
    let redirects = fields.words("redirect_uris");
    for (field, list) in [
        ("redirect_uris", &redirects),
        (
            "post_logout_redirect_uris",
            &fields.words("post_logout_redirect_uris"),
        ),
    ] {
        let bad: Vec<&str> = list
            .iter()
            .map(String::as_str)
            .filter(|u| !redirect_uri_ok(u))
            .collect();
        if !bad.is_empty() {
            errors.push(field_error(
                field,
                format!(
                    "{} must be absolute, without a fragment, and use https (http only on localhost or 127.0.0.1, or an app's own scheme such as com.example.app:/cb).",
                    bad.join(", ")
                ),
            ));
        }
    }
    if grants.is_empty() {
        errors.push(field_error(
            "grant_types",
            "Choose at least one grant type.",
        ));
    } else if let Some(g) = grants.iter().find(|g| !GRANTS.contains(&g.as_str())) {
        errors.push(field_error(
            "grant_types",
            format!("{g} is not a grant type."),
        ));
    } else if creating
        && fields.checked("public")
        && grants.iter().any(|g| g == "client_credentials")
    {
        errors.push(field_error(
            "grant_types",
            "A public client cannot use client_credentials: it has no secret.",
        ));
    }
    if grants.iter().any(|g| g == "authorization_code") && redirects.is_empty() {
        errors.push(field_error(
            "redirect_uris",
            "A client using authorization_code needs at least one redirect URI.",
        ));
    }
    if let Some(theme) = fields.get("theme")
        && !themes.iter().any(|t| t.name == theme)
    {
        errors.push(field_error(
            "theme",
            format!("No theme named {theme} is installed."),
        ));
    }
    errors
}

/// The admin API's rule for redirect URIs (RFC 6749 3.1.2, RFC 8252 7.1).
fn redirect_uri_ok(raw: &str) -> bool {
    let Ok(url) = url::Url::parse(raw) else {
        return false;
    };
    if url.fragment().is_some() {
        return false;
    }
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        scheme => scheme.contains('.'),
    }
}

/// The page data of a form shown again with its errors.
fn with_errors(mut data: Value, errors: Vec<Value>) -> Value {
    let by_field: serde_json::Map<String, Value> = errors
        .iter()
        .filter_map(|e| {
            let field = e.get("field")?.as_str()?;
            (!field.is_empty()).then(|| (field.to_owned(), e["message"].clone()))
        })
        .collect();
    data["errors"] = Value::Array(errors);
    data["field_errors"] = Value::Object(by_field);
    data
}

fn client_row(c: &Value, tz: &jiff::tz::TimeZone) -> Value {
    let mut row = c.clone();
    if let Some(obj) = row.as_object_mut() {
        for key in ["created_at", "updated_at"] {
            if let Some(t) = c.get(key).and_then(Value::as_str) {
                obj.insert(key.to_owned(), Value::String(when(t, tz)));
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
        // Empty: no claim (null stops sending it).
        "external_id_claim": fields.get("external_id_claim"),
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
        "external_id_claim": fields.text("external_id_claim"),
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
    let tz = console.tz();
    let clients: Vec<Value> = page.items.iter().map(|c| client_row(c, tz)).collect();
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
    let themes = themes(&console, &who).await?;
    let data = json!({"values": values, "choices": choices(&themes)});
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
    let themes = themes(&console, &who).await?;
    let form_again = |errors: Vec<Value>| {
        with_errors(
            json!({"values": values(&fields), "choices": choices(&themes)}),
            errors,
        )
    };
    let errors = check(&fields, true, &themes);
    if !errors.is_empty() {
        let data = form_again(errors);
        return console
            .page(&mut who, "client_new.html", "clients", data)
            .await;
    }
    let mut body = settings(&fields);
    body["client_id"] = json!(fields.text("client_id"));
    body["public"] = json!(fields.checked("public"));
    match console
        .api_send(&who, Method::POST, "/admin/api/clients", Some(&body))
        .await
    {
        Ok(answer) => secret_page(&console, &mut who, &answer, true).await,
        Err(ApiError::Refused { message, .. }) => {
            let data = form_again(vec![api_error(&message)]);
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
        "client": client_row(&client, console.tz()),
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
    let path = api_path(&id);
    let (client, themes) = tokio::try_join!(
        console.api_get::<Value>(&who, &path),
        themes(&console, &who),
    )?;
    let tz = console.tz();
    let data = json!({
        "client": client_row(&client, tz),
        "values": client_row(&client, tz),
        "choices": choices(&kept_theme(themes, &client)),
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
    let path = api_path(&id);
    let (client, themes) = tokio::try_join!(
        console.api_get::<Value>(&who, &path),
        themes(&console, &who),
    )?;
    let themes = kept_theme(themes, &client);
    let tz = console.tz();
    let form_again = |errors: Vec<Value>| {
        with_errors(
            json!({
                "client": client_row(&client, tz),
                "values": values(&fields),
                "choices": choices(&themes),
                "builtin": id == console.config().client_id,
            }),
            errors,
        )
    };
    let errors = check(&fields, false, &themes);
    if !errors.is_empty() {
        let data = form_again(errors);
        return console.page(&mut who, "client.html", "clients", data).await;
    }
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
            let data = form_again(vec![api_error(&message)]);
            console.page(&mut who, "client.html", "clients", data).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A client's theme removed from the disk since stays a choice (marked),
/// so that saving other settings does not change it.
fn kept_theme(mut themes: Vec<Theme>, client: &Value) -> Vec<Theme> {
    if let Some(current) = client.get("theme").and_then(Value::as_str)
        && !themes.iter().any(|t| t.name == current)
    {
        themes.push(Theme {
            name: current.to_owned(),
            display_name: format!("{current} (not installed)"),
        });
    }
    themes
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
