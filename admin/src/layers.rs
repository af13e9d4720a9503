//! The layers around every console route: errors turned into pages, and
//! the console's own security headers.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use crate::console::Console;
use crate::error::{ErrorView, SignInAgain};
use crate::session::{SESSION_COOKIE, cookie_name};
use crate::views;

/// Turns [`PageError`]s into pages: "sign in again" forgets the session and
/// starts a sign-in; the rest get the error page with their status.
pub(crate) async fn render_errors(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let session = CookieJar::from_headers(request.headers())
        .get(&cookie_name(&console, SESSION_COOKIE))
        .map(|c| c.value().to_owned());
    let response = next.run(request).await;
    if response.extensions().get::<SignInAgain>().is_some() {
        if let Some(id) = session
            && let Err(e) = console.forget(&id).await
        {
            tracing::warn!(error = %e, "could not forget a console session");
        }
        return Redirect::to("/admin/login").into_response();
    }
    let Some(view) = response.extensions().get::<ErrorView>().cloned() else {
        return response;
    };
    match console
        .0
        .views
        .render("error.html", &views::context("error", &view))
    {
        Ok(body) => (view.status, views::html(body)).into_response(),
        Err(_) => (view.status, view.message).into_response(),
    }
}

/// The console's own security headers (it also runs without the
/// provider's layers): no script at all, forms only to itself and to the
/// provider (signing out continues there), never framed, no referrer.
pub(crate) async fn security_headers(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, console.0.csp.clone());
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
