//! The console's pages: one module per area, and the frame they share.

pub(crate) mod clients;
pub(crate) mod dashboard;
pub(crate) mod frame;
pub(crate) mod passkeys;
pub(crate) mod records;
mod user_paths;
pub(crate) mod users;
