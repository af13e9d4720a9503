//! What the provider recorded and holds: the audit log, the mail outbox,
//! the signing keys.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::frame::Confirm;
use crate::api::{ApiError, enc};
use crate::console::Console;
use crate::error::PageResult;
use crate::form::Fields;
use crate::signed::Signed;
use crate::views::{unix, when};

type Tz = jiff::tz::TimeZone;

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

fn time(v: &Value, key: &str, tz: &Tz) -> Value {
    match v.get(key).and_then(Value::as_str) {
        Some(t) => Value::String(when(t, tz)),
        None => Value::Null,
    }
}

/// A detail member's name as a label: `client_id` → "Client ID",
/// `changed` → "Changed".
fn label(key: &str) -> String {
    let known = match key {
        "changed" => Some("Changed"),
        "client_id" => Some("Client ID"),
        "until" => Some("Until"),
        "session" => Some("Session"),
        "family" => Some("Refresh-token family"),
        "scopes" => Some("Scopes"),
        "grant_types" => Some("Grant types"),
        "kids" => Some("Key IDs"),
        "ip" => Some("IP address"),
        "reason" => Some("Reason"),
        "email" => Some("Email"),
        "method" => Some("Method"),
        _ => None,
    };
    if let Some(l) = known {
        return l.to_owned();
    }
    let words: Vec<String> = key
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "id" => "ID".to_owned(),
            "ip" => "IP".to_owned(),
            "mfa" => "MFA".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    let mut text = words.join(" ");
    if let Some(first) = text.get(0..1) {
        text = format!("{}{}", first.to_uppercase(), &text[1..]);
    }
    text
}

/// Members that hold an instant: shown as dates, never as epoch numbers.
fn is_time(key: &str) -> bool {
    matches!(key, "until" | "since" | "expires" | "at" | "time")
        || key.ends_with("_at")
        || key.ends_with("_until")
}

