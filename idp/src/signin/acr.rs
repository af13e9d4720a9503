//! Authentication context class references (OIDC Core 2, `acr`): what a
//! sign-in reached, as the ID token says it.

/// The password alone.
pub const ACR_PASSWORD: &str = "1";
/// The password and a second step (TOTP).
pub const ACR_MFA: &str = "2";

/// The `acr` a sign-in done with these methods reaches.
pub fn acr_for(amr: &[String]) -> &'static str {
    if has_second_factor(amr) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// Whether these methods include a second factor.
pub fn has_second_factor(amr: &[String]) -> bool {
    amr.iter().any(|m| m == "otp")
}
