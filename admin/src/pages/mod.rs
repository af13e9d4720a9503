//! The console's pages: one module per area. Errors are typed here and
//! rendered in one place ([`render_errors`]), in the console's look.

pub(crate) mod clients;
pub(crate) mod dashboard;
pub(crate) mod records;
pub(crate) mod users;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;
use serde_json::{Value, json};

use crate::Console;
use crate::api::ApiError;
use crate::form::Fields;
use crate::session::{Flash, SESSION_COOKIE, Signed, StoreError, cookie_name};
use crate::views;

pub(crate) type PageResult = Result<Response, PageError>;

#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum PageError {
    #[error("the form is out of date")]
    Csrf,
    /// The session is gone or its token no longer works: sign in again.
    #[error("sign in again")]
    SignIn,
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The admin API refused the request (400, 409): its message says why.
    #[error("refused: {0}")]
    Refused(String),
    /// The provider did not answer as it should.
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl PageError {
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// What the error page shows.
#[derive(Debug, Clone, Serialize)]
struct ErrorView {
    #[serde(skip)]
    status: StatusCode,
    title: &'static str,
    message: String,
    sign_in: bool,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message, sign_in) = match self {
            Self::SignIn => return (StatusCode::SEE_OTHER, SignInAgain).into_response(),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "The form is out of date",
                "This form was opened in another session. Go back, reload the page and try again."
                    .to_owned(),
                false,
            ),
            Self::SignInFailed(m) => (StatusCode::BAD_REQUEST, "Sign-in failed", m, true),
            Self::Forbidden(m) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!(
                    "The identity provider refused: {m}. Only administrators can use the console."
                ),
                true,
            ),
            Self::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", capitalised(&m), false),
            Self::Refused(m) => (StatusCode::BAD_REQUEST, "Refused", capitalised(&m), false),
            Self::Upstream(m) => {
                tracing::error!(error = %m, "the identity provider did not answer as expected");
                (
                    StatusCode::BAD_GATEWAY,
                    "The identity provider did not answer",
                    "The console could not complete this with the identity provider. Try again; if it persists, the server log says why.".to_owned(),
                    false,
                )
            }
            Self::Internal(m) => {
                tracing::error!(error = %m, "admin console error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The console could not show this page. The server log says why.".to_owned(),
                    false,
                )
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorView {
            status,
            title,
            message,
            sign_in,
        });
        response
    }
}

pub(crate) fn capitalised(m: &str) -> String {
    let mut chars = m.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Marks a response as "sign in again" for [`render_errors`].
#[derive(Debug, Clone, Copy)]
struct SignInAgain;

impl IntoResponse for SignInAgain {
    fn into_response(self) -> Response {
        let mut r = StatusCode::SEE_OTHER.into_response();
        r.extensions_mut().insert(self);
        r
    }
}

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

/// The console's CSP, built once: forms may post to the provider too.
pub(crate) fn content_security_policy(issuer: &url::Url) -> HeaderValue {
    const WITHOUT_ISSUER: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    let origin = issuer.origin().ascii_serialization();
    let csp = WITHOUT_ISSUER.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(WITHOUT_ISSUER))
}

impl Console {
    /// Renders a page of the signed-in console: the frame (navigation, the
    /// administrator, the sign-out form) around `template` with `data`.
    pub(crate) async fn page(
        &self,
        who: &mut Signed,
        template: &str,
        nav: &str,
        data: impl Serialize,
    ) -> PageResult {
        let mut context = views::context(nav, data);
        context.insert(
            "admin",
            &json!({"name": who.data.name, "email": who.data.email, "id": who.data.sub}),
        );
        context.insert("csrf", &who.data.csrf);
        if let Some(flash) = who.data.flash.take() {
            context.insert("flash", &flash);
            self.save(&who.id, &who.data).await?;
        }
        Ok(views::html(self.0.views.render(template, &context)?))
    }

    /// An action through the admin API: `ok` said on the page `back` when
    /// done; a refusal (400, 404, 409) said there instead.
    pub(crate) async fn perform(
        &self,
        who: &mut Signed,
        call: (Method, &str, Option<&Value>),
        ok: String,
        back: &str,
    ) -> PageResult {
        let (method, path, body) = call;
        match self.api_send(who, method, path, body).await {
            Ok(_) => self.done(who, ok, back).await,
            Err(ApiError::Refused { message, .. }) => self.refused(who, message, back).await,
            Err(e) => Err(e.into()),
        }
    }

    /// After an action: a message for the next page, and a redirect to it.
    pub(crate) async fn done(&self, who: &mut Signed, text: String, to: &str) -> PageResult {
        self.flash(who, Flash { ok: true, text }, to).await
    }

    /// After a refused action: why (the admin API's message), on the page
    /// it came from.
    pub(crate) async fn refused(&self, who: &mut Signed, text: String, to: &str) -> PageResult {
        self.flash(who, Flash { ok: false, text }, to).await
    }

    async fn flash(&self, who: &mut Signed, flash: Flash, to: &str) -> PageResult {
        who.data.flash = Some(flash);
        self.save(&who.id, &who.data).await?;
        // 303: the next request is a GET, whatever the form's method was.
        Ok(Redirect::to(to).into_response())
    }

    /// The "are you sure?" page of a destructive action: the same form again,
    /// with `confirmed=yes`.
    pub(crate) async fn confirm(
        &self,
        who: &mut Signed,
        ask: Confirm<'_>,
        fields: &Fields,
    ) -> PageResult {
        let data = json!({
            "title": ask.title,
            "message": ask.message,
            "action": ask.action,
            "button": ask.button,
            "cancel": ask.cancel,
            "fields": fields.carried(),
        });
        self.page(who, "confirm.html", ask.nav, data).await
    }
}

pub(crate) struct Confirm<'a> {
    pub nav: &'a str,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: &'a str,
    pub cancel: String,
}
