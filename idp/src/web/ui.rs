//! Rendering themed pages. A [`Ui`] is built per request: it knows the flow's
//! client (hence the theme), the CSRF token, and the signed-in user; a
//! [`Page`] says which template to show with which values. Handlers never
//! build HTML themselves.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;

use super::session::{self, CurrentUser};
use super::theme::Theme;
use super::{AppError, AppState};
use crate::crypto::{constant_time_eq, random_token};
use crate::domain::ClientId;
use crate::store::Client;

const CSRF_FIELD_LEN: usize = 43;

fn csrf_cookie_name(dev_mode: bool) -> &'static str {
    if dev_mode {
        "idp_csrf"
    } else {
        "__Host-idp_csrf"
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FlashKind {
    Success,
    Error,
    Info,
}

#[derive(Debug, Clone, Serialize)]
struct Flash {
    kind: FlashKind,
    message: String,
}

/// What to show: a template and its values.
#[derive(Debug)]
pub struct Page {
    template: &'static str,
    title: String,
    status: StatusCode,
    context: tera::Context,
    errors: BTreeMap<String, Vec<String>>,
    form_error: Option<String>,
    values: BTreeMap<String, String>,
    flash: Option<Flash>,
}

impl Page {
    pub fn new(template: &'static str, title: impl Into<String>) -> Self {
        Self {
            template,
            title: title.into(),
            status: StatusCode::OK,
            context: tera::Context::new(),
            errors: BTreeMap::new(),
            form_error: None,
            values: BTreeMap::new(),
            flash: None,
        }
    }

    /// The generic error page.
    pub fn error(status: StatusCode, title: &str, message: &str) -> Self {
        Self::new("error.html", title)
            .status(status)
            .with("status", &status.as_u16())
            .with("title", title)
            .with("message", message)
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with<T: Serialize + ?Sized>(mut self, key: &'static str, value: &T) -> Self {
        self.context.insert(key, value);
        self
    }

    pub fn field_error(mut self, field: &str, message: impl Into<String>) -> Self {
        self.errors
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
        self
    }

    pub fn field_errors(mut self, field: &str, messages: Vec<String>) -> Self {
        if !messages.is_empty() {
            self.errors
                .entry(field.to_owned())
                .or_default()
                .extend(messages);
        }
        self
    }

    pub fn form_error(mut self, message: impl Into<String>) -> Self {
        self.form_error = Some(message.into());
        self
    }

    pub fn value(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values.insert(key.to_owned(), value.into());
        self
    }

    pub fn flash(mut self, kind: FlashKind, message: impl Into<String>) -> Self {
        self.flash = Some(Flash {
            kind,
            message: message.into(),
        });
        self
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.form_error.is_some()
    }

    /// An unprocessable form is answered 422 so scripts and tests can tell.
    pub fn invalid(self) -> Self {
        self.status(StatusCode::UNPROCESSABLE_ENTITY)
    }
}

#[derive(Serialize)]
struct ThemeView<'a> {
    name: &'a str,
    display_name: &'a str,
    logo: &'a str,
    support_text: &'a str,
    captcha_login: bool,
    captcha_forgot: bool,
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct UserView<'a> {
    name: &'a str,
    email: &'a str,
}

/// Per-request rendering context.
pub struct Ui {
    state: AppState,
    jar: CookieJar,
    headers: HeaderMap,
    pub theme: Arc<Theme>,
    pub client: Option<Client>,
    csrf: String,
    user: Option<CurrentUser>,
    /// The pending authorization request this page belongs to, if any.
    request: Option<String>,
    /// Where this page's forms may end besides here (CSP `form-action`).
    form_target: Option<String>,
}

impl Ui {
    /// `client_id` is the flow's client as the request names it (a link's
    /// marker: it chooses only the look). Unknown or malformed ids, and
    /// none, fall back to the portal the browser's session began from (see
    /// [`super::portal`]), then to the default theme; they are not carried on.
    pub async fn new(
        state: &AppState,
        jar: CookieJar,
        headers: &HeaderMap,
        client_id: Option<&str>,
        user: Option<CurrentUser>,
    ) -> Result<Self, AppError> {
        let client = match client_id.map(ClientId::parse) {
            Some(Ok(id)) => state.clients.get(&id).await?,
            _ => None,
        };
        let client = match client {
            Some(client) => Some(client),
            None => super::portal::session_portal_client(state, &jar, user.as_ref()).await,
        };
        let theme = state
            .themes
            .get(client.as_ref().and_then(|c| c.theme.as_deref()));
        let dev = state.config.server.dev_mode;
        let (csrf, jar) = match jar.get(csrf_cookie_name(dev)).map(|c| c.value().to_owned()) {
            Some(token) if token.len() == CSRF_FIELD_LEN => (token, jar),
            _ => {
                let token = random_token();
                let jar = jar.add(session::cookie(csrf_cookie_name(dev), token.clone(), dev));
                (token, jar)
            }
        };
        Ok(Self {
            state: state.clone(),
            jar,
            headers: headers.clone(),
            theme,
            client,
            csrf,
            user,
            request: None,
            form_target: None,
        })
    }

    pub fn jar(&self) -> &CookieJar {
        &self.jar
    }

    /// Replaces the cookie jar (after a session started or ended).
    pub fn set_jar(&mut self, jar: CookieJar) {
        self.jar = jar;
    }

    pub fn take_jar(&mut self) -> CookieJar {
        std::mem::take(&mut self.jar)
    }

    /// The theme's name when it is a client's own (not the default).
    pub fn theme_name(&self) -> Option<&str> {
        self.client.as_ref().and_then(|c| c.theme.as_deref())
    }

    pub fn client_id(&self) -> Option<&str> {
        self.client.as_ref().map(|c| c.id.as_str())
    }

    pub fn user(&self) -> Option<&CurrentUser> {
        self.user.as_ref()
    }

    pub fn set_user(&mut self, user: Option<CurrentUser>) {
        self.user = user;
    }

    /// Ties the page to a pending authorization request: its forms and links
    /// carry the request id, so signing in continues the relying party's flow.
    pub fn set_request(&mut self, request: Option<String>) {
        self.request = request;
    }

    /// Lets this page's forms end at `uri`, the flow's destination (a
    /// client's redirect URI): see [`super::headers::form_action_source`].
    /// A destination CSP cannot name widens nothing; that flow ends on a
    /// page with a link instead.
    pub fn allow_form_to(&mut self, uri: &str) {
        self.form_target = super::headers::form_action_source(uri);
    }

    pub fn request(&self) -> Option<&str> {
        self.request.as_deref()
    }

    /// `?client_id=…&req=…` (URL-encoded) or empty: appended to links between flow pages.
    pub fn flow_query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(id) = self.client_id() {
            parts.push(format!("client_id={}", urlencode(id)));
        }
        if let Some(req) = &self.request {
            parts.push(format!("req={}", urlencode(req)));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }

    /// `?client_id=…` or empty: the portal alone, for links in mails (a
    /// pending request belongs to this browser and means nothing in a mail).
    pub fn portal_query(&self) -> String {
        match self.client_id() {
            Some(id) => format!("?client_id={}", urlencode(id)),
            None => String::new(),
        }
    }

    /// The form's CSRF token matches this browser's cookie, and the request
    /// does not come from another site (`Sec-Fetch-Site` / `Origin`).
    pub fn csrf_ok(&self, form_token: &str) -> bool {
        let same_token = self
            .jar
            .get(csrf_cookie_name(self.state.config.server.dev_mode))
            .is_some()
            && constant_time_eq(form_token.as_bytes(), self.csrf.as_bytes());
        let fetch_site = self
            .headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok());
        let fetch_site_ok = match fetch_site {
            Some(site) => matches!(site, "same-origin" | "none"),
            None => true,
        };
        let origin_ok = match self
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            // Under `Referrer-Policy: no-referrer` browsers send `Origin: null`
            // even for our own forms; the fetch metadata still says same-origin.
            Some("null") => fetch_site == Some("same-origin"),
            Some(origin) => {
                origin
                    == self
                        .state
                        .config
                        .server
                        .issuer
                        .origin()
                        .ascii_serialization()
                    || origin == self.own_origin()
            }
            None => true,
        };
        same_token && fetch_site_ok && origin_ok
    }

    fn own_origin(&self) -> String {
        self.headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("{}://{h}", self.state.config.server.issuer.scheme()))
            .unwrap_or_default()
    }

    /// The page shown when a form's CSRF check fails: nothing was changed.
    pub fn csrf_failure(self) -> Response {
        self.render(Page::error(
            StatusCode::FORBIDDEN,
            "This form has expired",
            "For your security the form could not be accepted. Go back, reload the page and try again.",
        ))
    }

    pub fn render(self, page: Page) -> Response {
        let theme = &self.theme;
        let mut context = page.context;
        insert_theme(&mut context, theme, &page.title);
        context.insert("csrf_token", &self.csrf);
        context.insert("client_id", self.client_id().unwrap_or(""));
        context.insert("flow_query", &self.flow_query());
        context.insert("req", self.request.as_deref().unwrap_or(""));
        let passkeys = self.state.config.server.passkey_rp_id().is_some();
        context.insert("passkeys_offered", &passkeys);
        context.insert("errors", &page.errors);
        context.insert("values", &page.values);
        if let Some(message) = &page.form_error {
            context.insert("form_error", message);
        }
        if let Some(flash) = &page.flash {
            context.insert("flash", flash);
        }
        if let Some(current) = &self.user {
            context.insert(
                "user",
                &UserView {
                    name: &current.user.name,
                    email: current.user.email.as_str(),
                },
            );
        }
        match theme.render(page.template, &context) {
            Ok(html) => match &self.form_target {
                Some(source) => (
                    page.status,
                    self.jar,
                    [(
                        header::CONTENT_SECURITY_POLICY,
                        super::headers::csp_with_form_target(source),
                    )],
                    Html(html),
                )
                    .into_response(),
                None => (page.status, self.jar, Html(html)).into_response(),
            },
            Err(e) => AppError::from(e).into_response(),
        }
    }
}

/// What every page of a theme reads: its title, the theme, its static files.
fn insert_theme(context: &mut tera::Context, theme: &Theme, title: &str) {
    context.insert("page_title", title);
    context.insert(
        "theme",
        &ThemeView {
            name: &theme.name,
            display_name: &theme.meta.display_name,
            logo: &theme.meta.logo,
            support_text: &theme.meta.support_text,
            captcha_login: theme.meta.captcha_login,
            captcha_forgot: theme.meta.captcha_forgot,
            labels: &theme.labels,
        },
    );
    context.insert("static", &theme.static_prefix());
}

/// A page outside any form flow (no CSRF token, no user): the protocol's
/// own pages on the way back to a client.
pub fn render_bare(
    theme: &Theme,
    template: &str,
    title: &str,
    mut context: tera::Context,
) -> Result<String, super::theme::ThemeError> {
    insert_theme(&mut context, theme, title);
    context.insert("csrf_token", "");
    context.insert("flow_query", "");
    context.insert("client_id", "");
    context.insert("req", "");
    theme.render(template, &context)
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
