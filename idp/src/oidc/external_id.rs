//! Each portal's own key for the customer, as a claim (issue 15, item 6).
//! The portals of one deployment share one pool of accounts, but each keeps
//! its invoices and tickets under the id its old user table gave the
//! customer. A client configured with `external_id_claim` receives that id
//! in the ID token and at `/userinfo`, under the claim name it chose; a
//! client without the setting, or an account with no id for its portal,
//! gets no such claim. Never another portal's id.
//!
//! The portal of a client: an id recorded under the client's id wins, else
//! one recorded under the client's theme name (the import record's `portal`
//! names either), but the theme only while no other client wears it: two
//! clients of one theme are two portals the theme's records cannot tell
//! apart, so neither receives them. See docs/migration.md.

use crate::domain::UserId;
use crate::store::{self, Client, ExternalId, Store};

/// Claim names the provider itself sends or that OIDC and JWT register
/// (RFC 7519 4.1, OIDC Core 2 and 5.1, RFC 9068, RFC 8693): a portal's id
/// under one of them would be mistaken for the standard claim.
const REGISTERED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "cnf",
    "client_id",
    "scope",
    "act",
    "may_act",
    "events",
    "typ",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "_claim_names",
    "_claim_sources",
    "roles",
    "groups",
    "entitlements",
];

/// The longest claim name accepted.
pub const MAX_CLAIM_LEN: usize = 64;

/// Checks a claim name an administrator configures: a short token (a letter,
/// then letters, digits, `_`, `-` or `.`; at most [`MAX_CLAIM_LEN`]) that is
/// not a registered claim (compared without regard to case).
pub fn check_claim_name(name: &str) -> Result<(), String> {
    let token = name.len() <= MAX_CLAIM_LEN
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !token {
        return Err(format!(
            "external_id_claim is 1 to {MAX_CLAIM_LEN} characters: a letter, then letters, digits, _ - ."
        ));
    }
    if REGISTERED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "external_id_claim cannot be {name}: it is a registered OpenID Connect or JWT claim"
        ));
    }
    Ok(())
}

/// The id the client's portal knows the account by, from the account's ids;
/// `theme_is_its_own`: no other client wears the client's theme.
pub fn for_client<'a>(
    client: &Client,
    theme_is_its_own: bool,
    ids: &'a [ExternalId],
) -> Option<&'a str> {
    let under = |portal: &str| {
        ids.iter()
            .find(|i| i.portal == portal)
            .map(|i| i.external_id.as_str())
    };
    let theme = client.theme.as_deref().filter(|_| theme_is_its_own);
    under(client.id.as_str()).or_else(|| theme.and_then(under))
}

/// `(claim name, external id)` for the client's tokens, when the client has
/// the setting and the account an id for its portal. Reads the store only
/// for clients with the setting.
pub async fn claim(
    store: &dyn Store,
    client: &Client,
    user: &UserId,
) -> store::Result<Option<(String, String)>> {
    let Some(name) = client.external_id_claim.as_deref() else {
        return Ok(None);
    };
    let ids = store.external_ids(user).await?;
    if ids.is_empty() {
        return Ok(None);
    }
    let theme_is_its_own = match client.theme.as_deref() {
        None => false,
        Some(theme) => !store
            .list_clients()
            .await?
            .iter()
            .any(|other| other.id != client.id && other.theme.as_deref() == Some(theme)),
    };
    Ok(for_client(client, theme_is_its_own, &ids).map(|id| (name.to_owned(), id.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_names_are_short_tokens_and_not_registered() {
        for ok in ["shop_customer_id", "whmcs-client", "crm.id", "X1"] {
            assert_eq!(check_claim_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "sub", "Email", "AUD", "nonce", "sid", "1abc", "_x", "a b", "a\"b", "ä",
        ] {
            assert!(check_claim_name(bad).is_err(), "{bad}");
        }
        assert!(check_claim_name(&"a".repeat(MAX_CLAIM_LEN)).is_ok());
        assert!(check_claim_name(&"a".repeat(MAX_CLAIM_LEN + 1)).is_err());
    }
}
