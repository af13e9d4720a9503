//! The claims about an account this provider releases, and the individual
//! ones a client asks for with the `claims` request parameter (OpenID
//! Connect Core 5.5). A requested claim is released in the member it was
//! asked for (ID token or userinfo) as if its scope had been asked for
//! (5.5: "in addition to" the scopes); a claim this provider does not hold
//! is ignored, as the specification allows.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A claim this provider holds about every account, beyond `sub` (which is
/// always released).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    Email,
    EmailVerified,
    Name,
    UpdatedAt,
}

impl Claim {
    pub const ALL: [Claim; 4] = [
        Claim::Email,
        Claim::EmailVerified,
        Claim::Name,
        Claim::UpdatedAt,
    ];

    /// The claim's name (OIDC Core 5.1).
    pub fn name(self) -> &'static str {
        match self {
            Claim::Email => "email",
            Claim::EmailVerified => "email_verified",
            Claim::Name => "name",
            Claim::UpdatedAt => "updated_at",
        }
    }

    /// The scope that releases it too (OIDC Core 5.4); a client registered
    /// without that scope is never given the claim, however it asks.
    pub fn scope(self) -> &'static str {
        match self {
            Claim::Email | Claim::EmailVerified => "email",
            Claim::Name | Claim::UpdatedAt => "profile",
        }
    }

    fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What a `claims` request parameter asks of this provider: the held
/// claims it names for each member, and the one account it may be about.
/// Small by construction (a few names and one subject), so it can travel
/// with the pending request, the code, the access token and the refresh
/// token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedClaims {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub id_token: BTreeSet<Claim>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub userinfo: BTreeSet<Claim>,
    /// `id_token.sub` asked for with a `value` (5.5.1): the request may
    /// only be answered for that account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A `claims` parameter that is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedClaims;

impl RequestedClaims {
    /// Nothing asked for by name.
    pub const NONE: Self = Self {
        id_token: BTreeSet::new(),
        userinfo: BTreeSet::new(),
        subject: None,
    };

    /// Reads a `claims` parameter leniently: members other than `id_token`
    /// and `userinfo`, claims this provider does not hold, and the
    /// `essential`, `value` and `values` of a held claim are ignored (a
    /// claim is released as held or not at all; `acr` is the sign-in
    /// pipeline's). `Err` only when the parameter is not a JSON object.
    pub fn parse(input: &str) -> Result<Self, MalformedClaims> {
        let parsed: serde_json::Value = serde_json::from_str(input).map_err(|_| MalformedClaims)?;
        let object = parsed.as_object().ok_or(MalformedClaims)?;
        let named = |member: &str| -> BTreeSet<Claim> {
            object
                .get(member)
                .and_then(serde_json::Value::as_object)
                .map(|m| m.keys().filter_map(|k| Claim::named(k)).collect())
                .unwrap_or_default()
        };
        let subject = object
            .get("id_token")
            .and_then(|m| m.get("sub"))
            .and_then(|s| s.get("value"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Ok(Self {
            id_token: named("id_token"),
            userinfo: named("userinfo"),
            subject,
        })
    }

    /// Only the claims whose scope the client is registered for.
    pub fn allowed_by(mut self, client_scopes: &[String]) -> Self {
        let allowed = |c: &Claim| client_scopes.iter().any(|s| s == c.scope());
        self.id_token.retain(allowed);
        self.userinfo.retain(allowed);
        self
    }

    /// The scopes the requested claims belong to: what the person is asked
    /// to allow for them.
    pub fn scopes(&self) -> BTreeSet<&'static str> {
        self.id_token
            .iter()
            .chain(&self.userinfo)
            .map(|c| c.scope())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_claims_are_read_per_member_and_the_rest_ignored() {
        let asked = RequestedClaims::parse(
            r#"{"id_token":{"name":{"essential":true},"email":null,"picture":null,
                "sub":{"value":"u-1"},"acr":{"essential":true,"values":["2"]}},
               "userinfo":{"email_verified":{"value":true},"phone_number":null},
               "other":{"name":null}}"#,
        )
        .unwrap();
        assert_eq!(asked.id_token, BTreeSet::from([Claim::Name, Claim::Email]));
        assert_eq!(asked.userinfo, BTreeSet::from([Claim::EmailVerified]));
        assert_eq!(asked.subject.as_deref(), Some("u-1"));
        assert_eq!(asked.scopes(), BTreeSet::from(["email", "profile"]));
        let shop = ["openid".to_owned(), "email".to_owned()];
        let allowed = asked.allowed_by(&shop);
        assert_eq!(allowed.id_token, BTreeSet::from([Claim::Email]));
        assert_eq!(allowed.userinfo, BTreeSet::from([Claim::EmailVerified]));
    }

    #[test]
    fn only_a_json_object_is_a_claims_request() {
        assert_eq!(RequestedClaims::parse("{}"), Ok(RequestedClaims::default()));
        assert_eq!(
            RequestedClaims::parse(r#"{"id_token":"name","userinfo":[1]}"#),
            Ok(RequestedClaims::default())
        );
        for bad in ["", "not json", "[1]", "\"name\"", "null", "{\"a\":"] {
            assert_eq!(RequestedClaims::parse(bad), Err(MalformedClaims), "{bad}");
        }
    }

    #[test]
    fn the_stored_form_is_the_names() {
        let asked = RequestedClaims::parse(r#"{"userinfo":{"updated_at":null}}"#).unwrap();
        let stored = serde_json::to_string(&asked).unwrap();
        assert_eq!(stored, r#"{"userinfo":["updated_at"]}"#);
        assert_eq!(
            serde_json::from_str::<RequestedClaims>("{}").unwrap(),
            RequestedClaims::default()
        );
    }
}
