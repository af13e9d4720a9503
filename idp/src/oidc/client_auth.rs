//! Client authentication at the token, introspection and revocation
//! endpoints (RFC 6749 2.3.1): `client_secret_basic`, `client_secret_post`,
//! or `none` for public clients. Secrets are compared in constant time
//! against their stored SHA-256.
//!
//! The three endpoints share their preamble and their answer: [`ClientRequest`]
//! reads the form and authenticates the client, [`no_store`] answers.

use std::borrow::Cow;

use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;

use super::error::{OAuthCode, OAuthError, oauth};
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::domain::{ClientId, ClientKind};
use crate::store::Client;
use crate::web::AppState;

/// The form of a client-authenticated endpoint: where it carries the
/// client's credentials (`client_secret_post`, or `client_id` alone for
/// public clients).
pub trait ClientForm: DeserializeOwned + Send {
    fn client_id(&self) -> Option<&str>;
    fn client_secret(&self) -> Option<&str>;
}

/// Extractor: the endpoint's form and the client that posted it. A body that
/// is not a form is `invalid_request`; failed authentication is
/// `invalid_client` (RFC 6749 5.2). Either is answered as an [`OAuthError`].
pub struct ClientRequest<F> {
    pub client: AuthenticatedClient,
    pub form: F,
}

impl<F: ClientForm> FromRequest<AppState> for ClientRequest<F> {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let authorization = request.headers().get(header::AUTHORIZATION).cloned();
        let Form(form) = Form::<F>::from_request(request, state).await.map_err(|_| {
            oauth(
                OAuthCode::InvalidRequest,
                "the body must be application/x-www-form-urlencoded",
            )
        })?;
        let client = authenticate(
            state,
            authorization.as_ref(),
            form.client_id(),
            form.client_secret(),
        )
        .await?;
        Ok(Self { client, form })
    }
}

/// The endpoint's answer: never cached (`Cache-Control: no-store`; errors
/// carry it too, see [`OAuthError`]).
pub fn no_store(result: Result<impl IntoResponse, OAuthError>) -> Response {
    match result {
        Ok(body) => {
            let mut response = body.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// How the client proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SecretBasic,
    SecretPost,
    None,
}

/// A client that passed authentication.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Client,
    pub method: AuthMethod,
}

fn unauthorized() -> OAuthError {
    oauth(OAuthCode::InvalidClient, "client authentication failed")
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before Basic;
/// most have nothing to decode, and are borrowed as they are.
fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+', '&']) {
        return Some(Cow::Borrowed(s));
    }
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| Cow::Owned(v.into_owned()))
}

/// Authenticates from the Authorization header or the form's `client_id` /
/// `client_secret`; using both is refused (RFC 6749 2.3).
async fn authenticate(
    state: &AppState,
    authorization: Option<&HeaderValue>,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = authorization.and_then(|v| v.to_str().ok()).and_then(|v| {
        v.strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
    });
    let text;
    let (id, secret, method) = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(oauth(
                OAuthCode::InvalidRequest,
                "use one client authentication method, not two",
            ));
        }
        (Some(b64), None) => {
            let decoded = STANDARD.decode(b64.trim()).map_err(|_| unauthorized())?;
            text = String::from_utf8(decoded).map_err(|_| unauthorized())?;
            let (id, secret) = text.split_once(':').ok_or_else(unauthorized)?;
            let id = form_decode(id).ok_or_else(unauthorized)?;
            let secret = form_decode(secret).ok_or_else(unauthorized)?;
            if form_client_id.is_some_and(|f| f != id.as_ref()) {
                return Err(oauth(
                    OAuthCode::InvalidRequest,
                    "client_id does not match the credentials",
                ));
            }
            (id, Some(secret), AuthMethod::SecretBasic)
        }
        (None, Some(secret)) => (
            Cow::Borrowed(form_client_id.ok_or_else(unauthorized)?),
            Some(Cow::Borrowed(secret)),
            AuthMethod::SecretPost,
        ),
        (None, None) => (
            Cow::Borrowed(form_client_id.ok_or_else(unauthorized)?),
            None,
            AuthMethod::None,
        ),
    };
    let id = ClientId::parse(&id).map_err(|_| unauthorized())?;
    let client = state.clients.get(&id).await?.ok_or_else(unauthorized)?;
    match (client.kind, secret, &client.secret_hash) {
        (ClientKind::Public, None, _) => {}
        (ClientKind::Confidential, Some(secret), Some(hash)) => {
            if !constant_time_eq(sha256_hex(&secret).as_bytes(), hash.as_bytes()) {
                return Err(unauthorized());
            }
        }
        _ => return Err(unauthorized()),
    }
    Ok(AuthenticatedClient { client, method })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded_and_borrowed_when_plain() {
        assert!(matches!(
            form_decode("portal-1"),
            Some(Cow::Borrowed("portal-1"))
        ));
        assert_eq!(form_decode("a%3Ab%25c").as_deref(), Some("a:b%c"));
        assert_eq!(form_decode("two+words").as_deref(), Some("two words"));
        assert_eq!(form_decode("caf%C3%A9").as_deref(), Some("café"));
    }
}
