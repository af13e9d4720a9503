//! Every path the server answers, defined once: the router and the discovery
//! document both read them from here.

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const JWKS: &str = "/jwks";
pub const STATIC: &str = "/static/{theme}/{version}/{*path}";

pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
pub const REGISTER: &str = "/register";
pub const VERIFY_EMAIL: &str = "/verify-email";
pub const FORGOT_PASSWORD: &str = "/forgot-password";
pub const RESET_PASSWORD: &str = "/reset-password";
pub const ACCOUNT: &str = "/account";
pub const CHANGE_PASSWORD: &str = "/account/password";
pub const ACCOUNT_SESSIONS: &str = "/account/sessions";
pub const ACCOUNT_ACTIVITY: &str = "/account/activity";
pub const ACCOUNT_PROFILE: &str = "/account/profile";
pub const ACCOUNT_EMAIL: &str = "/account/email";
pub const CONFIRM_EMAIL_CHANGE: &str = "/account/email/confirm";

pub const LOGIN_OTP: &str = "/login/otp";
pub const LOGIN_MFA_SETUP: &str = "/login/mfa-setup";
pub const LOGIN_PASSKEY_START: &str = "/login/passkey/start";
pub const LOGIN_PASSKEY_FINISH: &str = "/login/passkey/finish";
pub const LOGIN_OTP_PASSKEY_START: &str = "/login/otp/passkey/start";
pub const LOGIN_OTP_PASSKEY_FINISH: &str = "/login/otp/passkey/finish";
pub const ACCOUNT_MFA: &str = "/account/mfa";
pub const ACCOUNT_MFA_SETUP: &str = "/account/mfa/setup";
pub const ACCOUNT_MFA_DISABLE: &str = "/account/mfa/disable";
pub const ACCOUNT_MFA_RECOVERY_CODES: &str = "/account/mfa/recovery-codes";
/// Passkeys (issue 16): the list, the two halves of a registration (JSON,
/// for the page's script), renaming and removing one.
pub const ACCOUNT_PASSKEYS: &str = "/account/passkeys";
pub const ACCOUNT_PASSKEYS_REGISTER_START: &str = "/account/passkeys/register/start";
pub const ACCOUNT_PASSKEYS_REGISTER_FINISH: &str = "/account/passkeys/register/finish";
pub const ACCOUNT_PASSKEY_RENAME: &str = "/account/passkeys/{id}/rename";
pub const ACCOUNT_PASSKEY_REMOVE: &str = "/account/passkeys/{id}/remove";
/// "Confirm it's you": a fresh proof before changing how the account signs in.
pub const ACCOUNT_REAUTH: &str = "/account/reauth";

pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const AUTHORIZE: &str = "/authorize";
pub const AUTHORIZE_CONTINUE: &str = "/authorize/continue";
pub const CONSENT: &str = "/consent";
pub const GRANTS: &str = "/account/grants";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const INTROSPECT: &str = "/introspect";
pub const REVOKE: &str = "/revoke";
/// RP-Initiated Logout 1.0 shares the sign-out path.
pub const END_SESSION: &str = LOGOUT;
pub const FORM_POST_SCRIPT: &str = "/oidc/form-post.js";
