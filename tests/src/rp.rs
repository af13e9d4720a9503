//! A relying party of the tests' own, served on its own origin (its own
//! loopback port): a server-side code-flow client written with the stock
//! `openidconnect` crate, configured from discovery, as a portal's developers
//! would write it. A browser is sent to the provider from its `/login` and
//! comes back to its `/cb`, so a test in a real browser ends where a person's
//! sign-in ends: on the application's page, across origins.
//!
//! - `GET /login` starts a flow: `state`, `nonce` and the PKCE verifier stay
//!   here, bound to the browser by a cookie. Options in its query go on to
//!   the authorization request: `prompt` (`none`, `consent`, `login`) and
//!   `response_mode` (`form_post`).
//! - `GET /cb` (query) and `POST /cb` (`form_post`) check `state`, the
//!   browser and `iss`, redeem the code with the verifier, verify the ID
//!   token (signature, issuer, audience, expiry, nonce) and show its claims:
//!   `sub`, `email`, `acr`, `amr`, `auth_time`. An `error=` answer is shown
//!   as such.
//! - `GET /logout` sends the browser to the provider's end-session endpoint
//!   with `id_token_hint`, `post_logout_redirect_uri` and `state`;
//!   `GET /signed-out` is that post-logout page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::Deserialize;

use crate::TestApp;
use crate::browser::{NewClient, register_client};

type RpClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the ID token of one completed sign-in said.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub sub: String,
    pub email: Option<String>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    /// Seconds since the epoch.
    pub auth_time: Option<i64>,
    pub id_token: String,
    /// How the answer came: `GET` (query) or `POST` (form_post).
    pub method: String,
}

/// A flow started at `/login`, waiting for its answer at `/cb`.
struct Flow {
    browser: String,
    nonce: Nonce,
    verifier: String,
}

struct Inner {
    base_url: String,
    issuer: String,
    client_id: String,
    client: RpClient,
    http: reqwest::Client,
    end_session_endpoint: String,
    cookie: String,
    flows: Mutex<HashMap<String, Flow>>,
    /// Each browser's latest sign-in, by the browser's cookie.
    sessions: Mutex<HashMap<String, SignedIn>>,
    /// Every completed sign-in, in order.
    history: Mutex<Vec<SignedIn>>,
    /// Logouts under way: state → browser.
    logouts: Mutex<HashMap<String, String>>,
}

/// A running test relying party.
#[derive(Clone)]
pub struct TestRp {
    pub base_url: String,
    inner: Arc<Inner>,
}

