//! The one place where errors become HTTP responses. A 500 never shows its
//! cause: the client gets the request id, the log gets the cause chain.
//!
//! A browser (an `Accept` naming `text/html`) gets these answers as a page
//! in the portal's look ([`themed`]); everything else (JSON endpoints,
//! scripts) gets the same short text as before.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::AppState;
use super::theme::ThemeError;
use crate::credentials::HashError;
use crate::crypto::envelope::EnvelopeError;
use crate::domain::ClientId;
use crate::{ephemeral, store};

/// What a request can fail with. The store and the ephemeral store may be
/// unavailable (503); everything else is a 500 whose cause only the log sees.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error(transparent)]
    Ephemeral(#[from] ephemeral::Error),
    /// A page or a mail could not be rendered.
    #[error(transparent)]
    Theme(#[from] ThemeError),
    /// A password could not be hashed or checked.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("{0}")]
    Internal(String),
}

/// Marks a response made from an [`AppError`], so [`themed`] can dress it.
#[derive(Debug, Clone, Copy)]
struct FromAppError;

const UNAVAILABLE_TEXT: &str = "The service is temporarily unavailable. Please try again shortly.";
const INTERNAL_TEXT: &str = "Something went wrong on our side. Please try again; if it persists, quote the request id shown in the x-request-id header.";

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            AppError::Store(store::Error::Unavailable(_))
            | AppError::Ephemeral(ephemeral::Error::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Logged inside the request span, which carries the request id.
        tracing::error!(error = %self, "request failed");
        let body = match status {
            StatusCode::SERVICE_UNAVAILABLE => UNAVAILABLE_TEXT,
            _ => INTERNAL_TEXT,
        };
        let mut response = (status, body).into_response();
        response.extensions_mut().insert(FromAppError);
        response
    }
}

/// Middleware: an [`AppError`] answered to a browser becomes a themed page
/// (503 "temporarily unavailable", 500 with the request id). The look is
/// the link's `client_id` (links between pages carry it, so it is there
/// when the ephemeral store, which holds sessions, is the one down), else
/// the session's portal; whatever cannot be read falls back to `default`.
pub async fn themed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let wants_html = accepts_html(request.headers());
    let client_id = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    });
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let jar = CookieJar::from_headers(request.headers());
    let response = next.run(request).await;
    if !wants_html || response.extensions().get::<FromAppError>().is_none() {
        return response;
    }
    let status = response.status();
    let client = match client_id.as_deref().map(ClientId::parse) {
        Some(Ok(id)) => state.clients.get(&id).await.ok().flatten(),
        _ => None,
    };
    let client = match client {
        Some(c) => Some(c),
        None => super::portal::session_portal_client(&state, &jar, None).await,
    };
    let theme = state
        .themes
        .get(client.as_ref().and_then(|c| c.theme.as_deref()));
    let (title, message) = if status == StatusCode::SERVICE_UNAVAILABLE {
        (
            "Temporarily unavailable",
            "We cannot serve this page right now. Nothing you did caused this: please try again in a few minutes.".to_owned(),
        )
    } else {
        (
            "Something went wrong",
            format!(
                "Something went wrong on our side. Please try again; if it persists, quote this reference: {request_id}."
            ),
        )
    };
    let mut context = tera::Context::new();
    context.insert("status", &status.as_u16());
    context.insert("title", title);
    context.insert("message", &message);
    match super::ui::render_bare(&theme, "error.html", title, context) {
        Ok(html) => {
            let mut page = (status, Html(html)).into_response();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                page.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("30"));
            }
            page
        }
        Err(e) => {
            tracing::error!(error = %e, "the error page could not be rendered");
            response
        }
    }
}

/// Whether the client asked for HTML (browsers do; `fetch` and API clients
/// usually do not).
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/html"))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct LookQuery {
    client_id: Option<String>,
}

/// Any path nobody serves: "not found", in the portal's look.
pub async fn not_found(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    query: Result<axum::extract::Query<LookQuery>, axum::extract::rejection::QueryRejection>,
    super::session::MaybeUser(user): super::session::MaybeUser,
) -> Result<Response, AppError> {
    let q = query.map(|axum::extract::Query(q)| q).unwrap_or_default();
    let ui = super::ui::Ui::new(&state, jar, &headers, q.client_id.as_deref(), user).await?;
    Ok(ui.render(super::ui::Page::error(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address. Check the link, or go back to your account.",
    )))
}
