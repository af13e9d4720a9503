//! Relying-party registration values (RFC 6749 section 2, OIDC Registration).

use std::fmt;
use std::str::FromStr;

use url::{Host, Url};

use super::{Invalid, invalid};

/// `[A-Za-z0-9._~-]{1,64}`: safe in URLs, logs and HTTP Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let ok = (1..=64).contains(&input.len())
            && input
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'));
        if ok {
            Ok(Self(input.to_owned()))
        } else {
            Err(invalid(
                "a client id is 1 to 64 characters from A-Z a-z 0-9 . _ ~ -",
            ))
        }
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registered redirect (or post-logout redirect) URI, compared exactly.
///
/// Absolute, no fragment (RFC 6749 3.1.2); `https`, or `http` on a loopback
/// host, or a private-use scheme with a dot for native apps (RFC 8252 7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let url =
            Url::parse(input).map_err(|_| invalid(format!("{input:?} is not an absolute URI")))?;
        if url.fragment().is_some() {
            return Err(invalid(format!("{input:?} must not contain a fragment")));
        }
        let allowed = match url.scheme() {
            "https" => url.host().is_some(),
            "http" => match url.host() {
                Some(Host::Domain(d)) => d == "localhost",
                Some(Host::Ipv4(ip)) => ip.is_loopback(),
                Some(Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            },
            scheme => scheme.contains('.'),
        };
        if !allowed {
            return Err(invalid(format!(
                "{input:?} must use https (http only for localhost/127.0.0.1, or a private-use scheme such as com.example.app:/cb)"
            )));
        }
        // Stored as given: matching at /authorize is exact string comparison.
        Ok(Self(input.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Confidential clients authenticate with a secret; public ones cannot keep one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    Confidential,
    Public,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confidential => "confidential",
            Self::Public => "public",
        }
    }
}

impl FromStr for ClientKind {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        match s {
            "confidential" => Ok(Self::Confidential),
            "public" => Ok(Self::Public),
            other => Err(invalid(format!("unknown client kind {other:?}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// What a client gets when registration names no grant.
    pub fn defaults_for(kind: ClientKind) -> Vec<GrantType> {
        match kind {
            ClientKind::Confidential => Self::ALL.to_vec(),
            ClientKind::Public => vec![Self::AuthorizationCode, Self::RefreshToken],
        }
    }
}

impl FromStr for GrantType {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| invalid(format!("unknown grant type {s:?}")))
    }
}

/// The algorithm a client's ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum IdTokenAlg {
    #[default]
    RS256,
    ES256,
    EdDSA,
}

impl IdTokenAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl FromStr for IdTokenAlg {
    type Err = Invalid;
    fn from_str(s: &str) -> Result<Self, Invalid> {
        [Self::RS256, Self::ES256, Self::EdDSA]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                invalid(format!(
                    "unknown signing algorithm {s:?} (RS256, ES256, EdDSA)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_url_safe() {
        assert!(ClientId::parse("portal-web_1.0~x").is_ok());
        for bad in ["", "has space", "a/b", "é", &"x".repeat(65)] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redirect_uris_follow_rfc_rules() {
        for good in [
            "https://app.example.com/cb",
            "http://127.0.0.1:9000/cb",
            "http://localhost/cb",
            "http://[::1]:8/cb",
            "com.example.app:/oauth",
        ] {
            assert!(RedirectUri::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "not a uri",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grant_defaults_depend_on_kind() {
        assert_eq!(GrantType::defaults_for(ClientKind::Public).len(), 2);
        assert!(
            GrantType::defaults_for(ClientKind::Confidential)
                .contains(&GrantType::ClientCredentials)
        );
        assert_eq!(
            "refresh_token".parse::<GrantType>().unwrap(),
            GrantType::RefreshToken
        );
    }
}
