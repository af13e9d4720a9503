//! Signing in with a passkey, a step of the sign-in pipeline
//! (`crate::signin`):
//!
//! - the first step, instead of email and password: `POST
//!   /login/passkey/start` and `…/finish`, called by the sign-in page's
//!   script (`static/passkey-signin.js`) with a button or, where the
//!   browser offers it, from the email field's autofill (conditional
//!   mediation). The authenticator names the account (a discoverable
//!   credential); a passkey with user verification is two factors (`amr`
//!   `pop` and `mfa`, `acr` 2), so no second step follows;
//! - the second step after a password, next to the authenticator app's
//!   code: `POST /login/otp/passkey/start` and `…/finish` on the pending
//!   second step (its cookie), offering the account's own passkeys
//!   (`amr` `pwd`, `pop`, `mfa`).
//!
//! Both answer with JSON: `{"redirect": …}` where the browser goes next (the
//! pipeline's `/authorize/continue`, or the account page), or `{"error": …}`
//! with a 4xx status, having started no session. The ceremony's state is
//! single use and bound to the browser (see `ceremony`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

use super::assertion::{self, Passed};
use super::ceremony;
use super::refusal::{NOT_JSON, opened, refused};
use crate::credentials::lockout;
use crate::domain::AuditKind;
use crate::signin::pending::{self, Pending};
use crate::signin::{self, route};
use crate::web::client_meta::ClientMeta;
use crate::web::session;
use crate::web::ui::Ui;
use crate::web::{AppError, AppState, audit};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartBody {
    csrf_token: String,
    client_id: String,
    req: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FinishBody {
    csrf_token: String,
    client_id: String,
    req: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, read
    /// only once the ceremony is taken: a malformed one uses it up too.
    credential: serde_json::Value,
}

fn with_jar(jar: CookieJar, status: StatusCode, message: &str) -> Response {
    (jar, refused(status, message)).into_response()
}

const CEREMONY_GONE: &str = "This passkey request has expired or was already used. Try again.";
const THROTTLED: &str =
    "Too many sign-in attempts from your network. Wait a while, then try again.";
const STEP_GONE: &str =
    "This sign-in has expired or was finished in another tab. Start again from the sign-in page.";

/// The sign-in page's look and flow for a JSON call: the pending request
/// (bound to this browser) chooses the client, as the form does.
async fn flow_ui(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    client_id: &str,
    req: &str,
) -> Result<(Ui, bool), AppError> {
    let pending = signin::request::load_opt(state, &jar, Some(req)).await?;
    let client_id = pending
        .as_ref()
        .map(|p| p.client.id.to_string())
        .unwrap_or_else(|| client_id.to_owned());
    let mut ui = Ui::new(state, jar, headers, Some(&client_id), None).await?;
    let in_flow = pending.is_some();
    ui.set_request(pending.map(|p| p.id));
    Ok((ui, in_flow))
}

pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let Ok(Json(body)) = body else {
        return Ok(refused(StatusCode::BAD_REQUEST, NOT_JSON));
    };
    let (mut ui, _) = flow_ui(&state, jar, &headers, &body.client_id, &body.req).await?;
    let webauthn = match opened(&state, &ui, &body.csrf_token) {
        Ok(webauthn) => webauthn,
        Err((status, message)) => return Ok(refused(status, message)),
    };
    let (jar, options) = ceremony::begin_signin(&state, &webauthn, ui.take_jar()).await?;
    Ok((jar, Json(options)).into_response())
}

pub async fn finish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Json<FinishBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let Ok(Json(body)) = body else {
        return Ok(refused(StatusCode::BAD_REQUEST, NOT_JSON));
    };
    let (mut ui, in_flow) = flow_ui(&state, jar, &headers, &body.client_id, &body.req).await?;
    let webauthn = match opened(&state, &ui, &body.csrf_token) {
        Ok(webauthn) => webauthn,
        Err((status, message)) => return Ok(refused(status, message)),
    };
    let jar = ui.take_jar();
    // Counted before anything is looked at, answers with no ceremony too.
    let Some(attempt) = lockout::ip_attempt(&state, meta.ip).await? else {
        return Ok(with_jar(jar, StatusCode::TOO_MANY_REQUESTS, THROTTLED));
    };
    let started = ceremony::take_signin(&state, &jar, &body.credential).await?;
    let Some(started) = started else {
        return Ok(with_jar(jar, StatusCode::BAD_REQUEST, CEREMONY_GONE));
    };
    let checked =
        assertion::check_signin(&state, &meta, &webauthn, body.credential, started).await?;
    let passed = match checked {
        Ok(passed) => passed,
        Err(refusal) => return Ok(with_jar(jar, StatusCode::BAD_REQUEST, refusal.message())),
    };
    lockout::ip_succeeded(&state, attempt).await?;
    // A half-done sign-in of this browser (another account's password
    // step) ends: this browser is now the passkey's owner's.
    let jar = match pending::load(&state, &jar).await? {
        Some((pid, _)) => pending::finish(&state, jar, &pid).await?,
        None => jar,
    };
    ui.set_jar(jar);
    let amr = vec!["pop".to_owned(), "mfa".to_owned()];
    signed_in(&state, ui, &meta, &passed, amr, in_flow).await
}

