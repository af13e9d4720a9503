//! `/authorize` (OIDC Core 3.1.2): validates the request, then sends the
//! person through sign-in and consent as needed, and back to the client with
//! a code. An unknown client or an unregistered redirect URI gets an error
//! page and never a redirect; every other error goes back to the client.

use axum::Form;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::request::{
    AuthRequest, CodeGrant, ResponseMode, SUPPORTED_SCOPES, code_key, request_key,
};
use super::response::Return;
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{ClientId, ClientKind, GrantType};
use crate::store::Client;
use crate::web::session::{CurrentUser, MaybeUser};
use crate::web::ui::{Page, Ui, urlencode};
use crate::web::{AppError, AppState, browser, paths};

/// Authentication context class references this provider uses: the
/// password alone, or the password and a second step (TOTP).
pub const ACR_PASSWORD: &str = "1";
pub const ACR_MFA: &str = "2";

/// The `acr` a sign-in done with these methods reaches.
pub fn acr_for(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == "otp") {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
    max_age: Option<String>,
    login_hint: Option<String>,
    acr_values: Option<String>,
    response_mode: Option<String>,
    request: Option<String>,
    request_uri: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    MaybeUser(user): MaybeUser,
    params: Result<Query<AuthorizeParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    start(state, jar, headers, user, params).await
}

pub async fn post(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    MaybeUser(user): MaybeUser,
    params: Result<Form<AuthorizeParams>, FormRejection>,
) -> Result<Response, AppError> {
    let params = params.map(|Form(p)| p).unwrap_or_default();
    start(state, jar, headers, user, params).await
}

async fn bad_client_page(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
    message: &str,
) -> Result<Response, AppError> {
    let ui = Ui::new(state, jar, headers, None, None).await?;
    Ok(ui.render(Page::error(
        StatusCode::BAD_REQUEST,
        "This sign-in link is not valid",
        message,
    )))
}

/// Exact string comparison, except that a registered loopback IP literal
/// (`http://127.0.0.1/…`, `http://[::1]/…`) accepts any port: a native app
/// listens on whatever port the system gives it (RFC 8252 7.3). `localhost`
/// is compared exactly (RFC 8252 8.3 advises against it; a name may resolve
/// elsewhere), as are scheme, path and query.
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback_ip = |u: &url::Url| match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    // Only the canonical form: the parser drops tabs and line breaks that
    // the raw value (which becomes the Location header) would still carry.
    requested == req.as_str()
        && reg.scheme() == "http"
        && req.scheme() == "http"
        && loopback_ip(&reg)
        && reg.host() == req.host()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
}

fn too_long(value: &Option<String>, max: usize) -> bool {
    value.as_ref().is_some_and(|v| v.len() > max)
}

