//! Outgoing mail: composed from the flow's theme (`compose`), including the
//! notices that tell owners what happened to their account (`notices`), and
//! delivered. A request that sends mail only writes it to the durable
//! outbox ([`crate::store::MailStore`]), in the same transaction as the data
//! it is about; the worker started with the server delivers it, with retries
//! and backoff, through SMTP (lettre, rustls) or, in the embedded default, as
//! `.eml` files. SMTP being down loses nothing, and several nodes sharing one
//! database deliver each message once.

pub mod compose;
pub mod notices;
mod transport;
mod worker;

pub use transport::{Mailer, SendError, SetupError};
pub use worker::{MailQueue, spawn_worker};