/// The passkey passed: the session starts (replacing the browser's
/// previous one), the sign-in is audited with the passkey's
/// name, and the script is told where to go.
async fn signed_in(
    state: &AppState,
    mut ui: Ui,
    meta: &ClientMeta,
    passed: &Passed,
    amr: Vec<String>,
    from_flow: bool,
) -> Result<Response, AppError> {
    let user = &passed.user;
    let jar = ui.take_jar();
    let origin = session::Origin {
        portal: ui.client_id(),
        from_flow,
        request: ui.request(),
    };
    let jar = session::start(state, jar, &user.id, amr.clone(), meta, origin).await?;
    audit::record(
        state,
        meta,
        AuditKind::LoginSucceeded,
        Some(&user.id),
        ui.client.as_ref().map(|c| &c.id),
        json!({ "amr": amr, "passkey_id": passed.passkey.id, "passkey": passed.passkey.name }),
    )
    .await;
    let to = route::after_step(ui.request(), &ui.flow_query());
    Ok((jar, Json(json!({ "redirect": to }))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StepBody {
    csrf_token: String,
    credential: serde_json::Value,
}

/// The pending second step's page look, as the code page wears it.
async fn step_ui(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    p: &Pending,
) -> Result<Ui, AppError> {
    let mut ui = Ui::new(state, jar, headers, p.client_id.as_deref(), None).await?;
    ui.set_request(p.req.clone());
    Ok(ui)
}

pub async fn second_step_start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    body: Result<Json<StepBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let Ok(Json(body)) = body else {
        return Ok(refused(StatusCode::BAD_REQUEST, NOT_JSON));
    };
    let Some((pid, p)) = pending::load(&state, &jar).await? else {
        return Ok(refused(StatusCode::BAD_REQUEST, STEP_GONE));
    };
    let ui = step_ui(&state, jar, &headers, &p).await?;
    let webauthn = match opened(&state, &ui, &body.csrf_token) {
        Ok(webauthn) => webauthn,
        Err((status, message)) => return Ok(refused(status, message)),
    };
    let passkeys: Vec<_> = state
        .store
        .passkeys(&p.user_id)
        .await?
        .iter()
        .filter_map(ceremony::decode)
        .collect();
    if p.enrol || passkeys.is_empty() {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "This account has no passkey. Use the code from your authenticator app.",
        ));
    }
    let options =
        ceremony::begin_second_step(&state, &webauthn, &pid, &p.user_id, &passkeys).await?;
    Ok(Json(options).into_response())
}

pub async fn second_step_finish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    body: Result<Json<StepBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let Ok(Json(body)) = body else {
        return Ok(refused(StatusCode::BAD_REQUEST, NOT_JSON));
    };
    let Some((pid, p)) = pending::load(&state, &jar).await? else {
        return Ok(refused(StatusCode::BAD_REQUEST, STEP_GONE));
    };
    let mut ui = step_ui(&state, jar, &headers, &p).await?;
    let webauthn = match opened(&state, &ui, &body.csrf_token) {
        Ok(webauthn) => webauthn,
        Err((status, message)) => return Ok(refused(status, message)),
    };
    let Some(started) = ceremony::take_second_step(&state, &pid, &p.user_id).await? else {
        return Ok(refused(StatusCode::BAD_REQUEST, CEREMONY_GONE));
    };
    let Some(attempt) = lockout::ip_attempt(&state, meta.ip).await? else {
        return Ok(refused(StatusCode::TOO_MANY_REQUESTS, THROTTLED));
    };
    let checked = assertion::check_second_step(
        &state,
        &meta,
        &webauthn,
        &p.user_id,
        body.credential,
        &started,
    )
    .await?;
    let passed = match checked {
        Ok(passed) => passed,
        Err(refusal) => return Ok(refused(StatusCode::BAD_REQUEST, refusal.message())),
    };
    lockout::ip_succeeded(&state, attempt).await?;
    // The second step is done: its pending state ends with it.
    let jar = pending::finish(&state, ui.take_jar(), &pid).await?;
    ui.set_jar(jar);
    let amr = vec!["pwd".to_owned(), "pop".to_owned(), "mfa".to_owned()];
    // The pending step carries a request only when its sign-in continued
    // a flow bound to this browser.
    let from_flow = ui.request().is_some();
    signed_in(&state, ui, &meta, &passed, amr, from_flow).await
}
