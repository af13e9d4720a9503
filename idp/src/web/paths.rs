//! Every path the server answers, defined once: the router and the discovery
//! document both read them from here.

pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
