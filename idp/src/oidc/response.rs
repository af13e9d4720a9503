//! Sending the browser back to the relying party: success or error, in the
//! request's response mode, always with `iss` (RFC 9207) and `state`.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Serialize;

use super::request::ResponseMode;
use crate::web::AppState;
use crate::web::ui::urlencode;

/// Where and how to answer.
pub struct Return<'a> {
    pub redirect_uri: &'a str,
    pub mode: ResponseMode,
    pub state: Option<&'a str>,
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
                Redirect::to(&format!("{}{sep}{}", self.redirect_uri, query.join("&")))
                    .into_response()
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
                        // The page posts to the client: widen form-action to it alone.
                        let origin = url::Url::parse(self.redirect_uri)
                            .map(|u| u.origin().ascii_serialization())
                            .unwrap_or_default();
                        let csp = format!(
                            "default-src 'none'; script-src 'self'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
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
                    Err(e) => crate::web::AppError::Internal(e.to_string()).into_response(),
                }
            }
        }
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