impl TestRp {
    /// Registers `client` with the provider, its redirect URI being this
    /// relying party's `/cb` and its post-logout address its `/signed-out`
    /// (whatever `client` said), then serves it on a free loopback port.
    pub async fn start(app: &TestApp, client: NewClient<'_>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port for the relying party");
        let address = listener.local_addr().expect("local address");
        let base_url = format!("http://{address}");
        let callback = format!("{base_url}/cb");
        let signed_out = format!("{base_url}/signed-out");
        let client_id = client.id.to_owned();
        let secret = register_client(
            app,
            NewClient {
                redirect_uri: &callback,
                post_logout_redirect_uri: Some(&signed_out),
                ..client
            },
        )
        .await;

        // openidconnect requires redirects off for its HTTP client (SSRF).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let metadata = CoreProviderMetadata::discover_async(
            IssuerUrl::new(app.base_url.clone()).unwrap(),
            &http,
        )
        .await
        .expect("discovery document and JWKS the relying party accepts");
        let issuer = metadata.issuer().as_str().to_owned();
        // The end-session endpoint is not in openidconnect's core metadata.
        let discovery: serde_json::Value = http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let end_session_endpoint = discovery["end_session_endpoint"]
            .as_str()
            .expect("an end_session_endpoint")
            .to_owned();
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(client_id.clone()),
            secret.map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(callback).unwrap());
        let inner = Arc::new(Inner {
            base_url: base_url.clone(),
            issuer,
            client_id,
            client,
            http,
            end_session_endpoint,
            // Cookies do not keep ports apart: the provider and other relying
            // parties on 127.0.0.1 see it too, so the name says whose it is.
            cookie: format!("rp_browser_{}", address.port()),
            flows: Mutex::default(),
            sessions: Mutex::default(),
            history: Mutex::default(),
            logouts: Mutex::default(),
        });
        let router = Router::new()
            .route("/", get(home))
            .route("/login", get(login))
            .route("/cb", get(callback_query).post(callback_form))
            .route("/logout", get(logout))
            .route("/signed-out", get(signed_out_page))
            .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base_url, inner }
    }

    /// An address on this relying party, e.g. `url("/login?prompt=none")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Every sign-in completed here so far, in order.
    pub fn sign_ins(&self) -> Vec<SignedIn> {
        self.inner.history.lock().unwrap().clone()
    }

    /// The latest sign-in completed here.
    pub fn last_sign_in(&self) -> SignedIn {
        self.sign_ins()
            .pop()
            .expect("a sign-in completed at the relying party")
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginOptions {
    prompt: Option<String>,
    /// An ID token this relying party received, sent back as the account
    /// it means (OIDC Core 3.1.2.1).
    id_token_hint: Option<String>,
    response_mode: Option<String>,
    /// Space-separated, `openid` implied; default `email profile`.
    scope: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Answer {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AfterLogout {
    state: Option<String>,
}

impl Inner {
    fn browser_of(&self, headers: &HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == self.cookie)
            .map(|(_, value)| value.to_owned())
    }
}

async fn home(State(rp): State<Arc<Inner>>) -> Html<String> {
    page(
        &format!("{} (test app)", rp.client_id),
        "<p><a href=\"/login\">Sign in</a></p>",
    )
}

async fn login(
    State(rp): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(options): Query<LoginOptions>,
) -> Response {
    let (browser, new_cookie) = match rp.browser_of(&headers) {
        Some(b) => (b, None),
        None => {
            let b = uuid::Uuid::new_v4().simple().to_string();
            (b.clone(), Some(b))
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    let scope = options.scope.as_deref().unwrap_or("email profile");
    for s in scope.split_whitespace().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(s.to_owned()));
    }
    if let Some(prompt) = options.prompt.as_deref() {
        request = request.add_extra_param("prompt", prompt.to_owned());
    }
    if let Some(hint) = options.id_token_hint.as_deref() {
        request = request.add_extra_param("id_token_hint", hint.to_owned());
    }
    if let Some(mode) = options.response_mode.as_deref() {
        request = request.add_extra_param("response_mode", mode.to_owned());
    }
    let (url, state, nonce) = request.url();
    rp.flows.lock().unwrap().insert(
        state.secret().clone(),
        Flow {
            browser,
            nonce,
            verifier: verifier.secret().clone(),
        },
    );
    let mut response = Redirect::to(url.as_str()).into_response();
    if let Some(b) = new_cookie {
        let cookie = format!("{}={b}; Path=/; HttpOnly; SameSite=Lax", rp.cookie);
        response
            .headers_mut()
            .insert(header::SET_COOKIE, cookie.parse().unwrap());
    }
    response
}

async fn callback_query(
    State(rp): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(answer): Query<Answer>,
) -> Response {
    callback(rp, headers, answer, "GET").await
}

async fn callback_form(
    State(rp): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(answer): Form<Answer>,
) -> Response {
    callback(rp, headers, answer, "POST").await
}

async fn callback(rp: Arc<Inner>, headers: HeaderMap, answer: Answer, method: &str) -> Response {
    let fail = |why: String| {
        (
            StatusCode::BAD_REQUEST,
            page(
                "Relying party error",
                &format!("<p id=\"rp-error\">{}</p>", escape(&why)),
            ),
        )
            .into_response()
    };
    let Some(state) = answer.state.as_deref() else {
        return fail("the answer has no state".into());
    };
    let Some(flow) = rp.flows.lock().unwrap().remove(state) else {
        return fail(format!("no flow waits for state {state}"));
    };
    let Some(browser) = rp.browser_of(&headers).filter(|b| *b == flow.browser) else {
        return fail(
            "the answer came to another browser than the one that started the flow".into(),
        );
    };
    // RFC 9207: the answer says which provider sent it.
    if answer.iss.as_deref() != Some(rp.issuer.trim_end_matches('/'))
        && answer.iss.as_deref() != Some(rp.issuer.as_str())
    {
        return fail(format!("iss {:?}, expected {}", answer.iss, rp.issuer));
    }
    if let Some(error) = answer.error.as_deref() {
        let description = answer.error_description.as_deref().unwrap_or("");
        return page(
            "Sign-in did not complete",
            &format!(
                "<p>The provider answered <code id=\"error\">{}</code></p>\
                 <p id=\"error_description\">{}</p><p>Answer came by <span id=\"method\">{method}</span>.</p>",
                escape(error),
                escape(description)
            ),
        )
        .into_response();
    }
    let Some(code) = answer.code else {
        return fail("neither code nor error in the answer".into());
    };
    let request = match rp.client.exchange_code(AuthorizationCode::new(code)) {
        Ok(r) => r,
        Err(e) => return fail(format!("no token endpoint: {e}")),
    };
    let tokens = match request
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier))
        .request_async(&rp.http)
        .await
    {
        Ok(t) => t,
        Err(e) => return fail(format!("the code was not redeemed: {e:?}")),
    };
    let Some(id_token) = tokens.id_token() else {
        return fail("no ID token".into());
    };
    let claims = match id_token.claims(&rp.client.id_token_verifier(), &flow.nonce) {
        Ok(c) => c,
        Err(e) => return fail(format!("the ID token does not verify: {e}")),
    };
    let signed_in = SignedIn {
        sub: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
        amr: claims
            .auth_method_refs()
            .map(|m| m.iter().map(|a| a.as_str().to_owned()).collect())
            .unwrap_or_default(),
        auth_time: claims.auth_time().map(|t| t.timestamp()),
        id_token: id_token.to_string(),
        method: method.to_owned(),
    };
    rp.sessions
        .lock()
        .unwrap()
        .insert(browser, signed_in.clone());
    rp.history.lock().unwrap().push(signed_in.clone());
    let row = |name: &str, value: &str| {
        format!("<dt>{name}</dt><dd id=\"{name}\">{}</dd>", escape(value))
    };
    let claims_html = [
        row("sub", &signed_in.sub),
        row("email", signed_in.email.as_deref().unwrap_or("")),
        row("acr", signed_in.acr.as_deref().unwrap_or("")),
        row("amr", &signed_in.amr.join(" ")),
        row(
            "auth_time",
            &signed_in
                .auth_time
                .map(|t| t.to_string())
                .unwrap_or_default(),
        ),
        row("method", method),
    ]
    .concat();
    page(
        &format!("Signed in to {}", rp.client_id),
        &format!("<dl id=\"claims\">{claims_html}</dl><p><a href=\"/logout\">Sign out</a></p>"),
    )
    .into_response()
}

