//! What a browser sees of an error: the themed 500/503 page made from an
//! [`AppError`]'s plain answer, and the themed 404.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::AppState;
use super::error::{AppError, BUSY_RETRY_AFTER, BUSY_TEXT, FromAppError};
use crate::domain::ClientId;
use tower::{Layer, Service};

/// Layer: an [`AppError`] answered to a browser becomes a themed page
/// (503 "temporarily unavailable", 500 with the request id). The look is
/// the link's `client_id` (links between pages carry it, so it is there
/// when the ephemeral store, which holds sessions, is the one down), else
/// the session's portal; whatever cannot be read falls back to `default`.
/// A request that does not ask for HTML goes through untouched: no boxed
/// future, nothing read from it.
#[derive(Clone)]
pub struct ThemedErrorsLayer(pub AppState);

impl<S> Layer<S> for ThemedErrorsLayer {
    type Service = ThemedErrors<S>;

    fn layer(&self, inner: S) -> ThemedErrors<S> {
        ThemedErrors {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ThemedErrors<S> {
    inner: S,
    state: AppState,
}

type Page = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S, B> Service<Request<B>> for ThemedErrors<S>
where
    S: Service<Request<B>, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = ThemedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if !accepts_html(request.headers()) {
            return ThemedFuture::Plain {
                inner: self.inner.call(request),
            };
        }
        let look = Look::of(request.uri(), request.headers());
        let state = self.state.clone();
        let answer = self.inner.call(request);
        ThemedFuture::Browser {
            page: Box::pin(async move {
                let Ok(response) = answer.await;
                Ok(themed(&state, look, response).await)
            }),
        }
    }
}

pin_project_lite::pin_project! {
    #[project = ThemedProjection]
    pub enum ThemedFuture<F> {
        Plain { #[pin] inner: F },
        Browser { page: Page },
    }
}

impl<F> Future for ThemedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ThemedProjection::Plain { inner } => inner.poll(cx),
            ThemedProjection::Browser { page } => page.as_mut().poll(cx),
        }
    }
}

/// What the error page needs of the request, read before it is handed on.
struct Look {
    client_id: Option<String>,
    jar: CookieJar,
}

impl Look {
    fn of(uri: &Uri, headers: &HeaderMap) -> Self {
        let client_id = uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "client_id")
                .map(|(_, v)| v.into_owned())
        });
        let jar = CookieJar::from_headers(headers);
        Self { client_id, jar }
    }
}

async fn themed(state: &AppState, look: Look, response: Response) -> Response {
    let Some(&FromAppError { busy }) = response.extensions().get::<FromAppError>() else {
        return response;
    };
    let Look { client_id, jar } = look;
    let status = response.status();
    let client = match client_id.as_deref().map(ClientId::parse) {
        Some(Ok(id)) => state.clients.get(&id).await.ok().flatten(),
        _ => None,
    };
    let client = match client {
        Some(c) => Some(c),
        None => super::portal::session_portal_client(state, &jar, None).await,
    };
    let theme = state
        .themes
        .get(client.as_ref().and_then(|c| c.theme.as_deref()));
    let (title, message) = if busy {
        ("Busy right now", BUSY_TEXT.to_owned())
    } else if status == StatusCode::SERVICE_UNAVAILABLE {
        (
            "Temporarily unavailable",
            "We cannot serve this page right now. Nothing you did caused this: please try again in a few minutes.".to_owned(),
        )
    } else {
        (
            "Something went wrong",
            format!(
                "Something went wrong on our side. Please try again; if it persists, quote this reference: {}.",
                crate::web::plumbing::request_id()
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
                let after = if busy { BUSY_RETRY_AFTER } else { "30" };
                page.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static(after));
            }
            if busy {
                page.extensions_mut().insert(super::plumbing::Busy);
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

/// The page for a sign-in or password change refused because the password
/// hashing queue is full, in the look `ui` already chose.
pub fn busy(ui: super::ui::Ui) -> Response {
    let mut page = ui.render(super::ui::Page::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Busy right now",
        BUSY_TEXT,
    ));
    page.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(BUSY_RETRY_AFTER),
    );
    page.extensions_mut().insert(super::plumbing::Busy);
    page
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