/// A detail value as text: lists joined, instants as dates, yes/no.
fn shown(key: &str, v: &Value, tz: &Tz) -> String {
    match v {
        Value::String(t) if is_time(key) => when(t, tz),
        Value::String(t) => t.clone(),
        Value::Number(n) if is_time(key) => n
            .as_i64()
            .and_then(|s| unix(s, tz))
            .unwrap_or_else(|| n.to_string()),
        Value::Number(n) => n.to_string(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Null => "—".into(),
        Value::Array(items) => items
            .iter()
            .map(|i| shown(key, i, tz))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{}: {}", label(k), shown(k, v, tz)))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

/// An event's detail as labelled fields (`[{label, value}]`), in the order
/// recorded; a value that is not an object is one field, "Detail".
pub(crate) fn detail_fields(detail: Option<&Value>, tz: &Tz) -> Vec<Value> {
    match detail {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| json!({"label": label(k), "value": shown(k, v, tz)}))
            .collect(),
        Some(other) => vec![json!({"label": "Detail", "value": shown("", other, tz)})],
    }
}

/// Audit events as the tables show them: times in the console's time
/// zone, the acting administrator's id apart (for a link), the detail as
/// labelled fields.
pub(crate) fn audit_rows(items: &[Value], tz: &Tz) -> Vec<Value> {
    items
        .iter()
        .map(|e| {
            let actor = e.get("actor").and_then(Value::as_str);
            json!({
                "when": time(e, "occurred_at", tz),
                "type": text(e, "type"),
                "user_id": text(e, "user_id"),
                "user_email": text(e, "user_email"),
                "actor": actor,
                "actor_email": text(e, "actor_email"),
                "actor_user": actor.and_then(|a| a.strip_prefix("user:")),
                "client_id": text(e, "client_id"),
                "ip": text(e, "ip"),
                "fields": detail_fields(e.get("detail"), tz),
            })
        })
        .collect()
}

pub(crate) fn mail_rows(items: &[Value], tz: &Tz) -> Vec<Value> {
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
                "created": time(m, "created_at", tz),
                "next_attempt": time(m, "next_attempt_at", tz),
                "sent": time(m, "sent_at", tz),
            })
        })
        .collect()
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub(crate) struct AuditFilter {
    #[serde(default)]
    user_id: String,
    /// The account's current email address.
    #[serde(default)]
    email: String,
    #[serde(default, rename = "type")]
    kind: String,
    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` box), read in the console's
    /// time zone.
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

/// `2026-11-23T01:50` (what a datetime-local box sends), read in the
/// console's time zone → RFC 3339 (UTC); anything else is passed on for
/// the API to judge.
fn instant(s: &str, tz: &Tz) -> String {
    match s.parse::<jiff::civil::DateTime>() {
        Ok(civil) => match civil.to_zoned(tz.clone()) {
            Ok(z) => z.timestamp().to_string(),
            Err(_) => s.to_owned(),
        },
        Err(_) => s.to_owned(),
    }
}

impl AuditFilter {
    fn query(&self, tz: &Tz) -> String {
        let mut q = vec!["limit=50".to_owned()];
        for (key, value) in [
            ("user_id", self.user_id.trim().to_owned()),
            ("email", self.email.trim().to_owned()),
            ("type", self.kind.trim().to_owned()),
            ("since", instant(self.since.trim(), tz)),
            ("until", instant(self.until.trim(), tz)),
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
            ("email", &self.email),
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
    let tz = console.tz();
    let path = format!("/admin/api/audit-events?{}", filter.query(tz));
    let (rows, next, error) = match console.api_get::<ListPage>(&who, &path).await {
        Ok(page) => (
            audit_rows(&page.items, tz),
            page.next_cursor.map(|c| filter.next(&c)),
            None,
        ),
        Err(ApiError::Refused { message, .. }) => (Vec::new(), None, Some(message)),
        Err(e) => return Err(e.into()),
    };
    let data = json!({"filter": filter, "events": rows, "next": next, "error": error,
        "time_zone": console.config().time_zone});
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
    let data = json!({"status": status, "messages": mail_rows(&page.items, console.tz())});
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
    let tz = console.tz();
    let keys: Vec<Value> = page
        .items
        .iter()
        .map(|k| {
            json!({
                "kid": text(k, "kid"),
                "alg": text(k, "alg"),
                "state": text(k, "state"),
                "created": time(k, "created_at", tz),
                "activates": time(k, "activates_at", tz),
                "retires": time(k, "retires_at", tz),
                "expires": time(k, "expires_at", tz),
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
            email: String::new(),
            kind: "login.failed".into(),
            since: "2026-11-23T01:50".into(),
            until: String::new(),
            cursor: String::new(),
        };
        assert_eq!(
            f.query(&Tz::UTC),
            "limit=50&user_id=0193&type=login.failed&since=2026-11-23T01%3A50%3A00Z"
        );
        assert_eq!(
            f.next("abc"),
            "/admin/audit?user_id=0193&type=login.failed&since=2026-11-23T01%3A50&cursor=abc"
        );
        // Read in the console's time zone: 02:50 in Paris is 01:50 UTC.
        let paris = Tz::get("Europe/Paris").unwrap();
        let f = AuditFilter {
            email: " Ann@Example.com ".into(),
            since: "2026-11-23T02:50".into(),
            ..AuditFilter::default()
        };
        assert_eq!(
            f.query(&paris),
            "limit=50&email=Ann%40Example.com&since=2026-11-23T01%3A50%3A00Z"
        );
    }

    #[test]
    fn audit_rows_link_administrators_and_keep_empty_detail_out() {
        let rows = audit_rows(
            &[json!({
                "occurred_at": "2026-11-23T01:50:55Z", "type": "admin.user_unlocked",
                "user_id": "u1", "actor": "user:a1", "detail": {}
            })],
            &Tz::UTC,
        );
        assert_eq!(rows[0]["actor_user"], "a1");
        assert_eq!(rows[0]["when"], "2026-11-23 01:50 UTC");
        assert_eq!(rows[0]["fields"], json!([]));
    }

    #[test]
    fn details_are_labelled_fields_with_dates_not_epochs() {
        let fields = detail_fields(
            Some(
                &json!({"until": 1_795_398_655, "changed": ["name", "email"],
                "client_id": "shop", "first_party": true}),
            ),
            &Tz::UTC,
        );
        let pairs: Vec<(String, String)> = fields
            .iter()
            .map(|f| {
                (
                    f["label"].as_str().unwrap().into(),
                    f["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        let has = |l: &str, v: &str| pairs.contains(&(l.to_owned(), v.to_owned()));
        assert!(has("Until", "2026-11-23 01:50 UTC"), "{pairs:?}");
        assert!(has("Changed", "name, email"), "{pairs:?}");
        assert!(has("Client ID", "shop"), "{pairs:?}");
        assert!(has("First party", "yes"), "{pairs:?}");
    }
}
