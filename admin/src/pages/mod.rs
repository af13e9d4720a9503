//! The console's pages: one module per area, and the frame they share.

pub(crate) mod clients;
pub(crate) mod dashboard;
pub(crate) mod frame;
pub(crate) mod records;
pub(crate) mod users;
