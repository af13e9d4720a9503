//! Signing out: the person's own sign-out button, and RP-Initiated Logout
//! 1.0 (`id_token_hint`, `client_id`, `post_logout_redirect_uri` matched
//! exactly against the client's list, `state`). Without a valid hint the
//! person confirms first, so a link on another site cannot sign them out.
//! Signing out ends the browser session and revokes the person's refresh tokens.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use crate::domain::AuditKind;
use crate::domain::ClientId;
use crate::store::Client;
use crate::web::client_meta::ClientMeta;
use crate::web::headers::form_action_source;
use crate::web::session::{self, CurrentUser, MaybeUser};
use crate::web::ui::{Page, Ui, urlencode};
use crate::web::{AppError, AppState, audit, paths};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    csrf_token: Option<String>,
}

/// What the request identifies: the client, the subject of the hint, where to go.
struct Target {
    client: Option<Client>,
    hint_sub: Option<String>,
    redirect: Option<String>,
}

async fn resolve(
    state: &AppState,
    p: &LogoutParams,
) -> Result<Result<Target, &'static str>, AppError> {
    let mut hint_client = None;
    let mut hint_sub = None;
    if let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        match super::hint::read(state, hint) {
            Ok(hint) => {
                hint_client = hint.audiences.first().cloned();
                hint_sub = Some(hint.subject);
            }
            // Signed by a key retired since: no hint (the person confirms),
            // but its client still says where the sign-out may return.
            Err(super::hint::Refused::UnknownKey) => {
                hint_client = super::hint::unverified_audience(hint);
            }
            Err(super::hint::Refused::NotOurs) => {
                return Ok(Err(
                    "The sign-out request carries an ID token this provider did not issue.",
                ));
            }
        }
    }
    let named = p.client_id.clone().filter(|c| !c.is_empty());
    if let (Some(a), Some(b)) = (&hint_client, &named)
        && a != b
    {
        return Ok(Err(
            "The sign-out request names two different applications.",
        ));
    }
    let client = match hint_client.or(named).map(|c| ClientId::parse(&c)) {
        Some(Ok(id)) => state.clients.get(&id).await?,
        Some(Err(_)) => None,
        None => None,
    };
    let redirect = match p
        .post_logout_redirect_uri
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        None => None,
        Some(uri) => match &client {
            Some(c)
                if c.post_logout_redirect_uris
                    .iter()
                    .any(|u| u.as_str() == uri) =>
            {
                let mut target = uri.to_owned();
                if let Some(st) = p.state.as_deref().filter(|s| !s.is_empty()) {
                    let sep = if uri.contains('?') { '&' } else { '?' };
                    target = format!("{target}{sep}state={}", urlencode(st));
                }
                Some(target)
            }
            _ => {
                return Ok(Err(
                    "The address to return to after signing out is not registered for this application.",
                ));
            }
        },
    };
    Ok(Ok(Target {
        client,
        hint_sub,
        redirect,
    }))
}

async fn end(
    state: &AppState,
    jar: CookieJar,
    meta: &ClientMeta,
    current: Option<CurrentUser>,
) -> Result<CookieJar, AppError> {
    let Some(current) = current else {
        return Ok(jar);
    };
    let jar = session::end(state, jar, &current.session_id).await?;
    state
        .store
        .revoke_user_refresh_tokens(&current.user.id, state.clock.now())
        .await?;
    audit::record(
        state,
        meta,
        AuditKind::Logout,
        Some(&current.user.id),
        None,
        json!({}),
    )
    .await;
    Ok(jar)
}

/// Signed out: back to the client's page, or our own. After our
/// confirmation form, a client address CSP cannot name (see
/// `web::headers::form_action_source`) gets a link, not a redirect.
fn done(ui: Ui, jar: CookieJar, redirect: Option<String>, after_form: bool) -> Response {
    match redirect {
        // Our own sign-in page is relative, and always allowed.
        Some(to)
            if after_form && url::Url::parse(&to).is_ok() && form_action_source(&to).is_none() =>
        {
            let mut ui = ui;
            ui.set_jar(jar);
            ui.render(
                Page::new("continue.html", "Signed out")
                    .with("message", "You are signed out.")
                    .with("continue_url", &to),
            )
        }
        Some(to) => (jar, Redirect::to(&to)).into_response(),
        None => {
            let mut ui = ui;
            ui.set_jar(jar);
            ui.render(Page::new("logged_out.html", "Signed out"))
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    MaybeUser(user): MaybeUser,
    params: Result<Query<LogoutParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let p = params.map(|Query(p)| p).unwrap_or_default();
    rp_initiated(state, jar, headers, meta, user, p).await
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    MaybeUser(user): MaybeUser,
    body: Result<Form<LogoutParams>, FormRejection>,
) -> Result<Response, AppError> {
    let p = body.map(|Form(p)| p).unwrap_or_default();
    let Some(token) = p.csrf_token.clone() else {
        // A relying party posting the logout request itself.
        return rp_initiated(state, jar, headers, meta, user, p).await;
    };
    // The person's own confirmation (our form).
    let target = resolve(&state, &p).await?;
    let client_id = target
        .as_ref()
        .ok()
        .and_then(|t| t.client.as_ref().map(|c| c.id.to_string()));
    let mut ui = Ui::new(&state, jar, &headers, client_id.as_deref(), None).await?;
    if !ui.csrf_ok(&token) {
        return Ok(ui.csrf_failure());
    }
    let target = match target {
        Ok(t) => t,
        Err(message) => {
            return Ok(ui.render(Page::error(
                StatusCode::BAD_REQUEST,
                "Sign-out request not valid",
                message,
            )));
        }
    };
    let jar = end(&state, ui.take_jar(), &meta, user).await?;
    let redirect = target.redirect.or_else(|| {
        target
            .client
            .is_none()
            .then(|| format!("{}{}", paths::LOGIN, ui.flow_query()))
    });
    Ok(done(ui, jar, redirect, true))
}

async fn rp_initiated(
    state: AppState,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    user: Option<CurrentUser>,
    p: LogoutParams,
) -> Result<Response, AppError> {
    let target = resolve(&state, &p).await?;
    let client_id = target
        .as_ref()
        .ok()
        .and_then(|t| t.client.as_ref().map(|c| c.id.to_string()));
    let mut ui = Ui::new(&state, jar, &headers, client_id.as_deref(), user.clone()).await?;
    let target = match target {
        Ok(t) => t,
        Err(message) => {
            return Ok(ui.render(Page::error(
                StatusCode::BAD_REQUEST,
                "Sign-out request not valid",
                message,
            )));
        }
    };
    let hint_matches = match (&target.hint_sub, &user) {
        (Some(sub), Some(u)) => sub == u.user.id.as_str(),
        (Some(_), None) => true,
        (None, _) => false,
    };
    if hint_matches {
        let jar = end(&state, ui.take_jar(), &meta, user).await?;
        return Ok(done(ui, jar, target.redirect, false));
    }
    // The confirmation's form ends at the client's page.
    if let Some(to) = &target.redirect {
        ui.allow_form_to(to);
    }
    let app_name = target
        .client
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_default();
    Ok(ui.render(
        Page::new("logout_confirm.html", "Sign out?")
            .with("app_name", &app_name)
            .with(
                "post_logout_redirect_uri",
                p.post_logout_redirect_uri.as_deref().unwrap_or(""),
            )
            .with("logout_state", p.state.as_deref().unwrap_or("")),
    ))
}
