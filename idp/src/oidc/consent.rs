//! `/consent`: a client that is not first party asks the person once; the
//! decision is remembered. `/account/grants`: the person sees and removes
//! what they allowed (which also revokes that client's refresh tokens).

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::authorize::{ContinueQuery, to_allow};
use super::response::Return;
use crate::domain::{AuditKind, ClientId};
use crate::signin;
use crate::web::client_meta::ClientMeta;
use crate::web::session::CurrentUser;
use crate::web::ui::{FlashKind, Page, Ui};
use crate::web::{AppError, AppState, audit};

/// What each scope lets an application do, as people read it.
fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Know who you are when you sign in",
        "profile" => "See your name",
        "email" => "See your email address and whether it is confirmed",
        "offline_access" => "Stay connected to your account while you are away",
        "admin" => "Administer this identity provider",
        _ => "Other access",
    }
}

pub async fn page(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    current: CurrentUser,
    Query(q): Query<ContinueQuery>,
) -> Result<Response, AppError> {
    let Some(pending) = signin::load(&state, &jar, &q.req).await? else {
        return signin::expired::page(&state, jar, &headers).await;
    };
    let (request, client) = (&pending.request, &pending.client);
    let mut ui = Ui::new(
        &state,
        jar,
        &headers,
        Some(client.id.as_str()),
        Some(current),
    )
    .await?;
    ui.set_request(Some(pending.id.clone()));
    ui.allow_form_to(&request.redirect_uri);
    let scopes: Vec<&str> = to_allow(request).iter().map(|s| describe(s)).collect();
    Ok(ui.render(
        Page::new("consent.html", format!("Allow {}?", client.name))
            .with("app_name", &client.name)
            .with("scopes", &scopes),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConsentForm {
    req: String,
    decision: String,
    csrf_token: String,
}

pub async fn decide(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<ConsentForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = body.map(|Form(f)| f).unwrap_or_default();
    let Some(pending) = signin::load(&state, &jar, &f.req).await? else {
        return signin::expired::page(&state, jar, &headers).await;
    };
    let mut request = pending.request;
    let mut ui = Ui::new(
        &state,
        jar,
        &headers,
        Some(request.client_id.as_str()),
        Some(current.clone()),
    )
    .await?;
    // A CSRF failure re-renders this request's page: its forms may still end the flow.
    ui.allow_form_to(&request.redirect_uri);
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let user = &current.user;
    if f.decision != "allow" {
        signin::request::delete(&state, &pending.id).await?;
        audit::record(
            &state,
            &meta,
            AuditKind::ConsentDenied,
            Some(&user.id),
            Some(&request.client_id),
            json!({}),
        )
        .await;
        let back = Return {
            redirect_uri: &request.redirect_uri,
            mode: request.response_mode,
            state: request.state.as_deref(),
            theme: ui.theme_name(),
            after_form: true,
        };
        return Ok(back.error(
            &state,
            "access_denied",
            "the user did not allow the request",
        ));
    }
    let allowed = to_allow(&request);
    state
        .store
        .grant_consent(&user.id, &request.client_id, &allowed, state.clock.now())
        .await?;
    audit::record(
        &state,
        &meta,
        AuditKind::ConsentGranted,
        Some(&user.id),
        Some(&request.client_id),
        json!({ "scopes": allowed }),
    )
    .await;
    request.consented_by = Some(user.id.clone());
    signin::request::save(&state, &pending.id, &request).await?;
    let to = signin::route::after_step(Some(&pending.id), "");
    Ok(Redirect::to(&to).into_response())
}

#[derive(Serialize)]
struct GrantView {
    client_id: String,
    app_name: String,
    scopes: Vec<&'static str>,
}

async fn grants_page(
    state: &AppState,
    ui: Ui,
    user: &crate::store::User,
    flash: Option<&str>,
) -> Result<Response, AppError> {
    let mut grants = Vec::new();
    for consent in state.store.consents(&user.id).await? {
        let name = state
            .store
            .client_by_id(&consent.client_id)
            .await?
            .map(|c| c.name)
            .unwrap_or_else(|| consent.client_id.to_string());
        grants.push(GrantView {
            client_id: consent.client_id.to_string(),
            app_name: name,
            scopes: consent.scopes.iter().map(|s| describe(s)).collect(),
        });
    }
    let mut page = Page::new("grants.html", "Connected apps").with("grants", &grants);
    if let Some(message) = flash {
        page = page.flash(FlashKind::Success, message);
    }
    Ok(ui.render(page))
}

pub async fn grants(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, None, Some(current)).await?;
    grants_page(&state, ui, &user, None).await
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeForm {
    revoke: String,
    csrf_token: String,
}

pub async fn revoke(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Form<RevokeForm>, FormRejection>,
) -> Result<Response, AppError> {
    let f = body.map(|Form(f)| f).unwrap_or_default();
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, None, Some(current)).await?;
    if !ui.csrf_ok(&f.csrf_token) {
        return Ok(ui.csrf_failure());
    }
    let removed = match ClientId::parse(&f.revoke) {
        Ok(client) => {
            let removed = state
                .store
                .revoke_consent(&user.id, &client, state.clock.now())
                .await?;
            if removed {
                audit::record(
                    &state,
                    &meta,
                    AuditKind::ConsentRevoked,
                    Some(&user.id),
                    Some(&client),
                    json!({}),
                )
                .await;
            }
            removed
        }
        Err(_) => false,
    };
    let flash = removed.then_some("Access removed. The app will ask again if you use it.");
    grants_page(&state, ui, &user, flash).await
}
