//! `POST /account/passkeys/register/start` and `…/finish`: the two halves
//! of a registration, called by the account page's script
//! (`static/passkey.js`) with JSON, answered with JSON. Starting needs the
//! session, the CSRF token and a recent sign-in (a stolen session alone must
//! not add its own way in); finishing needs the registration this browser
//! started for this person (see `ceremony`). Every refusal is a JSON
//! `{"error": …}` with a 4xx status, and stores nothing.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::ceremony;
use super::refusal::{EXPIRED_FORM, NOT_JSON, UNAVAILABLE, refused};
use super::settings::{confirm_path, passkey_name};
use crate::domain::AuditKind;
use crate::store::NewPasskey;
use crate::web::client_meta::ClientMeta;
use crate::web::session::{self, CurrentUser};
use crate::web::ui::Ui;
use crate::web::{AppError, AppState, audit, paths};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StartBody {
    csrf_token: String,
    client_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FinishBody {
    csrf_token: String,
    client_id: String,
    name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, read
    /// only once the ceremony is taken: a malformed one uses it up too.
    credential: serde_json::Value,
}

pub async fn start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    current: CurrentUser,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let Ok(Json(body)) = body else {
        return Ok(refused(StatusCode::BAD_REQUEST, NOT_JSON));
    };
    let recent = session::signed_in_recently(&state, &current.session);
    let session_id = current.session_id.clone();
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, Some(&body.client_id), Some(current)).await?;
    if !ui.csrf_ok(&body.csrf_token) {
        return Ok(refused(StatusCode::FORBIDDEN, EXPIRED_FORM));
    }
    if !recent {
        let reauth = confirm_path(ui.client_id());
        let answer = json!({
            "error": "Confirm it's you before adding a passkey.",
            "reauth": reauth,
        });
        return Ok((StatusCode::FORBIDDEN, Json(answer)).into_response());
    }
    let Some(webauthn) = ceremony::relying_party(&state) else {
        return Ok(refused(StatusCode::NOT_FOUND, UNAVAILABLE));
    };
    let existing = state.store.passkeys(&user.id).await?;
    let options = ceremony::begin(&state, &webauthn, &session_id, &user, &existing).await?;
    Ok(Json(options).into_response())
}

pub async fn finish(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    meta: ClientMeta,
    current: CurrentUser,
    body: Result<Json<FinishBody>, JsonRejection>,
) -> Result<Response, AppError> {
    let Ok(Json(body)) = body else {
        return Ok(refused(StatusCode::BAD_REQUEST, NOT_JSON));
    };
    let session_id = current.session_id.clone();
    let user = current.user.clone();
    let ui = Ui::new(&state, jar, &headers, Some(&body.client_id), Some(current)).await?;
    if !ui.csrf_ok(&body.csrf_token) {
        return Ok(refused(StatusCode::FORBIDDEN, EXPIRED_FORM));
    }
    let name = match passkey_name(&body.name) {
        Ok(name) => name,
        Err(message) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, message)),
    };
    let Some(webauthn) = ceremony::relying_party(&state) else {
        return Ok(refused(StatusCode::NOT_FOUND, UNAVAILABLE));
    };
    let Some(registration) = ceremony::take(&state, &session_id, &user.id).await? else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "This passkey request has expired or was already used. Start again.",
        ));
    };
    let failed = |reason: &'static str| {
        let state = state.clone();
        let meta = meta.clone();
        let user_id = user.id.clone();
        async move {
            audit::record(
                &state,
                &meta,
                AuditKind::PasskeyRegisterFailed,
                Some(&user_id),
                None,
                json!({ "reason": reason }),
            )
            .await;
        }
    };
    let credential: RegisterPublicKeyCredential = match serde_json::from_value(body.credential) {
        Ok(credential) => credential,
        Err(_) => {
            failed("malformed").await;
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                "The answer from your passkey could not be read. Start again.",
            ));
        }
    };
    let passkey = match webauthn.finish_passkey_registration(&credential, &registration) {
        Ok(passkey) => passkey,
        Err(e) => {
            tracing::info!(error = %e, "passkey registration refused");
            failed("refused").await;
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                "The answer from your passkey did not check out, so it was not added. Start again.",
            ));
        }
    };
    let credential = serde_json::to_string(&passkey)
        .map_err(|e| AppError::Internal(format!("passkey not serialised: {e}")))?;
    let new = NewPasskey {
        // v7: the list's tie-break on the same second keeps the order they were added.
        id: uuid::Uuid::now_v7().simple().to_string(),
        name,
        credential_id: ceremony::credential_id(&passkey),
        credential,
    };
    let stored = match state
        .store
        .add_passkey(&user.id, new, state.clock.now())
        .await
    {
        Ok(stored) => stored,
        Err(crate::store::Error::Conflict) => {
            failed("duplicate").await;
            return Ok(refused(
                StatusCode::CONFLICT,
                "This passkey is already registered.",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    audit::record(
        &state,
        &meta,
        AuditKind::PasskeyAdded,
        Some(&user.id),
        None,
        json!({ "passkey_id": stored.id, "name": stored.name }),
    )
    .await;
    // The passkey is stored: a mail that cannot be queued is logged, not an error.
    let queued = match crate::mail::notices::passkey_added(&state, &ui, &user, &stored.name) {
        Ok(mail) => state
            .mail
            .enqueue(mail)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = queued {
        tracing::error!(%error, "passkey added notice not queued");
    }
    let to = format!("{}{}", paths::ACCOUNT_PASSKEYS, ui.flow_query());
    Ok(Json(json!({ "ok": true, "redirect": to })).into_response())
}
