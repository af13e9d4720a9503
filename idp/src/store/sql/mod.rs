//! SQL shared by both backends. SQLite understands `$1` placeholders, `returning`
//! and `on conflict`, so each query is written once; the macros in this folder
//! expand the same bodies for `PostgresStore` and `SqliteStore`, and the
//! schemas differ only in column types (see the migrations).

pub(super) mod account;
pub(super) mod audit;
pub(super) mod client;
pub(super) mod external_id;
pub(super) mod import;
pub(super) mod keys;
pub(super) mod mail;
pub(super) mod mfa;
pub(super) mod oauth;
pub(super) mod passkey;
pub(super) mod retention;
pub(super) mod revocation;
pub(super) mod setting;
pub(super) mod stats;
mod ts;
pub(super) mod user;

pub(super) use ts::Ts;

use super::Error;

/// Maps a sqlx error to the store's error, keeping database text for logs only.
pub(super) fn db_error(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::RowNotFound => Error::NotFound,
        sqlx::Error::Database(d) if matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation) => {
            Error::Conflict
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Error::Unavailable(e.to_string()),
        _ => Error::Database(e.to_string()),
    }
}

/// A decoded row that breaks an invariant the schema should have kept.
pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::Database(format!("stored {what} is invalid: {detail}"))
}
