//! From the pipeline's decision to the browser: the one place that builds
//! the URLs of the steps and of `/authorize/continue`, and starts the
//! pending second step when one is next.

use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;

use super::decide::Next;
use super::pending::{self, Flow};
use super::request::PendingRequest;
use crate::store::User;
use crate::web::session::{self, CurrentUser};
use crate::web::ui::urlencode;
use crate::web::{AppError, AppState, paths};

/// Where the browser goes for `next` of the pending request `req` (none: a
/// sign-in begun on our own page, which ends on the account page, with
/// `flow_query` carrying its portal).
pub fn location(next: Next, req: Option<&str>, flow_query: &str) -> String {
    let with_req = |path: &str| match req {
        Some(req) => format!("{path}?req={}", urlencode(req)),
        None => path.to_owned(),
    };
    match next {
        Next::Password => with_req(paths::LOGIN),
        // The pending step's cookie carries the request.
        Next::Code => paths::LOGIN_OTP.to_owned(),
        Next::SetUpAuthenticator => paths::LOGIN_MFA_SETUP.to_owned(),
        Next::Consent => with_req(paths::CONSENT),
        // The pipeline's own endpoint answers the client.
        Next::Complete | Next::Unmet => match req {
            Some(_) => with_req(paths::AUTHORIZE_CONTINUE),
            None => format!("{}{flow_query}", paths::ACCOUNT),
        },
    }
}

/// Where a step page sends the browser once its step is done: back to the
/// pipeline (`/authorize/continue`), or to the account page.
pub fn after_step(req: Option<&str>, flow_query: &str) -> String {
    location(Next::Complete, req, flow_query)
}

/// Starts the pending second step (`next` is [`Next::Code`] or
/// [`Next::SetUpAuthenticator`]) for `user` in this browser and sends it
/// to that step's page.
pub async fn second_step(
    state: &AppState,
    jar: CookieJar,
    user: &User,
    next: Next,
    flow: Flow,
) -> Result<Response, AppError> {
    let enrol = next == Next::SetUpAuthenticator;
    let jar = pending::start(state, jar, user, enrol, flow).await?;
    Ok((jar, Redirect::to(&location(next, None, ""))).into_response())
}

/// Sends a browser with a live session on to the step `next` of `pending`.
pub async fn redirect(
    state: &AppState,
    pending: &PendingRequest,
    current: &CurrentUser,
    next: Next,
) -> Result<Response, AppError> {
    let req = Some(pending.id.as_str());
    match next {
        // Setting up an authenticator changes how the account signs in: a
        // session alone (perhaps a stolen one) is not enough unless its
        // sign-in is recent; otherwise the password is asked first.
        Next::SetUpAuthenticator if !session::signed_in_recently(state, &current.session) => {
            Ok(Redirect::to(&location(Next::Password, req, "")).into_response())
        }
        Next::Code | Next::SetUpAuthenticator => {
            let flow = Flow {
                req: Some(pending.id.clone()),
                client_id: Some(pending.client.id.to_string()),
                return_to: Some(pending.request.redirect_uri.clone()),
            };
            second_step(state, CookieJar::new(), &current.user, next, flow).await
        }
        _ => Ok(Redirect::to(&location(next, req, "")).into_response()),
    }
}
