//! The sign-in pipeline: the state of a sign-in in progress and the one
//! decision of what it needs next, as a typed value ([`Next`]).
//!
//! The capabilities do not call into each other: each step is a page that
//! reads the pending state through this module, does its one thing, and
//! hands the browser back through [`Next`] and its URL ([`route`]):
//!
//! - `/authorize` (oidc) validates the request and stores it
//!   ([`request::AuthRequest`], bound to the browser that started it, for
//!   `tokens.auth_request_ttl_secs`), then asks [`next`];
//! - [`Next::Password`]: `/login?req=…` (account) checks email and password,
//!   then asks again with [`Proof::Password`];
//! - [`Next::Code`] and [`Next::SetUpAuthenticator`]: `/login/otp` and
//!   `/login/mfa-setup` (mfa), on the pending second step
//!   ([`pending::Pending`], bound to the browser by its own cookie and to
//!   the user who passed the password);
//! - a step that succeeds starts the session and sends the browser back to
//!   `/authorize/continue?req=…` ([`route::after_step`]), where the
//!   pipeline decides again, now with the session;
//! - [`Next::Consent`]: `/consent?req=…` (oidc) records the approval on the
//!   request, for that user alone, and goes back to `/authorize/continue`;
//! - [`Next::Complete`]: oidc answers the client with a code;
//!   [`Next::Unmet`]: with `unmet_authentication_requirements` (an essential
//!   `acr` this sign-in cannot reach; `acr_values` alone never fails a
//!   request, see [`next`]).
//!
//! Every step reads the pending request with [`request::load`] (once per
//! HTTP request), which refuses it in any other browser; a request or step
//! that is gone gets the one [`expired::page`].
//!
//! Adding a way to sign in (a passkey, another provider) means adding a
//! step: a variant of [`Next`], the rule that chooses it in [`next`], its
//! URL in [`route::location`], and the pages of the capability that serves
//! it, which end with [`route::after_step`]. Neither oidc, account nor mfa
//! needs to know about it.

pub mod acr;
mod decide;
pub mod expired;
pub mod pending;
pub mod portal;
pub mod request;
pub mod route;

pub use decide::{Next, Proof, authenticator_app, has_passkeys, next};
pub use request::{PendingRequest, load};
