//! What the provider recorded and holds: the audit log, the mail outbox,
//! the signing keys.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Confirm, PageResult};
use crate::Console;
use crate::api::{ApiError, enc};
use crate::form::Fields;
use crate::session::Signed;
use crate::views::when;

/// A page of an admin API list.
#[derive(Debug, Deserialize)]
pub(crate) struct ListPage {
    pub items: Vec<Value>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

fn text(v: &Value, key: &str) -> Value {
    v.get(key).cloned().unwrap_or(Value::Null)
}

fn time(v: &Value, key: &str) -> Value {
    match v.get(key).and_then(Value::as_str) {
        Some(t) => Value::String(when(t)),
        None => Value::Null,
    }
}

/// Audit events as the tables show them: times in minutes, the acting
/// administrator's id apart (for a link), the detail as compact JSON.
pub(crate) fn audit_rows(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|e| {
            let actor = e.get("actor").and_then(Value::as_str);
            let detail = match e.get("detail") {
                Some(Value::Object(m)) if m.is_empty() => String::new(),
                Some(Value::Null) | None => String::new(),
                Some(d) => d.to_string(),
            };
            json!({
                "when": time(e, "occurred_at"),
                "type": text(e, "type"),
                "user_id": text(e, "user_id"),
                "user_email": text(e, "user_email"),
                "actor": actor,
                "actor_email": text(e, "actor_email"),
                "actor_user": actor.and_then(|a| a.strip_prefix("user:")),
                "client_id": text(e, "client_id"),
                "ip": text(e, "ip"),
                "detail": detail,
            })
        })
        .collect()
}

