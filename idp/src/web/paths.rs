//! Every path the server answers, defined once: the router and the discovery
//! document both read them from here.

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const STATIC: &str = "/static/{theme}/{version}/{*path}";

pub const LOGIN: &str = "/login";
pub const LOGOUT: &str = "/logout";
pub const REGISTER: &str = "/register";
pub const VERIFY_EMAIL: &str = "/verify-email";
pub const FORGOT_PASSWORD: &str = "/forgot-password";
pub const RESET_PASSWORD: &str = "/reset-password";
pub const ACCOUNT: &str = "/account";
pub const CHANGE_PASSWORD: &str = "/account/password";
