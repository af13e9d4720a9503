//! Who may call the admin API: the bearer of an access token this provider
//! issued (RFC 9068), carrying the `admin` scope, and either
//!
//! - issued to the built-in console client for a person who is an
//!   administrator (`user_account.is_admin`) and whose sign-in included a
//!   one-time code (`amr` has `otp`), or
//! - issued by client_credentials to a client whose registration still
//!   grants `admin` (automation).
//!
//! Refusals follow RFC 6750 section 3 (`invalid_token` 401,
//! `insufficient_scope` 403) and RFC 9470 (`insufficient_user_authentication`
//! 401 with the `acr_values` to ask for).

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, ErrorBody};
use crate::domain::{ClientId, UserId};
use crate::signin::acr::ACR_MFA;
use crate::store::User;
use crate::tokens::AccessClaims;
use crate::web::AppState;
use crate::web::client_meta::ClientMeta;

/// The scope every admin token carries.
pub const ADMIN_SCOPE: &str = "admin";
/// The built-in console's client id: the only client whose user tokens
/// the admin API accepts.
pub const CONSOLE_CLIENT_ID: &str = "admin-console";
const REALM: &str = "idp-admin";

/// Who is acting.
#[derive(Debug, Clone)]
pub enum Principal {
    User(Box<User>),
    Client(ClientId),
}

/// An authorised administrator. A handler that takes it cannot run for
/// anyone else.
#[derive(Debug, Clone)]
pub struct Admin {
    pub principal: Principal,
    /// Where the request came from, for the audit trail.
    pub meta: ClientMeta,
}

impl Admin {
    /// How the audit trail names this administrator (`AuditEvent.actor`).
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::User(u) => format!("user:{}", u.id),
            Principal::Client(c) => format!("client:{c}"),
        }
    }

    /// The administrator's own account, when a person is acting.
    pub fn user_id(&self) -> Option<&UserId> {
        match &self.principal {
            Principal::User(u) => Some(&u.id),
            Principal::Client(_) => None,
        }
    }
}

/// A person's token comes only from the console, which keeps it on its
/// side and calls on behalf of the administrator's browser: the browser's
/// address and user agent it names are what the audit trail records. (Only
/// the console holds such tokens, so only it can name them; a client's
/// client_credentials call is recorded as it comes.)
fn on_behalf_of_browser(meta: &mut ClientMeta, headers: &axum::http::HeaderMap) {
    if let Some(ip) =
        client_addr::header_text(headers, client_addr::BROWSER_IP).and_then(|v| v.parse().ok())
    {
        meta.ip = ip;
    }
    // The console's own user agent is never the administrator's.
    meta.user_agent = client_addr::header_text(headers, client_addr::BROWSER_AGENT);
}

/// A refusal, with its `WWW-Authenticate` challenge.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    /// `None` when no credentials were sent (RFC 6750 3.1: no error code then).
    error: Option<&'static str>,
    message: &'static str,
    /// Extra challenge parameter, e.g. `scope="admin"`.
    param: Option<(&'static str, std::borrow::Cow<'static, str>)>,
}

fn refuse(status: StatusCode, error: &'static str, message: &'static str) -> Refusal {
    Refusal {
        status,
        error: Some(error),
        message,
        param: None,
    }
}

fn invalid_token(message: &'static str) -> Refusal {
    refuse(StatusCode::UNAUTHORIZED, "invalid_token", message)
}

