//! The console's look: tera templates and one stylesheet, compiled into the
//! binary (the console carries its own theme; the portals' themes are for
//! customers), loaded once, autoescaped.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::error::{BuildError, PageError};

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../templates/", $name)))),*]
    };
}

/// Every template, by name.
pub(crate) const TEMPLATES: &[(&str, &str)] = templates!(
    "base.html",
    "partials/audit_table.html",
    "partials/pager.html",
    "partials/client_fields.html",
    "partials/form_errors.html",
    "dashboard.html",
    "users.html",
    "user.html",
    "user_new.html",
    "clients.html",
    "client.html",
    "client_new.html",
    "secret.html",
    "audit.html",
    "mail.html",
    "keys.html",
    "confirm.html",
    "error.html",
    "signed_out.html",
);

const STYLESHEET: &str = include_str!("../static/console.css");
const FAVICON: &str = include_str!("../static/favicon.svg");

pub(crate) struct Views {
    tera: tera::Tera,
}

impl Views {
    pub fn load() -> Result<Self, BuildError> {
        let mut tera = tera::Tera::new();
        tera.autoescape_on([".html"]);
        tera.add_raw_templates(TEMPLATES.iter().copied())
            .map_err(|e| BuildError::Templates(chain(&e)))?;
        Ok(Self { tera })
    }

