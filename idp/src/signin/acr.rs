//! Authentication context class references (OIDC Core 2, `acr`): what a
//! sign-in reached, as the ID token says it.

/// The password alone.
pub const ACR_PASSWORD: &str = "1";
/// Two factors: the password and a second step (a code or a passkey), or
/// a passkey with user verification alone (something held, and a PIN or
/// biometric checked by the authenticator).
pub const ACR_MFA: &str = "2";

/// The `acr` a sign-in done with these methods reaches.
pub fn acr_for(amr: &[String]) -> &'static str {
    if has_second_factor(amr) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// The `acr` the ID token says for a sign-in done with `amr`: what it
/// reached, or, when the request made `acr` essential with a list of
/// values, the strongest listed value it reached (OIDC Core 5.5.1.1: the
/// answer must be one of them; a sign-in with a second factor also
/// reaches the password's class).
pub fn acr_reached(amr: &[String], essential: Option<&[String]>) -> &'static str {
    let reached = acr_for(amr);
    match essential {
        Some(values) if !values.is_empty() && !values.iter().any(|v| v == reached) => {
            if values.iter().any(|v| v == ACR_PASSWORD) {
                ACR_PASSWORD
            } else {
                reached
            }
        }
        _ => reached,
    }
}

/// Whether these methods include a second factor: a code (`otp`), or a
/// passkey's sign-in, which says `mfa` (RFC 8176).
pub fn has_second_factor(amr: &[String]) -> bool {
    amr.iter().any(|m| m == "otp" || m == "mfa")
}

/// Which of the `acr` values a client asks for, in its order of preference,
/// this provider would rather reach: `true` when the first one it knows is
/// [`ACR_MFA`] (OIDC Core 3.1.2.1, `acr_values`: voluntary).
pub fn prefers_mfa<'a>(values: impl IntoIterator<Item = &'a str>) -> bool {
    values
        .into_iter()
        .find(|v| *v == ACR_PASSWORD || *v == ACR_MFA)
        == Some(ACR_MFA)
}

/// What an essential `acr` claim request asks of a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Essential {
    /// The password alone meets it (or nothing is essential).
    Met,
    /// Only a sign-in with a second factor meets it.
    SecondFactor,
    /// No sign-in here can meet it (values this provider does not know).
    Never,
}

/// What the essential `acr` values `values` (OIDC Core 5.5.1.1) ask for.
/// A stronger sign-in meets a request for a weaker class: the ID token then
/// says the `acr` actually reached.
pub fn essential(values: Option<&[String]>) -> Essential {
    match values {
        None => Essential::Met,
        Some(v) if v.is_empty() || v.iter().any(|a| a == ACR_PASSWORD) => Essential::Met,
        Some(v) if v.iter().any(|a| a == ACR_MFA) => Essential::SecondFactor,
        Some(_) => Essential::Never,
    }
}

/// A `claims` parameter that is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedClaims;

/// The essential `acr` values of a `claims` request parameter (OIDC Core
/// 5.5), read leniently: members other than `id_token.acr` (and
/// `userinfo.acr`) are ignored, as is an `acr` request that is not
/// essential. `Err` only when the parameter is not a JSON object.
pub fn essential_in_claims(claims: &str) -> Result<Option<Vec<String>>, MalformedClaims> {
    let parsed: serde_json::Value = serde_json::from_str(claims).map_err(|_| MalformedClaims)?;
    let Some(object) = parsed.as_object() else {
        return Err(MalformedClaims);
    };
    let mut essential: Option<Vec<String>> = None;
    for member in ["id_token", "userinfo"] {
        let Some(acr) = object.get(member).and_then(|m| m.get("acr")) else {
            continue;
        };
        if acr.get("essential").and_then(serde_json::Value::as_bool) != Some(true) {
            continue;
        }
        let mut values: Vec<String> = Vec::new();
        if let Some(value) = acr.get("value").and_then(serde_json::Value::as_str) {
            values.push(value.to_owned());
        }
        if let Some(list) = acr.get("values").and_then(serde_json::Value::as_array) {
            values.extend(list.iter().filter_map(|v| v.as_str().map(str::to_owned)));
        }
        essential.get_or_insert_with(Vec::new).extend(values);
    }
    Ok(essential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_values_are_a_list_of_preferences() {
        assert!(prefers_mfa(["2"]));
        assert!(prefers_mfa(["urn:x", "2", "1"]));
        assert!(!prefers_mfa(["1", "2"]));
        assert!(!prefers_mfa(["urn:x"]));
        assert!(!prefers_mfa([]));
    }

    #[test]
    fn only_an_essential_acr_claim_counts() {
        let ask = |c: &str| essential_in_claims(c);
        assert_eq!(
            ask(r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#),
            Ok(Some(vec!["2".to_owned()]))
        );
        assert_eq!(
            ask(r#"{"id_token":{"acr":{"essential":true,"value":"1"}}}"#),
            Ok(Some(vec!["1".to_owned()]))
        );
        assert_eq!(ask(r#"{"id_token":{"acr":{"values":["2"]}}}"#), Ok(None));
        assert_eq!(ask(r#"{"id_token":{"acr":null},"x":1}"#), Ok(None));
        assert_eq!(ask(r#"{}"#), Ok(None));
        assert_eq!(ask("not json"), Err(MalformedClaims));
        assert_eq!(ask("[1]"), Err(MalformedClaims));
        let two = ["2".to_owned()];
        assert_eq!(essential(None), Essential::Met);
        assert_eq!(essential(Some(&two)), Essential::SecondFactor);
        assert_eq!(
            essential(Some(&["2".to_owned(), "1".to_owned()])),
            Essential::Met
        );
        assert_eq!(essential(Some(&["urn:x".to_owned()])), Essential::Never);
        assert_eq!(essential(Some(&[])), Essential::Met);
    }

    #[test]
    fn the_acr_said_is_one_of_the_essential_values() {
        let otp = ["pwd".to_owned(), "otp".to_owned()];
        let pwd = ["pwd".to_owned()];
        let passkey = ["pop".to_owned(), "mfa".to_owned()];
        assert_eq!(acr_reached(&passkey, None), ACR_MFA);
        let one = ["1".to_owned()];
        let both = ["1".to_owned(), "2".to_owned()];
        assert_eq!(acr_reached(&otp, Some(&one)), ACR_PASSWORD);
        assert_eq!(acr_reached(&otp, Some(&both)), ACR_MFA);
        assert_eq!(acr_reached(&otp, None), ACR_MFA);
        assert_eq!(acr_reached(&pwd, Some(&both)), ACR_PASSWORD);
        assert_eq!(acr_reached(&pwd, None), ACR_PASSWORD);
    }
}
