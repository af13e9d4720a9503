//! Where a user is: their admin API resource and their console page, named
//! once for the pages that act on a user (their details and their passkeys).

use crate::api::enc;

/// The user's resource in the admin API.
pub(super) fn user_path(id: &str) -> String {
    format!("/admin/api/users/{}", enc(id))
}

/// The user's page in the console.
pub(super) fn page_path(id: &str) -> String {
    format!("/admin/users/{}", enc(id))
}
