//! The black-box suite: one binary, every test starts its own server (or
//! store) with fresh storage, on both backend pairs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use tests::{Backend, TestApp};

/// Runs `async fn $name(backend: Backend)` once per backend pair.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                super::$name(crate::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() {
                super::$name(crate::Backend::Sqlite).await
            }
        }
    )+};
}

/// Runs `async fn $name(backend: Backend)` once, on PostgreSQL + Redis: the
/// tests in headless Chromium, which take turns with one chromedriver per
/// test binary (see `tests::chromium`). The browser sees the same pages on
/// either pair; the backends themselves are covered by the HTTP tests.
macro_rules! in_chromium {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                super::$name(crate::Backend::Postgres).await
            }
        }
    )+};
}

mod admin;
mod apache;
mod at_rest;
mod binding;
mod busy;
mod chromium;
mod claims;
mod conformance;
mod devices;
mod ephemeral;
mod flows;
mod hardening;
mod id_token_hint;
mod import;
mod imported_signin;
mod jit;
mod keys;
mod mail;
mod mfa;
mod oidc;
mod outage;
mod passkey_browser;
mod passkey_signin;
mod passkeys;
mod plans;
mod portal_browser;
mod portal_look;
mod portal_mail;
mod portal_rules;
mod profile;
mod retention;
mod revocation;
mod security;
mod sentinel;
mod server;
mod signin;
mod store;