    pub fn render(&self, name: &str, context: &tera::Context) -> Result<String, PageError> {
        self.tera
            .render(name, context)
            .map_err(|e| PageError::internal(format!("rendering {name}: {}", chain(&e))))
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A page's context: `page` names the navigation entry to highlight.
pub(crate) fn context(page: &str, value: impl Serialize) -> tera::Context {
    let mut c = tera::Context::from_serialize(&value).unwrap_or_default();
    c.insert("page", page);
    c
}

/// A rendered page that must not be cached or kept (most show personal data).
pub(crate) fn html(body: String) -> Response {
    let mut r = Html(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLESHEET,
    )
        .into_response()
}

pub(crate) async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// `2026-11-23T01:50:55.123Z` → `2026-11-23 02:50 CET` in the console's
/// time zone: a date an administrator reads at a glance, with the zone
/// named (never an epoch number, never a bare UTC instant).
pub(crate) fn when(rfc3339: &str, tz: &jiff::tz::TimeZone) -> String {
    match rfc3339.parse::<jiff::Timestamp>() {
        Ok(t) => local(t, tz),
        Err(_) => rfc3339.to_owned(),
    }
}

/// An instant as [`when`] shows it.
pub(crate) fn local(t: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> String {
    t.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// Unix seconds (as some audit details carry them) as [`when`] shows them.
pub(crate) fn unix(seconds: i64, tz: &jiff::tz::TimeZone) -> Option<String> {
    jiff::Timestamp::from_second(seconds)
        .ok()
        .map(|t| local(t, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A representative context for each page (what the handlers build).
    fn sample(name: &str) -> serde_json::Value {
        let event = json!({"when": "2026-11-23 01:50 UTC", "type": "admin.user_unlocked",
            "user_id": "u-1", "actor": "user:a-1", "actor_user": "a-1", "client_id": null,
            "ip": "127.0.0.1", "fields": [{"label": "Changed", "value": "name, <email>"}]});
        let user = json!({"id": "u-1", "email": "ann@example.com", "name": "<Ann>",
            "email_verified": false, "disabled": false, "locked_until": "2026-11-23 02:05 UTC",
            "is_admin": false, "mfa_enabled": true, "created_at": "2026-11-22 10:00 UTC",
            "updated_at": "2026-11-22 10:00 UTC"});
        let client = json!({"client_id": "shop", "name": "Shop", "kind": "confidential",
            "redirect_uris": ["https://shop/cb"], "redirect_uris_text": "https://shop/cb",
            "post_logout_redirect_uris_text": "", "first_party": true, "theme": null,
            "grant_types": ["authorization_code"], "scopes_text": "openid", "id_token_alg": "ES256",
            "require_mfa": false, "created_at": "x", "updated_at": "y"});
        let choices = json!({"grants": ["authorization_code", "refresh_token", "client_credentials"],
            "algs": ["RS256", "ES256", "EdDSA"],
            "themes": [{"name": "default", "display_name": "Default"}, {"name": "helix", "display_name": "<Helix>"}]});
        let mail = json!({"id": "m1", "recipient": "a@b", "subject": "Reset", "status": "failed",
            "attempts": 3, "last_error": "refused", "created": "t", "next_attempt": "t", "sent": null});
        match name {
            "dashboard.html" => {
                json!({"summary": {"users": {"total": 3, "admins": 1, "disabled": 0, "locked": 1},
                "clients": 2, "mail": {"pending": 0, "failed": 1, "sent": 4}},
                "failures": [event], "locks": [], "failed_mail": [mail]})
            }
            "users.html" => json!({"q": "ann", "users": [user], "next": "/admin/users?cursor=x"}),
            "user.html" => json!({"user": user, "is_self": false,
                "actions": [{"name": "unlock", "label": "Unlock", "danger": false}],
                "sessions": [{"id": "abcd", "created": "t", "last_seen": "t", "amr": "pwd + otp", "ip": "::1", "user_agent": "Mozilla/5.0 Firefox/140.0", "browser": "Firefox <on> Linux"}],
                "tokens": [{"id": "f1", "client_id": "shop", "scopes": "openid", "created": "t", "last_used": null, "expires": "t"}],
                "passkeys": [{"id": "p1", "name": "Phone <Ann>", "created": "t", "last_used": null},
                    {"id": "p2", "name": "Key", "created": "t", "last_used": "t"}],
                "events": [event], "more_events": true}),
            "user_new.html" => {
                json!({"values": {"email": "x@y", "email_verified": true}, "error": "taken"})
            }
            "clients.html" => json!({"clients": [client]}),
            "client.html" => {
                json!({"client": client, "values": client, "choices": choices, "builtin": false,
                    "errors": [{"field": "name", "label": "Name", "message": "<Enter> a name."}],
                    "field_errors": {"name": "<Enter> a name."}})
            }
            "client_new.html" => {
                json!({"values": {"grant_types": ["refresh_token"]}, "choices": choices})
            }
            "secret.html" => json!({"client": client, "secret": "s3cr3t", "created": true}),
            "audit.html" => {
                json!({"filter": {"user_id": "", "email": "", "type": "login.failed", "since": "", "until": "", "cursor": ""},
                "events": [event], "next": null, "error": null, "time_zone": "Europe/Paris"})
            }
            "mail.html" => json!({"status": "failed", "messages": [mail]}),
            "keys.html" => {
                json!({"keys": [{"kid": "k1", "alg": "RS256", "state": "active", "created": "t",
                "activates": "t", "retires": null, "expires": null}]})
            }
            "confirm.html" => {
                json!({"title": "Disable?", "message": "Sure?", "action": "/admin/users/u-1/disable",
                "button": "Disable", "cancel": "/admin/users/u-1", "fields": [["x", "\"><script>"]]})
            }
            "error.html" => {
                json!({"title": "Not found", "message": "No user has this id", "sign_in": false})
            }
            _ => json!({}),
        }
    }

    #[test]
    fn every_page_renders_with_its_frame_and_escapes_what_it_shows() {
        let views = Views::load().unwrap();
        for (name, _) in TEMPLATES
            .iter()
            .filter(|(n, _)| !n.starts_with("partials/") && *n != "base.html")
        {
            let mut c = context("users", sample(name));
            if !matches!(*name, "error.html" | "signed_out.html") {
                c.insert(
                    "admin",
                    &json!({"name": "Root <Admin>", "email": "root@example.com", "id": "a-1"}),
                );
                c.insert("csrf", "CSRF-TOKEN");
                c.insert("flash", &json!({"ok": true, "text": "Saved."}));
            }
            let html = views
                .render(name, &c)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                html.contains("/admin/static/console.css"),
                "{name}: no stylesheet"
            );
            assert!(
                !html.contains("<Admin>")
                    && !html.contains("<Ann>")
                    && !html.contains("\"><script>")
                    && !html.contains("<Helix>")
                    && !html.contains("<Enter>")
                    && !html.contains("<email>"),
                "{name}: not escaped"
            );
            // Every form that changes something carries the CSRF token.
            let posts = html.matches("method=\"post\"").count();
            let tokens = html.matches("name=\"csrf\" value=\"CSRF-TOKEN\"").count();
            assert_eq!(posts, tokens, "{name}: a form without the CSRF token");
            assert!(
                !html.contains("<script"),
                "{name}: the console needs no script"
            );
        }
    }

    #[test]
    fn times_read_as_minutes_in_the_console_time_zone() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(
            when("2026-11-23T01:50:55.123Z", &utc),
            "2026-11-23 01:50 UTC"
        );
        assert_eq!(
            when("2026-11-23T03:50:55+02:00", &utc),
            "2026-11-23 01:50 UTC"
        );
        assert_eq!(when("not a time", &utc), "not a time");
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(when("2026-11-23T01:50:55Z", &paris), "2026-11-23 02:50 CET");
        assert_eq!(
            when("2026-07-01T10:00:00Z", &paris),
            "2026-07-01 12:00 CEST"
        );
        assert_eq!(
            unix(1_795_398_655, &utc).as_deref(),
            Some("2026-11-23 01:50 UTC")
        );
    }
}
