//! The console as an administrator reads it in their first hour: the audit
//! log with labelled details and dates in the console's time zone, found
//! by email address; the client form saying every problem at once with
//! the fields' names, offering the installed themes; a layout for phones;
//! and nothing in the store that hands out the administrator's tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::pages::signed_in;
use super::*;
use tests::browser::Page;

on_both_backends!(
    the_audit_log_shows_labelled_details_and_local_dates_and_filters_by_email,
    the_client_form_says_every_problem_at_once_and_offers_the_installed_themes,
    the_console_store_holds_no_readable_token,
);

/// 2026-11-23T01:50:55Z, as the lockout records it (`until`, unix seconds).
const UNTIL: i64 = 1_795_398_655;

fn texts(page: &Page, selector: &str) -> Vec<String> {
    page.html()
        .select(&scraper::Selector::parse(selector).unwrap())
        .map(|e| e.text().collect::<String>().trim().to_owned())
        .collect()
}

async fn record(app: &TestApp, user: &User, kind: &str, detail: Value) {
    let event = idp::store::AuditEvent {
        kind: kind.into(),
        user_id: Some(user.id.clone()),
        actor: None,
        client_id: None,
        ip: Some("198.51.100.7".into()),
        user_agent: None,
        detail,
    };
    app.state
        .store
        .record(event, app.clock_now())
        .await
        .unwrap();
}

