//! The admin console: server-rendered pages (tera, its own look) for
//! administrators, over the identity provider's JSON admin API.
//!
//! The console is an ordinary confidential OpenID Connect client of the
//! provider (DESIGN "Admin"): it signs administrators in with the
//! authorization code flow + PKCE (OAuth 2.0 Security BCP; `require_mfa` on
//! its client makes the provider ask for a one-time code, and set one up at
//! the first sign-in), keeps the tokens on the server side (the browser holds
//! only a random session id), and calls the admin API with the access token.
//! It needs nothing from the provider's process: `idp serve` mounts it at
//! `/admin/` on the admin listener, and the `idp-console` binary runs it on its
//! own against a remote provider.

mod api;
mod clock;
mod config;
mod console;
mod error;
mod form;
mod layers;
mod oidc;
mod pages;
mod router;
mod session;
mod signed;
mod store;
mod tokens;
mod views;

/// The headers the console names the administrator's browser in.
pub use client_addr::{BROWSER_AGENT, BROWSER_IP};
pub use clock::{Clock, SystemClock};
pub use config::{ConsoleConfig, Endpoints};
pub use console::Console;
pub use error::BuildError;
pub use store::{MemorySessions, SessionStore, StoreError};
