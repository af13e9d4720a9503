//! The OpenID Connect provider. For now: client registration, used by the CLI
//! (and later the admin API).

mod clients;

pub use clients::{ClientRegistration, RegisterClientError, RegisteredClient, register_client};
