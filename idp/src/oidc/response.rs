//! Sending the browser back to the relying party: success or error, in the
//! request's response mode, always with `iss` (RFC 9207) and `state`.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::signin::request::ResponseMode;
use crate::web::AppState;
use crate::web::headers::form_action_source;
use crate::web::ui::urlencode;

/// Where and how to answer.
pub struct Return<'a> {
    pub redirect_uri: &'a str,
    pub mode: ResponseMode,
    pub state: Option<&'a str>,
    /// The client's theme, for the pages shown on the way back.
    pub theme: Option<&'a str>,
    /// The answer ends the redirects that follow one of our forms, which
    /// Chromium checks against that form's `form-action`: a destination CSP
    /// cannot name gets a page with a link instead of a redirect.
    pub after_form: bool,
}

#[derive(Serialize)]
struct Param<'a> {
    name: &'a str,
    value: &'a str,
}

impl Return<'_> {
    pub fn error(&self, app: &AppState, error: &str, description: &str) -> Response {
        self.send(
            app,
            vec![
                ("error", error.to_owned()),
                ("error_description", description.to_owned()),
            ],
        )
    }

    pub fn send(&self, app: &AppState, mut params: Vec<(&str, String)>) -> Response {
        if let Some(state) = self.state {
            params.push(("state", state.to_owned()));
        }
        params.push(("iss", issuer(app)));
        let nameable = form_action_source(self.redirect_uri);
        match self.mode {
            ResponseMode::Query => {
                let query: Vec<String> = params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", urlencode(v)))
                    .collect();
                let sep = if self.redirect_uri.contains('?') {
                    '&'
                } else {
                    '?'
                };
                let location = format!("{}{sep}{}", self.redirect_uri, query.join("&"));
                if self.after_form && nameable.is_none() {
                    return continue_page(app, self.theme, &location);
                }
                Redirect::to(&location).into_response()
            }
            ResponseMode::FormPost => {
                let mut context = tera::Context::new();
                context.insert("action", self.redirect_uri);
                let list: Vec<Param<'_>> = params
                    .iter()
                    .map(|(k, v)| Param { name: k, value: v })
                    .collect();
                context.insert("params", &list);
                match app.themes.get(None).render("form_post.html", &context) {
                    Ok(html) => {
                        // The page posts to the client: form-action names it
                        // alone, or (an origin CSP cannot name) is left out:
                        // the page holds nothing but this one form of ours.
                        let form_action = nameable
                            .map(|source| format!("form-action {source}; "))
                            .unwrap_or_default();
                        let csp = format!(
                            "default-src 'none'; script-src 'self'; {form_action}frame-ancestors 'none'; base-uri 'none'"
                        );
                        (
                            StatusCode::OK,
                            [
                                (header::CONTENT_SECURITY_POLICY, csp),
                                (header::CACHE_CONTROL, "no-store".to_owned()),
                            ],
                            Html(html),
                        )
                            .into_response()
                    }
                    Err(e) => crate::web::AppError::from(e).into_response(),
                }
            }
        }
    }
}

/// "Continue to the application": a link to `location`, in the client's theme.
fn continue_page(app: &AppState, theme: Option<&str>, location: &str) -> Response {
    let mut context = tera::Context::new();
    context.insert("continue_url", location);
    let theme = app.themes.get(theme);
    match crate::web::ui::render_bare(
        &theme,
        "continue.html",
        "Continue to the application",
        context,
    ) {
        Ok(html) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Err(e) => crate::web::AppError::from(e).into_response(),
    }
}

/// The issuer identifier exactly as in the discovery document.
pub fn issuer(app: &AppState) -> String {
    app.config
        .server
        .issuer
        .as_str()
        .trim_end_matches('/')
        .to_owned()
}

/// `GET /oidc/form-post.js`: submits the form_post page (no inline script under our CSP).
pub async fn form_post_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        "document.addEventListener('DOMContentLoaded',function(){var f=document.getElementById('form-post');if(f){f.submit();}});\n",
    )
        .into_response()
}
