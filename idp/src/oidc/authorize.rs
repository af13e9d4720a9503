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

use super::request::{CodeGrant, SUPPORTED_SCOPES, code_key};
use super::response::Return;
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{ClientId, ClientKind, GrantType, RequestedClaims};
use crate::signin::request::{AuthRequest, PendingRequest, ResponseMode};
use crate::signin::{self, Next, Proof};
use crate::web::session::{CurrentUser, MaybeUser};
use crate::web::ui::{Page, Ui};
use crate::web::{AppError, AppState, browser};

/// The `acr` values and their rule are the sign-in pipeline's; named here
/// too for the token endpoints and the admin API.

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
    id_token_hint: Option<String>,
    acr_values: Option<String>,
    response_mode: Option<String>,
    request: Option<String>,
    request_uri: Option<String>,
    claims: Option<String>,
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
        || too_long(&p.claims, 4096)
        || too_long(&p.id_token_hint, 8192)
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
    let (essential_acr, claims) = match p.claims.as_deref() {
        None | Some("") => (None, RequestedClaims::default()),
        Some(claims) => match (
            signin::acr::essential_in_claims(claims),
            RequestedClaims::parse(claims),
        ) {
            (Ok(essential), Ok(asked)) => (essential, asked.allowed_by(&client.scopes)),
            _ => {
                return Ok(invalid(
                    "claims must be a JSON object (OpenID Connect Core 5.5)",
                ));
            }
        },
    };
    // 3.1.2.1: a hint names the account the client means, and binds the
    // request to it as `sub` with a value does (5.5.1, in `proceed`).
    let mut claims = claims;
    if let Some(hint) = p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        match super::hint::read(&state, hint) {
            Ok(hint) if hint.issued_to(client.id.as_str()) => {
                if claims.subject.as_ref().is_some_and(|s| *s != hint.subject) {
                    return Ok(invalid("id_token_hint and claims name different accounts"));
                }
                claims.subject = Some(hint.subject);
            }
            // Signed by a key retired since (or by none of ours): whom it
            // names cannot be checked, so nobody is taken for them. The
            // person signs in again; silently, that is not possible.
            Err(super::hint::Refused::UnknownKey) if prompt_none => {
                return Ok(back.error(
                    &state,
                    "login_required",
                    "the id_token_hint can no longer be verified: the user must sign in again",
                ));
            }
            Err(super::hint::Refused::UnknownKey) => prompt_login = true,
            Ok(_) | Err(super::hint::Refused::NotOurs) => {
                return Ok(invalid(
                    "id_token_hint is not an ID token this provider issued to this client",
                ));
            }
        }
    }
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
        prefers_mfa: signin::acr::prefers_mfa(
            p.acr_values.as_deref().unwrap_or("").split_whitespace(),
        ),
        essential_acr,
        claims,
    };
    let (binding, jar) = browser::ensure(jar, state.config.server.dev_mode);
    let request = AuthRequest {
        browser: binding,
        ..request
    };
    let id = random_token();
    signin::request::save(&state, &id, &request).await?;
    let pending = PendingRequest {
        id,
        request,
        client,
    };
    let response = proceed(&state, &pending, user, false).await?;
    Ok((jar, response).into_response())
}

/// What the person allows a request: its scopes, and the scopes of the
/// claims it asks for by name (OIDC Core 5.5), which are released as if
/// their scopes were asked for.
pub fn to_allow(request: &AuthRequest) -> Vec<String> {
    let mut scopes = request.scopes.clone();
    for scope in request.claims.scopes() {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_owned());
        }
    }
    scopes
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
    let Some(pending) = signin::load(&state, &jar, &q.req).await? else {
        return signin::expired::page(&state, jar, &headers).await;
    };
    // Reached from our own forms and links (sign-in, code, consent).
    proceed(&state, &pending, user, true).await
}

/// Where the request stands, as the sign-in pipeline decides: a step of
/// sign-in or consent (or, under `prompt=none`, the error that says which
/// was needed), or done: the code goes back to the client.
async fn proceed(
    state: &AppState,
    pending: &PendingRequest,
    user: Option<CurrentUser>,
    after_form: bool,
) -> Result<Response, AppError> {
    let request = &pending.request;
    let client = &pending.client;
    let back = Return {
        redirect_uri: &request.redirect_uri,
        mode: request.response_mode,
        state: request.state.as_deref(),
        theme: client.theme.as_deref(),
        after_form,
    };
    let proof = match &user {
        Some(current) => Proof::Session(current),
        None => Proof::Nobody,
    };
    // Consent covers the scopes of the claims asked for by name too: the
    // pipeline decides on a copy that lists them.
    let allow = to_allow(request);
    let widened;
    let decided = if allow.len() == request.scopes.len() {
        pending
    } else {
        widened = PendingRequest {
            request: AuthRequest {
                scopes: allow,
                ..request.clone()
            },
            ..pending.clone()
        };
        &widened
    };
    let next = signin::next(state, Some(decided), proof).await?;
    if next == Next::Unmet {
        signin::request::delete(state, &pending.id).await?;
        return Ok(back.error(
            state,
            "unmet_authentication_requirements",
            "the essential acr cannot be met for this user",
        ));
    }
    // 5.5.1 (and an `id_token_hint`, 3.1.2.1): a request naming its
    // subject is answered for that account alone, never for whoever else
    // holds the session.
    if let (Some(current), Some(subject)) = (&user, &request.claims.subject)
        && current.user.id.as_str() != subject
        && next != Next::Password
    {
        signin::request::delete(state, &pending.id).await?;
        return Ok(back.error(
            state,
            "login_required",
            "the signed-in account is not the one the request names",
        ));
    }
    if next != Next::Complete && request.prompt_none {
        signin::request::delete(state, &pending.id).await?;
        let (error, description) = match next {
            Next::Password => ("login_required", "the user is not signed in"),
            Next::Code | Next::SetUpAuthenticator => {
                ("interaction_required", "a second sign-in step is needed")
            }
            Next::Consent | Next::Complete | Next::Unmet => (
                "consent_required",
                "the user has not allowed this application",
            ),
        };
        return Ok(back.error(state, error, description));
    }
    let Some(user) = user else {
        return Ok(Redirect::to(&signin::route::location(
            Next::Password,
            Some(&pending.id),
            "",
        ))
        .into_response());
    };
    if next != Next::Complete {
        return signin::route::redirect(state, pending, &user, next).await;
    }
    // Single use: a second trip through here finds nothing.
    if !signin::request::take(state, &pending.id).await? {
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
        acr: crate::signin::acr::acr_reached(&user.session.amr, request.essential_acr.as_deref())
            .to_owned(),
        claims: request.claims.clone(),
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