pub(crate) fn mail_rows(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|m| {
            json!({
                "id": text(m, "id"),
                "recipient": text(m, "recipient"),
                "subject": text(m, "subject"),
                "status": text(m, "status"),
                "attempts": text(m, "attempts"),
                "last_error": text(m, "last_error"),
                "created": time(m, "created_at"),
                "next_attempt": time(m, "next_attempt_at"),
                "sent": time(m, "sent_at"),
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub(crate) struct AuditFilter {
    #[serde(default)]
    user_id: String,
    #[serde(default, rename = "type")]
    kind: String,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` box), read as UTC.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

/// `2026-11-23T01:50` (what a datetime-local box sends) → RFC 3339 in UTC;
/// anything else is passed on for the API to judge.
fn instant(s: &str) -> String {
    if s.len() == 16 && s.as_bytes().get(10) == Some(&b'T') {
        format!("{s}:00Z")
    } else {
        s.to_owned()
    }
}

impl AuditFilter {
    fn query(&self) -> String {
        let mut q = vec!["limit=50".to_owned()];
        for (key, value) in [
            ("user_id", self.user_id.trim().to_owned()),
            ("type", self.kind.trim().to_owned()),
            ("since", instant(self.since.trim())),
            ("until", instant(self.until.trim())),
            ("cursor", self.cursor.clone()),
        ] {
            if !value.is_empty() {
                q.push(format!("{key}={}", enc(&value)));
            }
        }
        q.join("&")
    }

    /// The same filter, on the next page.
    fn next(&self, cursor: &str) -> String {
        let mut q = Vec::new();
        for (key, value) in [
            ("user_id", &self.user_id),
            ("type", &self.kind),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.trim().is_empty() {
                q.push(format!("{key}={}", enc(value.trim())));
            }
        }
        q.push(format!("cursor={}", enc(cursor)));
        format!("/admin/audit?{}", q.join("&"))
    }
}

pub(crate) async fn audit(
    State(console): State<Console>,
    mut who: Signed,
    Query(filter): Query<AuditFilter>,
) -> PageResult {
    let path = format!("/admin/api/audit-events?{}", filter.query());
    let (rows, next, error) = match console.api_get::<ListPage>(&who, &path).await {
        Ok(page) => (
            audit_rows(&page.items),
            page.next_cursor.map(|c| filter.next(&c)),
            None,
        ),
        Err(ApiError::Refused { message, .. }) => (Vec::new(), None, Some(message)),
        Err(e) => return Err(e.into()),
    };
    let data = json!({"filter": filter, "events": rows, "next": next, "error": error});
    console.page(&mut who, "audit.html", "audit", data).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct MailFilter {
    #[serde(default)]
    status: String,
}

pub(crate) async fn mail(
    State(console): State<Console>,
    mut who: Signed,
    Query(filter): Query<MailFilter>,
) -> PageResult {
    let status = match filter.status.as_str() {
        s @ ("pending" | "sent" | "failed") => s,
        _ => "",
    };
    let path = if status.is_empty() {
        "/admin/api/mail?limit=100".to_owned()
    } else {
        format!("/admin/api/mail?status={status}&limit=100")
    };
    let page: ListPage = console.api_get(&who, &path).await?;
    let data = json!({"status": status, "messages": mail_rows(&page.items)});
    console.page(&mut who, "mail.html", "mail", data).await
}

pub(crate) async fn retry_mail(
    State(console): State<Console>,
    mut who: Signed,
    Path(id): Path<String>,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    let path = format!("/admin/api/mail/{}/retry", enc(&id));
    console.api_send(&who, Method::POST, &path, None).await?;
    let message = "The message is queued again and will be sent shortly.".to_owned();
    console
        .done(&mut who, message, "/admin/mail?status=failed")
        .await
}

pub(crate) async fn keys(State(console): State<Console>, mut who: Signed) -> PageResult {
    let page: ListPage = console.api_get(&who, "/admin/api/keys").await?;
    let keys: Vec<Value> = page
        .items
        .iter()
        .map(|k| {
            json!({
                "kid": text(k, "kid"),
                "alg": text(k, "alg"),
                "state": text(k, "state"),
                "created": time(k, "created_at"),
                "activates": time(k, "activates_at"),
                "retires": time(k, "retires_at"),
                "expires": time(k, "expires_at"),
            })
        })
        .collect();
    console
        .page(&mut who, "keys.html", "keys", json!({"keys": keys}))
        .await
}

pub(crate) async fn rotate_keys(
    State(console): State<Console>,
    mut who: Signed,
    fields: Fields,
) -> PageResult {
    who.check_csrf(&fields.text("csrf"))?;
    if !fields.confirmed() {
        let ask = Confirm {
            nav: "keys",
            title: "Rotate the signing keys?".into(),
            message: "A new key per algorithm is published now and starts signing after the overlap; the current keys stay published until every token they signed has expired.".into(),
            action: "/admin/keys".into(),
            button: "Rotate keys",
            cancel: "/admin/keys".into(),
        };
        return console.confirm(&mut who, ask, &fields).await;
    }
    let answer = console
        .api_send(&who, Method::POST, "/admin/api/keys/rotate", None)
        .await?;
    let kids: Vec<&str> = answer
        .get("kids")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let message = format!("New keys created: {}.", kids.join(", "));
    console.done(&mut who, message, "/admin/keys").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_becomes_an_api_query() {
        let f = AuditFilter {
            user_id: " 0193 ".into(),
            kind: "login.failed".into(),
            since: "2026-11-23T01:50".into(),
            until: String::new(),
            cursor: String::new(),
        };
        assert_eq!(
            f.query(),
            "limit=50&user_id=0193&type=login.failed&since=2026-11-23T01%3A50%3A00Z"
        );
        assert_eq!(
            f.next("abc"),
            "/admin/audit?user_id=0193&type=login.failed&since=2026-11-23T01%3A50&cursor=abc"
        );
    }

    #[test]
    fn audit_rows_link_administrators_and_keep_empty_detail_out() {
        let rows = audit_rows(&[json!({
            "occurred_at": "2026-11-23T01:50:55Z", "type": "admin.user_unlocked",
            "user_id": "u1", "actor": "user:a1", "detail": {}
        })]);
        assert_eq!(rows[0]["actor_user"], "a1");
        assert_eq!(rows[0]["when"], "2026-11-23 01:50 UTC");
        assert_eq!(rows[0]["detail"], "");
    }
}
