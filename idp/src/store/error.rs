//! What a store call can fail with.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique constraint refused the row (duplicate email, client id...).
    #[error("already exists")]
    Conflict,
    #[error("not found")]
    NotFound,
    /// The database cannot be reached. The text is for logs only.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else the database said. The text is for logs only.
    #[error("database error: {0}")]
    Database(String),
}

pub type Result<T> = std::result::Result<T, Error>;