async fn the_audit_log_shows_labelled_details_and_local_dates_and_filters_by_email(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| {
        c.admin.console.time_zone = Some("Europe/Paris".into());
    })
    .await;
    let (admin, _root, _) = signed_in(&app).await;
    let jane = app.create_user("jane@example.com", PW, "Jane").await;
    let bob = app.create_user("bob@example.com", PW, "Bob").await;
    record(&app, &jane, "account.locked", json!({"until": UNTIL})).await;
    record(
        &app,
        &jane,
        "admin.user_updated",
        json!({"changed": ["name", "email"]}),
    )
    .await;
    record(&app, &bob, "account.locked", json!({"until": UNTIL})).await;

    // By email address, whatever its case: Jane's events only.
    let page = admin
        .browser
        .page_at(&app.admin_url("/admin/audit?email=JANE%40Example.com"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text());
    let users = texts(&page, "tr.event-row td[data-label=\"User\"]");
    assert_eq!(users.len(), 2, "{}", page.text());
    assert!(users.iter().all(|u| u == "jane@example.com"), "{users:?}");
    assert_eq!(
        page.html()
            .select(&scraper::Selector::parse("input#email").unwrap())
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_owned))
            .as_deref(),
        Some("JANE@Example.com"),
        "the filter stays filled in"
    );

    // Details as labelled fields; dates in the console's zone, never epochs.
    let labels = texts(&page, "dl.fields dt");
    let values = texts(&page, "dl.fields dd");
    let fields: Vec<(String, String)> = labels.into_iter().zip(values).collect();
    assert!(
        fields.contains(&("Until".into(), "2026-11-23 02:50 CET".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("Changed".into(), "name, email".into())),
        "{fields:?}"
    );
    assert!(
        !page.body.contains(&UNTIL.to_string()),
        "an epoch number shown"
    );
    assert!(
        !page.body.contains("{&quot;") && !page.body.contains("{\""),
        "raw JSON shown"
    );
    let now = app.clock_now().to_offset(time::macros::offset!(+1));
    let when = texts(&page, "td[data-label=\"When\"] time");
    assert!(
        when.iter()
            .all(|w| w.ends_with(" CET") && w.starts_with(&now.year().to_string())),
        "{when:?}"
    );
    assert!(
        page.contains("Times are in Europe/Paris"),
        "{}",
        page.text()
    );

    // An address nobody has: no events, no error.
    let none = admin
        .browser
        .page_at(&app.admin_url("/admin/audit?email=nobody%40example.com"))
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.contains("No events."), "{}", none.text());

    // The admin API's own filter, described in its OpenAPI document.
    let token = automation_token(&app).await;
    let (status, body) = get(
        &app,
        "/admin/api/audit-events?email=bob%40EXAMPLE.com",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["user_email"], "bob@example.com");
    let (status, _) = get(&app, "/admin/api/audit-events?email=not-an-address", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let doc: Value = app
        .http
        .get(app.admin_url("/admin/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let params = doc["paths"]["/admin/api/audit-events"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(params.iter().any(|p| p["name"] == "email"), "{params:?}");
    let (status, themes) = get(&app, "/admin/api/themes", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        themes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "helix"),
        "{themes}"
    );

    // Phone width: the audit table becomes stacked cards, the page never
    // wider than the screen (the rules checked; no browser here).
    let css = admin
        .browser
        .page_at(&app.admin_url("/admin/static/console.css"))
        .await
        .body;
    let phone = css
        .split("@media (max-width: 760px)")
        .nth(1)
        .expect("a phone-width block");
    for rule in [
        ".frame { grid-template-columns: minmax(0, 1fr); }",
        ".table-stack td::before { content: attr(data-label);",
        ".filters .field { min-width: 0;",
    ] {
        assert!(phone.contains(rule), "missing {rule}");
    }
    assert!(css.contains("main { padding: 22px 28px 48px; max-width: 1200px; min-width: 0; }"));
    assert!(css.contains(".table-wrap { overflow-x: auto;"));
}

async fn the_client_form_says_every_problem_at_once_and_offers_the_installed_themes(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (admin, _root, _) = signed_in(&app).await;
    let form = admin
        .browser
        .page_at(&app.admin_url("/admin/clients/new"))
        .await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.text());
    assert_eq!(texts(&form, "label[for=\"client_id\"]"), ["Client ID"]);
    let options: Vec<String> = form
        .html()
        .select(&scraper::Selector::parse("select#theme option").unwrap())
        .filter_map(|o| o.value().attr("value").map(str::to_owned))
        .collect();
    assert_eq!(
        options.first().map(String::as_str),
        Some(""),
        "the default look first"
    );
    assert!(options.iter().any(|o| o == "helix"), "{options:?}");
    assert!(
        form.html()
            .select(&scraper::Selector::parse("input[name=\"theme\"]").unwrap())
            .next()
            .is_none(),
        "a choice, not a text box"
    );

    // Four mistakes: all four said, each with its field's name.
    let answer = admin
        .post(
            &app,
            &form,
            "/admin/clients",
            &[
                ("client_id", "bad id!"),
                ("name", ""),
                ("redirect_uris", "http://evil.example.com/cb"),
                ("grant_types", "authorization_code"),
                ("theme", "no-such-theme"),
            ],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let summary = texts(&answer, "#form-error li");
    assert_eq!(summary.len(), 4, "{summary:?}");
    for label in ["Client ID: ", "Name: ", "Redirect URIs: ", "Theme: "] {
        assert!(
            summary.iter().any(|s| s.starts_with(label)),
            "{label} in {summary:?}"
        );
    }
    assert!(!answer.body.contains("Client_id") && !answer.body.contains("client_id:"));
    for id in [
        "client_id-error",
        "name-error",
        "redirect_uris-error",
        "theme-error",
    ] {
        assert!(answer.body.contains(&format!("id=\"{id}\"")), "no {id}");
    }
    assert_eq!(
        answer.input("client_id").as_deref(),
        Some("bad id!"),
        "the values are kept"
    );
    assert!(
        app.state
            .store
            .list_clients()
            .await
            .unwrap()
            .iter()
            .all(|c| c.id.as_str() != "bad id!"),
        "nothing registered"
    );

    // A refusal only the provider can see (an unknown scope) names its field too.
    let form = admin
        .browser
        .page_at(&app.admin_url("/admin/clients/new"))
        .await;
    let answer = admin
        .post(
            &app,
            &form,
            "/admin/clients",
            &[
                ("client_id", "shop"),
                ("name", "Shop"),
                ("redirect_uris", "https://shop.example.com/cb"),
                ("grant_types", "authorization_code"),
                ("scopes", "openid telepathy"),
            ],
        )
        .await;
    let summary = texts(&answer, "#form-error li");
    assert_eq!(summary.len(), 1, "{}", answer.text());
    assert!(summary[0].starts_with("Scopes: "), "{summary:?}");
}

async fn the_console_store_holds_no_readable_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (admin, _root, dashboard) = signed_in(&app).await;
    let stored: Vec<(String, Vec<u8>)> = app
        .state
        .ephemeral
        .raw()
        .entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|(k, _)| k.contains("console:"))
        .collect();
    assert!(
        stored.iter().any(|(k, _)| k.contains("console:session:")),
        "a console session is stored: {:?}",
        stored.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for (key, value) in &stored {
        let text = String::from_utf8_lossy(value);
        for needle in ["eyJ", "access_token", "refresh_token", "id_token", "csrf"] {
            assert!(!text.contains(needle), "{needle} readable in {key}: {text}");
        }
    }

    // The console still works on the sealed session...
    let users = admin.browser.page_at(&app.admin_url("/admin/users")).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text());
    // ...and the ID token it holds (sent as the hint at sign-out) was not in
    // the store.
    let out = admin.post(&app, &dashboard, "/admin/logout", &[]).await;
    let to = out.location.unwrap();
    let hint = url::Url::parse(&to)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(hint.starts_with("eyJ"), "{hint}");
    for (key, value) in &stored {
        assert!(
            !String::from_utf8_lossy(value).contains(&hint),
            "the ID token readable in {key}"
        );
    }
}
