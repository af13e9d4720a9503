//! Checking tokens this provider signed (RFC 7515 signature, RFC 7519
//! claims). The signature and `iss`/`aud` go through jsonwebtoken; time
//! claims are checked here against the app clock, because jsonwebtoken
//! reads the system clock.

use serde_json::Value;
use time::{Duration, OffsetDateTime};

/// What a token must satisfy besides a good signature by a published key.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// The header `typ` required (`"JWT"`, `"at+jwt"`): compared without
    /// case, an `application/` prefix allowed (RFC 7515 §4.1.9).
    pub typ: Option<&'a str>,
    /// Required `iss`.
    pub issuer: Option<&'a str>,
    /// Required member of `aud`. `None` skips the audience check.
    pub audience: Option<&'a str>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

/// Why a token was refused. Callers answer `invalid_token` (or the like)
/// whatever the variant; it is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a signed JWT")]
    Malformed,
    #[error("no published key has this kid")]
    UnknownKey,
    #[error("the header alg is not the key's")]
    WrongAlgorithm,
    #[error("unexpected typ")]
    WrongType,
    #[error("bad signature")]
    BadSignature,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    #[error("missing or malformed claim {0}")]
    Claim(&'static str),
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm,
            ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::Claim("iss"),
            ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::Claim("aud"),
            _ => TokenError::Malformed,
        }
    }
}

pub(super) fn typ_matches(actual: Option<&str>, expected: &str) -> bool {
    const PREFIX: &str = "application/";
    actual.is_some_and(|t| {
        let t = match t.get(..PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(PREFIX) => &t[PREFIX.len()..],
            _ => t,
        };
        t.eq_ignore_ascii_case(expected)
    })
}

/// jsonwebtoken's checks with its clock turned off: signature, `alg`, and
/// `iss`/`aud` when asked for.
pub(super) fn jwt_validation(
    alg: jsonwebtoken::Algorithm,
    options: &VerifyOptions<'_>,
) -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    v.required_spec_claims.clear();
    if let Some(iss) = options.issuer {
        v.set_issuer(&[iss]);
        v.required_spec_claims.insert("iss".into());
    }
    match options.audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            v.required_spec_claims.insert("aud".into());
        }
        None => v.validate_aud = false,
    }
    v
}

/// Checks `exp` (required), `nbf` and `iat` (when present) against `now`:
/// expired at `exp`, valid from `nbf`, not issued in the future; each with
/// `leeway` of slack.
pub fn check_time_claims(
    claims: &Value,
    now: OffsetDateTime,
    leeway: Duration,
) -> Result<(), TokenError> {
    let now = now.unix_timestamp();
    let slack = leeway.whole_seconds().max(0);
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::Claim("exp"))?;
    if now >= exp.saturating_add(slack) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(slack) < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    if let Some(iat) = numeric_date(claims, "iat")?
        && iat > now.saturating_add(slack)
    {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// A NumericDate (RFC 7519 §2): seconds, possibly with a fraction.
fn numeric_date(claims: &Value, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or(TokenError::Claim(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_claims_follow_the_given_clock() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let zero = Duration::ZERO;
        let ok = json!({ "exp": 1_000_001, "iat": 1_000_000, "nbf": 1_000_000 });
        assert_eq!(check_time_claims(&ok, now, zero), Ok(()));
        let expired = json!({ "exp": 1_000_000 });
        assert_eq!(
            check_time_claims(&expired, now, zero),
            Err(TokenError::Expired)
        );
        assert_eq!(
            check_time_claims(&expired, now, Duration::seconds(5)),
            Ok(())
        );
        let early = json!({ "exp": 2_000_000, "nbf": 1_000_010 });
        assert_eq!(
            check_time_claims(&early, now, zero),
            Err(TokenError::NotYetValid)
        );
        let future = json!({ "exp": 2_000_000, "iat": 1_000_010 });
        assert_eq!(
            check_time_claims(&future, now, zero),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            check_time_claims(&json!({}), now, zero),
            Err(TokenError::Claim("exp"))
        );
        assert_eq!(
            check_time_claims(&json!({ "exp": "soon" }), now, zero),
            Err(TokenError::Claim("exp"))
        );
        assert_eq!(
            check_time_claims(&json!({ "exp": 1_000_000.5 }), now, zero),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn typ_is_compared_as_a_media_type() {
        assert!(typ_matches(Some("at+jwt"), "at+jwt"));
        assert!(typ_matches(Some("application/AT+JWT"), "at+jwt"));
        assert!(typ_matches(Some("JWT"), "jwt"));
        assert!(!typ_matches(Some("JWT"), "at+jwt"));
        assert!(!typ_matches(None, "JWT"));
    }
}