async fn logout(State(rp): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let browser = rp.browser_of(&headers);
    let hint = browser
        .as_ref()
        .and_then(|b| rp.sessions.lock().unwrap().get(b).cloned());
    let (Some(browser), Some(signed_in)) = (browser, hint) else {
        return (
            StatusCode::BAD_REQUEST,
            page(
                "Relying party error",
                "<p id=\"rp-error\">not signed in here</p>",
            ),
        )
            .into_response();
    };
    let state = uuid::Uuid::new_v4().simple().to_string();
    rp.logouts.lock().unwrap().insert(state.clone(), browser);
    let mut url = url::Url::parse(&rp.end_session_endpoint).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &signed_in.id_token)
        .append_pair("client_id", &rp.client_id)
        .append_pair(
            "post_logout_redirect_uri",
            &format!("{}/signed-out", rp.base_url),
        )
        .append_pair("state", &state);
    Redirect::to(url.as_str()).into_response()
}

async fn signed_out_page(
    State(rp): State<Arc<Inner>>,
    headers: HeaderMap,
    Query(after): Query<AfterLogout>,
) -> Response {
    let browser = rp.browser_of(&headers);
    let started = after
        .state
        .as_deref()
        .and_then(|s| rp.logouts.lock().unwrap().remove(s));
    if started.is_none() || started != browser {
        return (
            StatusCode::BAD_REQUEST,
            page(
                "Relying party error",
                "<p id=\"rp-error\">a sign-out this browser did not start (state)</p>",
            ),
        )
            .into_response();
    }
    if let Some(b) = browser {
        rp.sessions.lock().unwrap().remove(&b);
    }
    page(
        &format!("Signed out of {}", rp.client_id),
        "<p id=\"signed-out\">You are signed out of the test app.</p>",
    )
    .into_response()
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title><link rel=\"icon\" href=\"data:,\"></head>\
         <body><h1>{t}</h1>{body}</body></html>",
        t = escape(title)
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
