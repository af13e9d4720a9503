//! The admin console: a web app that signs in through the IdP itself (OpenID
//! Connect, authorization code + PKCE) and calls the IdP's JSON admin API.
//! Its pages arrive with the administration capability; this crate holds the
//! place in the workspace so the `idp` binary can mount it at `/admin/`.