fn insufficient_scope(message: &'static str) -> Refusal {
    Refusal {
        param: Some(("scope", ADMIN_SCOPE.into())),
        ..refuse(StatusCode::FORBIDDEN, "insufficient_scope", message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut challenge = format!("Bearer realm=\"{REALM}\"");
        if let Some(error) = self.error {
            challenge.push_str(&format!(
                ", error=\"{error}\", error_description=\"{}\"",
                self.message
            ));
        }
        if let Some((name, value)) = self.param {
            challenge.push_str(&format!(", {name}=\"{value}\""));
        }
        let body = ErrorBody {
            error: self.error.unwrap_or("invalid_token"),
            message: self.message.to_owned(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

enum Failure {
    Refused(Refusal),
    Failed(ApiError),
}

impl From<Refusal> for Failure {
    fn from(r: Refusal) -> Self {
        Self::Refused(r)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

impl From<crate::store::Error> for Failure {
    fn from(e: crate::store::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(mut meta) = ClientMeta::from_request_parts(parts, state).await;
        match authorise(parts, state).await {
            Ok(principal) => {
                if matches!(principal, Principal::User(_)) {
                    on_behalf_of_browser(&mut meta, &parts.headers);
                }
                Ok(Admin { principal, meta })
            }
            Err(Failure::Refused(r)) => {
                tracing::info!(error = r.error, reason = r.message, "admin API refused");
                Err(r.into_response())
            }
            Err(Failure::Failed(e)) => Err(e.into_response()),
        }
    }
}

async fn authorise(parts: &Parts, state: &AppState) -> Result<Principal, Failure> {
    let Some(token) = crate::oidc::bearer(&parts.headers) else {
        return Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: None,
            message: "a bearer access token is required",
            param: None,
        }
        .into());
    };
    let claims = crate::oidc::active_access_token(state, token)
        .await
        .map_err(|e| ApiError::Internal(crate::web::AppError::Internal(e.description)))?
        .ok_or_else(|| invalid_token("the access token is invalid, expired or revoked"))?;
    if !claims.scope.split_whitespace().any(|s| s == ADMIN_SCOPE) {
        return Err(insufficient_scope("the access token does not carry the admin scope").into());
    }
    if claims.auth_time.is_none() {
        return client_principal(state, &claims).await;
    }
    user_principal(state, &claims).await
}

/// A client_credentials token: its client must still be granted `admin`, so
/// taking the scope away stops automation at once.
async fn client_principal(state: &AppState, claims: &AccessClaims) -> Result<Principal, Failure> {
    if claims.sub != claims.client_id {
        return Err(invalid_token("the access token names no signed-in person").into());
    }
    let id = ClientId::parse(&claims.client_id)
        .map_err(|_| invalid_token("the access token names an unknown client"))?;
    let client = state
        .store
        .client_by_id(&id)
        .await?
        .ok_or_else(|| invalid_token("the access token names an unknown client"))?;
    if !client.scopes.iter().any(|s| s == ADMIN_SCOPE) {
        return Err(insufficient_scope("this client is no longer granted the admin scope").into());
    }
    Ok(Principal::Client(id))
}

/// A person's token, from the console, with the second step done, for an
/// active administrator (checked now, not when the token was issued).
async fn user_principal(state: &AppState, claims: &AccessClaims) -> Result<Principal, Failure> {
    if claims.client_id != CONSOLE_CLIENT_ID {
        return Err(insufficient_scope(
            "people's admin tokens must be issued to the admin console",
        )
        .into());
    }
    if !crate::signin::acr::has_second_factor(&claims.amr) {
        return Err(Refusal {
            param: Some(("acr_values", ACR_MFA.into())),
            ..refuse(
                StatusCode::UNAUTHORIZED,
                "insufficient_user_authentication",
                "administration needs a sign-in with a second factor (a one-time code or a passkey)",
            )
        }
        .into());
    }
    // A refresh token carries its first sign-in's `amr` for months: a
    // person administers only on a recent sign-in (RFC 9470 `max_age`).
    let max_age = state
        .config
        .admin
        .max_sign_in_age_minutes
        .saturating_mul(60);
    let signed_in = claims.auth_time.unwrap_or(i64::MIN);
    let age = state.clock.now().unix_timestamp().saturating_sub(signed_in);
    if u64::try_from(age).map_or(true, |age| age > max_age) {
        return Err(Refusal {
            param: Some(("max_age", max_age.to_string().into())),
            ..refuse(
                StatusCode::UNAUTHORIZED,
                "insufficient_user_authentication",
                "the sign-in behind this token is too old to administer: sign in again",
            )
        }
        .into());
    }
    let id = UserId::parse(&claims.sub)
        .map_err(|_| invalid_token("the access token names no known user"))?;
    let user = state
        .store
        .user_by_id(&id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| invalid_token("the user is no longer active"))?;
    if !user.is_admin {
        return Err(insufficient_scope("this user is not an administrator").into());
    }
    Ok(Principal::User(Box::new(user)))
}