async fn start(
    state: AppState,
    jar: CookieJar,
    headers: HeaderMap,
    user: Option<CurrentUser>,
    p: AuthorizeParams,
) -> Result<Response, AppError> {
    // 1. Who is asking and where the answer goes: checked before any redirect.
    let client = match p.client_id.as_deref().map(ClientId::parse) {
        Some(Ok(id)) => state.clients.get(&id).await?,
        _ => None,
    };
    let Some(client) = client else {
        return bad_client_page(&state, jar, &headers, "The application that sent you here is not known. Go back and try again, or contact the application's support.").await;
    };
    let Some(redirect_uri) = p
        .redirect_uri
        .as_deref()
        .filter(|r| {
            client
                .redirect_uris
                .iter()
                .any(|u| redirect_matches(u.as_str(), r))
        })
        .map(str::to_owned)
    else {
        return bad_client_page(&state, jar, &headers, "The application sent you here with an address that is not registered for it, so you are not sent back. Contact the application's support.").await;
    };
    let mode = match p.response_mode.as_deref() {
        None | Some("query") => Some(ResponseMode::Query),
        Some("form_post") => Some(ResponseMode::FormPost),
        Some(_) => None,
    };
    let back = Return {
        redirect_uri: &redirect_uri,
        mode: mode.unwrap_or(ResponseMode::Query),
        state: p.state.as_deref().filter(|s| s.len() <= 2048),
        theme: client.theme.as_deref(),
        after_form: false,
    };
    // 2. Everything else goes back to the client as an error.
    let invalid = |description: &str| back.error(&state, "invalid_request", description);
    if mode.is_none() {
        return Ok(invalid("response_mode must be query or form_post"));
    }
    match p.response_type.as_deref() {
        Some("code") => {}
        None => return Ok(invalid("response_type is required")),
        Some(_) => {
            return Ok(back.error(
                &state,
                "unsupported_response_type",
                "only the code flow (response_type=code) is supported",
            ));
        }
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Ok(back.error(
            &state,
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    if p.request.is_some() {
        return Ok(back.error(
            &state,
            "request_not_supported",
            "request objects are not supported",
        ));
    }
    if p.request_uri.is_some() {
        return Ok(back.error(
            &state,
            "request_uri_not_supported",
            "request_uri is not supported",
        ));
    }
    if too_long(&p.state, 2048)
        || too_long(&p.nonce, 512)
        || too_long(&p.login_hint, 254)
        || too_long(&p.scope, 1024)
    {
        return Ok(invalid("a parameter is too long"));
    }
    let requested: Vec<&str> = p
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    if !requested.contains(&"openid") {
        return Ok(back.error(&state, "invalid_scope", "the openid scope is required"));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in requested {
        if SUPPORTED_SCOPES.contains(&s)
            && client.scopes.iter().any(|c| c == s)
            && !scopes.iter().any(|x| x == s)
        {
            scopes.push(s.to_owned());
        }
    }
    if !client.grant_types.contains(&GrantType::RefreshToken) {
        scopes.retain(|s| s != "offline_access");
    }
    let code_challenge = match (
        p.code_challenge.as_deref(),
        p.code_challenge_method.as_deref(),
    ) {
        (None, None) if client.kind == ClientKind::Public => {
            return Ok(invalid(
                "PKCE is required for public clients: send code_challenge with code_challenge_method=S256",
            ));
        }
        (None, None) if client.require_pkce => {
            return Ok(invalid(
                "PKCE is required for this client: send code_challenge with code_challenge_method=S256",
            ));
        }
        (None, None) => None,
        (Some(c), Some("S256")) if crate::oidc::pkce::well_formed(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => {
            return Ok(invalid(
                "code_challenge must be 43 to 128 characters of base64url",
            ));
        }
        (Some(_), None | Some("plain")) => {
            return Ok(invalid(
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
        _ => {
            return Ok(invalid(
                "code_challenge_method is only allowed with code_challenge=S256",
            ));
        }
    };
    let mut prompt_none = false;
    let mut prompt_login = false;
    let mut prompt_consent = false;
    for value in p.prompt.as_deref().unwrap_or("").split_whitespace() {
        match value {
            "none" => prompt_none = true,
            "login" | "select_account" => prompt_login = true,
            "consent" => prompt_consent = true,
            _ => {
                return Ok(invalid(
                    "prompt must be none, login, consent or select_account",
                ));
            }
        }
    }
    if prompt_none && (prompt_login || prompt_consent) {
        return Ok(invalid("prompt=none cannot be combined with other values"));
    }
    let max_age = match p.max_age.as_deref() {
        None | Some("") => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => return Ok(invalid("max_age must be a non-negative number of seconds")),
        },
    };
    let request = AuthRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.clone(),
        response_mode: back.mode,
        scopes,
        state: back.state.map(str::to_owned),
        nonce: p.nonce.clone(),
        code_challenge,
        prompt_login,
        prompt_consent,
        prompt_none,
        max_age,
        login_hint: p.login_hint.clone(),
        created_at: state.clock.now().unix_timestamp(),
        consented_by: None,
        browser: String::new(),
        acr_mfa: p
            .acr_values
            .as_deref()
            .is_some_and(|v| v.split_whitespace().any(|a| a == ACR_MFA)),
    };
    let (binding, jar) = browser::ensure(jar, state.config.server.dev_mode);
    let request = AuthRequest {
        browser: binding,
        ..request
    };
    let id = random_token();
    let ttl = std::time::Duration::from_secs(state.config.tokens.auth_request_ttl_secs);
    state
        .ephemeral
        .put(&request_key(&id), &request, ttl)
        .await?;
    let response = proceed(&state, &id, request, &client, user, false).await?;
    Ok((jar, response).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ContinueQuery {
    pub req: String,
}

/// `/authorize/continue?req=…`: back from the sign-in or consent page.
pub async fn resume(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: HeaderMap,
    MaybeUser(user): MaybeUser,
    Query(q): Query<ContinueQuery>,
) -> Result<Response, AppError> {
    let Some(request) = load(&state, &jar, &q.req).await? else {
        return expired_page(&state, jar, &headers).await;
    };
    let Some(client) = state.clients.get(&request.client_id).await? else {
        return expired_page(&state, jar, &headers).await;
    };
    // Reached from our own forms and links (sign-in, code, consent).
    proceed(&state, &q.req, request, &client, user, true).await
}

/// A pending request by id, for the browser that started it (`None` when
/// unknown, expired, or started in another browser).
pub async fn load(
    state: &AppState,
    jar: &CookieJar,
    id: &str,
) -> Result<Option<AuthRequest>, AppError> {
    if id.len() != 43 {
        return Ok(None);
    }
    let request: Option<AuthRequest> = state.ephemeral.get(&request_key(id)).await?;
    Ok(request.filter(|r| browser::matches(jar, state.config.server.dev_mode, &r.browser)))
}

pub async fn expired_page(
    state: &AppState,
    jar: CookieJar,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let ui = Ui::new(state, jar, headers, None, None).await?;
    Ok(ui.render(Page::error(
        StatusCode::BAD_REQUEST,
        "This sign-in has expired",
        "Too much time passed, or the sign-in was already completed. Go back to the application and start again.",
    )))
}

/// Where the request stands: sign-in, consent, or done.
pub async fn proceed(
    state: &AppState,
    id: &str,
    request: AuthRequest,
    client: &Client,
    user: Option<CurrentUser>,
    after_form: bool,
) -> Result<Response, AppError> {
    let back = Return {
        redirect_uri: &request.redirect_uri,
        mode: request.response_mode,
        state: request.state.as_deref(),
        theme: client.theme.as_deref(),
        after_form,
    };
    let now = state.clock.now().unix_timestamp();
    let needs_login = match &user {
        None => true,
        Some(u) => {
            (request.prompt_login && u.session.auth_time < request.created_at)
                || request
                    .max_age
                    .is_some_and(|max| now - u.session.auth_time > max)
        }
    };
    if needs_login {
        if request.prompt_none {
            state.ephemeral.delete(&request_key(id)).await?;
            return Ok(back.error(state, "login_required", "the user is not signed in"));
        }
        return Ok(
            Redirect::to(&format!("{}?req={}", paths::LOGIN, urlencode(id))).into_response(),
        );
    }
    let Some(user) = user else {
        return Ok(back.error(state, "login_required", "the user is not signed in"));
    };
    // Step-up: this request needs the second step and the session lacks it.
    let mfa_needed = client.require_mfa || request.acr_mfa || state.config.mfa.required;
    if mfa_needed && !user.session.amr.iter().any(|m| m == "otp") {
        if request.prompt_none {
            state.ephemeral.delete(&request_key(id)).await?;
            return Ok(back.error(
                state,
                "interaction_required",
                "a second sign-in step is needed",
            ));
        }
        let step = crate::mfa::second_step(state, &user.user, true)
            .await?
            .unwrap_or(crate::mfa::SecondStep::Enrol);
        // Setting up an authenticator changes how the account signs in: a
        // session alone (perhaps a stolen one) is not enough unless its
        // sign-in is recent; otherwise the password is asked first.
        if step == crate::mfa::SecondStep::Enrol
            && !crate::web::session::signed_in_recently(state, &user.session)
        {
            return Ok(
                Redirect::to(&format!("{}?req={}", paths::LOGIN, urlencode(id))).into_response(),
            );
        }
        let flow = crate::mfa::Flow {
            req: Some(id.to_owned()),
            client_id: Some(client.id.to_string()),
            return_to: Some(request.redirect_uri.clone()),
        };
        return crate::mfa::begin(state, CookieJar::new(), &user.user, step, flow).await;
    }
    let consented = request.consented_by.as_ref() == Some(&user.user.id);
    if !client.first_party && !consented {
        let remembered = state.store.consent(&user.user.id, &client.id).await?;
        let covered =
            remembered.is_some_and(|c| request.scopes.iter().all(|s| c.scopes.contains(s)));
        if request.prompt_consent || !covered {
            if request.prompt_none {
                state.ephemeral.delete(&request_key(id)).await?;
                return Ok(back.error(
                    state,
                    "consent_required",
                    "the user has not allowed this application",
                ));
            }
            return Ok(
                Redirect::to(&format!("{}?req={}", paths::CONSENT, urlencode(id))).into_response(),
            );
        }
    }
    // Single use: a second trip through here finds nothing.
    if state.ephemeral.take(&request_key(id)).await?.is_none() {
        return Ok(back.error(
            state,
            "invalid_request",
            "this authorization request was already used",
        ));
    }
    let code = random_token();
    let grant = CodeGrant {
        client_id: client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        user_id: user.user.id.clone(),
        auth_time: user.session.auth_time,
        amr: user.session.amr.clone(),
        acr: acr_for(&user.session.amr).to_owned(),
    };
    let ttl = std::time::Duration::from_secs(state.config.tokens.code_ttl_secs);
    state
        .ephemeral
        .put(&code_key(&sha256_hex(&code)), &grant, ttl)
        .await?;
    Ok(back.send(state, vec![("code", code)]))
}

#[cfg(test)]
mod tests {
    use super::redirect_matches;

    #[test]
    fn loopback_ip_redirects_accept_any_port_and_nothing_else_moves() {
        assert!(redirect_matches(
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_matches(
            "https://a.example/cb",
            "https://a.example:444/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/cb"
        ));
        assert!(redirect_matches(
            "http://127.0.0.1:8000/cb",
            "http://127.0.0.1:9/cb"
        ));
        assert!(redirect_matches("http://[::1]/cb", "http://[::1]:6000/cb"));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb2"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb?x=1"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://[::1]:5/cb"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/cb",
            "http://u@127.0.0.1:5/cb"
        ));
        assert!(!redirect_matches(
            "http://localhost/cb",
            "http://localhost:5/cb"
        ));
        assert!(!redirect_matches(
            "https://127.0.0.1/cb",
            "https://127.0.0.1:5/cb"
        ));
    }
}
