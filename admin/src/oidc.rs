//! The console as a relying party: authorization code flow with PKCE
//! (RFC 7636, S256) and `state` bound to this browser by a cookie, the code
//! redeemed on the back channel with the client secret, refresh when the
//! access token is about to expire, RP-Initiated Logout at the end.
//!
//! The ID token comes straight from the token endpoint over the back
//! channel, so its signature is not checked again here (OpenID Connect Core
//! 3.1.3.7, item 6); its issuer, audience, nonce and expiry are.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::console::Console;
use crate::error::PageError;
use crate::session::{
    self, SESSION_COOKIE, SessionData, cookie, cookie_name, hashed, open, random_token,
    safe_return, same, seal,
};
use crate::signed::Signed;
use crate::tokens::token_call;
use crate::views;

const LOGIN_COOKIE: &str = "idp_console_login";
/// A sign-in must come back within this.
const LOGIN_TTL: std::time::Duration = std::time::Duration::from_secs(10 * 60);
/// What the console asks for: `admin` is what the admin API requires.
/// `offline_access`: a refresh token, so the console renews its access
/// token (10 minutes) until the sign-in is too old for the admin API.
const SCOPE: &str = "openid profile email offline_access admin";

#[derive(Serialize, Deserialize)]
struct PendingLogin {
    nonce: String,
    verifier: String,
    return_to: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    return_to: Option<String>,
}

/// Starts a sign-in at the provider, asking for the second step (`acr_values=2`).
pub(crate) async fn login(
    State(console): State<Console>,
    jar: CookieJar,
    Query(q): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let state = random_token();
    let pending = PendingLogin {
        nonce: random_token(),
        verifier: random_token(),
        return_to: safe_return(q.return_to.as_deref()),
    };
    let bytes = serde_json::to_vec(&pending).map_err(|e| PageError::internal(e.to_string()))?;
    // Sealed with the state too: the store alone does not give the verifier.
    let sealed = seal("login", &state, &bytes)?;
    console
        .0
        .sessions
        .put(&hashed("login", &state), sealed, LOGIN_TTL)
        .await?;
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let config = console.config();
    let mut url = config.endpoints.authorize.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &config.client_id)
        .append_pair("redirect_uri", config.redirect_uri().as_str())
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("acr_values", "2");
    let jar = jar.add(cookie(&console, LOGIN_COOKIE, state));
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

#[derive(Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct IdClaims {
    iss: String,
    aud: Audience,
    sub: String,
    exp: i64,
    nonce: Option<String>,
    name: Option<String>,
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn has(&self, client: &str) -> bool {
        match self {
            Self::One(a) => a == client,
            Self::Many(list) => list.iter().any(|a| a == client),
        }
    }
}

fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// The provider sends the browser back here with a code (or an error).
pub(crate) async fn callback(
    State(console): State<Console>,
    jar: CookieJar,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, PageError> {
    let login_cookie = cookie_name(&console, LOGIN_COOKIE);
    let started = jar.get(&login_cookie).map(|c| c.value().to_owned());
    let jar = jar.remove(cookie(&console, LOGIN_COOKIE, String::new()));
    let expired = || {
        PageError::SignInFailed(
            "This sign-in did not start in this browser, or took longer than 10 minutes.".into(),
        )
    };
    let (Some(state), Some(started)) = (q.state.as_deref(), started) else {
        return Err(expired());
    };
    if !same(state, &started) {
        return Err(expired());
    }
    let Some(bytes) = console.0.sessions.take(&hashed("login", state)).await? else {
        return Err(expired());
    };
    let plain = open("login", state, &bytes).ok_or_else(expired)?;
    let pending: PendingLogin = serde_json::from_slice(&plain).map_err(|_| expired())?;
    let config = console.config();
    // RFC 9207: the answer must come from our provider.
    if let Some(iss) = &q.iss
        && !same_issuer(iss, config.endpoints.issuer.as_str())
    {
        return Err(PageError::SignInFailed(
            "The answer came from another identity provider.".into(),
        ));
    }
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or(error);
        return Err(PageError::SignInFailed(format!(
            "The identity provider answered: {why}"
        )));
    }
    let Some(code) = q.code else {
        return Err(PageError::SignInFailed(
            "The identity provider sent no code.".into(),
        ));
    };
    let answer = token_call(
        &console,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", config.redirect_uri().as_str()),
            ("code_verifier", &pending.verifier),
        ],
    )
    .await?
    .ok_or_else(|| {
        PageError::SignInFailed("The sign-in code was refused; sign in again.".into())
    })?;
    let id_token = answer
        .id_token
        .clone()
        .ok_or_else(|| PageError::Upstream("the token endpoint sent no ID token".into()))?;
    let claims = id_claims(&id_token)?;
    if !same_issuer(&claims.iss, config.endpoints.issuer.as_str())
        || !claims.aud.has(&config.client_id)
        || claims
            .nonce
            .as_deref()
            .is_none_or(|n| !same(n, &pending.nonce))
        || claims.exp <= console.now()
    {
        return Err(PageError::SignInFailed(
            "The ID token was not for this console or this sign-in.".into(),
        ));
    }
    let id = random_token();
    let data = SessionData {
        name: claims
            .name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| claims.email.clone().unwrap_or_default()),
        email: claims.email.unwrap_or_default(),
        sub: claims.sub,
        access_expires_at: console.now() + answer.expires_in.unwrap_or(60),
        access_token: answer.access_token,
        refresh_token: answer.refresh_token,
        id_token,
        csrf: random_token(),
        flash: None,
        last_seen: console.now(),
    };
    console.save(&id, &data).await?;
    let jar = jar.add(cookie(&console, SESSION_COOKIE, id));
    Ok((jar, Redirect::to(&pending.return_to)).into_response())
}

fn id_claims(token: &str) -> Result<IdClaims, PageError> {
    let bad = || PageError::Upstream("the ID token is not a JWT".into());
    let payload = token.split('.').nth(1).ok_or_else(bad)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

/// Signs out of the console and of the provider: the session is forgotten,
/// the refresh token revoked (RFC 7009), and the browser sent to the
/// provider's logout with the ID token as hint.
pub(crate) async fn logout(
    State(console): State<Console>,
    jar: CookieJar,
    who: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    who.check_csrf(&form.csrf)?;
    console.forget(&who.id).await?;
    let config = console.config();
    if let Some(token) = &who.data.refresh_token {
        let revoked = console
            .0
            .http
            .post(config.endpoints.revocation.clone())
            .basic_auth(
                session::urlencode(&config.client_id),
                Some(session::urlencode(&config.client_secret)),
            )
            .form(&[
                ("token", token.as_str()),
                ("token_type_hint", "refresh_token"),
            ])
            .send()
            .await;
        if let Err(e) = revoked {
            tracing::warn!(error = %e, "could not revoke the console's refresh token");
        }
    }
    let mut url = config.endpoints.end_session.clone();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &who.data.id_token)
        .append_pair("client_id", &config.client_id)
        .append_pair(
            "post_logout_redirect_uri",
            crate::config::under(&config.url, "signed-out").as_str(),
        );
    let jar = jar.remove(cookie(&console, SESSION_COOKIE, String::new()));
    Ok((jar, Redirect::to(url.as_str())).into_response())
}

pub(crate) async fn signed_out(State(console): State<Console>) -> Result<Response, PageError> {
    let body = console.0.views.render(
        "signed_out.html",
        &views::context("signed-out", serde_json::json!({})),
    )?;
    Ok(views::html(body))
}
