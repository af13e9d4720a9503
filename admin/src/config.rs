//! Where the console lives and whom it talks to.

use url::Url;

/// The provider's endpoints the console uses. Browsers are sent to
/// `authorize` and `end_session`; the console itself calls `token` and
/// `revocation` (the back channel, which may be a private address).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The provider's issuer identifier: ID tokens must name it.
    pub issuer: Url,
    pub authorize: Url,
    pub token: Url,
    pub revocation: Url,
    pub end_session: Url,
}

impl Endpoints {
    /// The endpoints of this identity provider under `issuer`, with the back
    /// channel (token, revocation) at `backchannel` (often the issuer itself).
    pub fn of_issuer(issuer: &Url, backchannel: &Url) -> Self {
        Self {
            issuer: issuer.clone(),
            authorize: under(issuer, "authorize"),
            token: under(backchannel, "token"),
            revocation: under(backchannel, "revoke"),
            end_session: under(issuer, "logout"),
        }
    }
}

/// `base` + `path`, keeping a path `base` may have (an issuer like
/// `https://example.com/idp`).
pub(crate) fn under(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(None);
    url
}

#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Where browsers reach the console, ending in `/admin/`, e.g.
    /// `http://127.0.0.1:8081/admin/`. Its `callback` is the redirect URI
    /// registered for the console's client; `https` makes its cookies
    /// `Secure` and `__Host-`.
    pub url: Url,
    pub endpoints: Endpoints,
    /// The admin API's base (its paths start with `/admin/api/`).
    pub api: Url,
    pub client_id: String,
    pub client_secret: String,
    /// Reverse proxies in front of the console that append to
    /// `X-Forwarded-For`: the administrator's address, passed on to the admin
    /// API for its audit trail, is taken that many entries from the right.
    /// 0: the TCP peer.
    pub trusted_proxy_hops: usize,
    /// The IANA time zone (`Europe/Paris`, `UTC`) the pages show times in
    /// and read their date filters in: the console has no script, so the
    /// browser's own zone is unknown; a deployment's administrators share one.
    pub time_zone: String,
}

impl ConsoleConfig {
    pub fn redirect_uri(&self) -> Url {
        under(&self.url, "callback")
    }

    pub(crate) fn secure_cookies(&self) -> bool {
        self.url.scheme() == "https"
    }

    pub(crate) fn api_url(&self, path_and_query: &str) -> String {
        format!(
            "{}{path_and_query}",
            self.api.as_str().trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_issuer_path_and_use_the_back_channel() {
        let issuer = Url::parse("https://example.com/idp").unwrap();
        let back = Url::parse("http://10.0.0.5:8080/").unwrap();
        let e = Endpoints::of_issuer(&issuer, &back);
        assert_eq!(e.authorize.as_str(), "https://example.com/idp/authorize");
        assert_eq!(e.end_session.as_str(), "https://example.com/idp/logout");
        assert_eq!(e.token.as_str(), "http://10.0.0.5:8080/token");
        assert_eq!(e.revocation.as_str(), "http://10.0.0.5:8080/revoke");
        let console = ConsoleConfig {
            url: Url::parse("https://admin.example.com/admin/").unwrap(),
            endpoints: e,
            api: Url::parse("http://10.0.0.5:8081").unwrap(),
            client_id: "admin-console".into(),
            client_secret: "s".into(),
            trusted_proxy_hops: 0,
            time_zone: "UTC".into(),
        };
        assert_eq!(
            console.redirect_uri().as_str(),
            "https://admin.example.com/admin/callback"
        );
        assert!(console.secure_cookies());
        assert_eq!(
            console.api_url("/admin/api/users?q=a"),
            "http://10.0.0.5:8081/admin/api/users?q=a"
        );
    }
}
