//! A person going through the provider's sign-in pages in a browser without
//! JavaScript: the password page, the authenticator set-up, the one-time
//! code page and the consent page. Tests that need a code, tokens or a
//! console session walk there with a [`Person`], then look at what was asked
//! on the way.

use reqwest::StatusCode;

use crate::TestApp;
use crate::browser::{Page, form_values};

/// Who signs in, what they answer, and what they were shown.
#[derive(Debug, Default)]
pub struct Person {
    pub email: String,
    /// Typed on the sign-in page; `None`: being asked for it fails the test
    /// (single sign-on was expected).
    pub password: Option<String>,
    /// The authenticator app's key: one set up before, or the one read off
    /// the set-up page on the way (as a person would type it into the app).
    pub totp: Option<String>,
    /// "allow" or "deny" on the consent page; `None`: being asked fails the test.
    pub consent: Option<String>,
    /// The provider's pages shown, by path, in order.
    pub pages: Vec<String>,
    /// The consent page's text, when it was shown.
    pub consent_text: Option<String>,
    /// The page with the recovery codes, when an authenticator was set up.
    pub recovery_page: Option<Page>,
}

/// How many pages and redirects a sign-in may take before it is called a loop.
const MAX_HOPS: usize = 16;

impl Person {
    pub fn new(email: &str) -> Self {
        Self {
            email: email.to_owned(),
            ..Self::default()
        }
    }

    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    pub fn authenticator(mut self, key: Option<&str>) -> Self {
        self.totp = key.map(str::to_owned);
        self
    }

    pub fn consent(mut self, decision: Option<&str>) -> Self {
        self.consent = decision.map(str::to_owned);
        self
    }

    /// Whether the sign-in page was shown.
    pub fn asked_password(&self) -> bool {
        self.pages.iter().any(|p| p == "/login")
    }

    /// Follows `url` as `browser`: redirects (resolved against the address
    /// that sent them) and the provider's pages, answered as this person,
    /// until an address `arrived` accepts, which is returned unopened (a
    /// relying party's callback need not be served).
    pub async fn walk(
        &mut self,
        browser: &TestApp,
        url: &str,
        arrived: impl Fn(&str) -> bool,
    ) -> String {
        let mut next = resolve(&browser.url("/"), url);
        for _ in 0..MAX_HOPS {
            if arrived(&next) {
                return next;
            }
            let page = browser.page_at(&next).await;
            if page.status.is_redirection() {
                let to = page.location.as_deref().expect("a redirect has a Location");
                next = resolve(&page.url, to);
                continue;
            }
            assert_eq!(page.status, StatusCode::OK, "{next}: {}", page.text());
            next = self.answer(browser, &page).await;
        }
        panic!("no arrival after {MAX_HOPS} hops: {:?}", self.pages);
    }

    /// Answers one of the provider's pages; returns where the browser goes next.
    async fn answer(&mut self, browser: &TestApp, page: &Page) -> String {
        let path = url::Url::parse(&page.url).unwrap().path().to_owned();
        self.pages.push(path.clone());
        let answer = match path.as_str() {
            "/login" => {
                let password = self.password.clone().unwrap_or_else(|| {
                    panic!("asked for {}'s password: {}", self.email, page.text())
                });
                let fields = [("email", self.email.as_str()), ("password", &password)];
                submit(browser, page, "/login", &fields).await
            }
            "/login/mfa-setup" => {
                let key = page.manual_key_compact().expect("the key to type by hand");
                let code = crate::totp::code_at(&key, browser.clock_now());
                self.totp = Some(key);
                let done = submit(browser, page, "/login/mfa-setup", &[("code", &code)]).await;
                assert_eq!(done.status, StatusCode::OK, "{}", done.text());
                let on = done.link("Continue").expect("a way on after the codes");
                let on = resolve(&done.url, &on);
                self.recovery_page = Some(done);
                return on;
            }
            "/login/otp" => {
                let key = self.totp.clone().unwrap_or_else(|| {
                    panic!("asked for a code, but no app is set up: {}", page.text())
                });
                let code = crate::totp::code_at(&key, browser.clock_now());
                submit(browser, page, "/login/otp", &[("code", &code)]).await
            }
            "/consent" => {
                self.consent_text = Some(page.text());
                let decision = self
                    .consent
                    .clone()
                    .unwrap_or_else(|| panic!("asked for consent: {}", page.text()));
                submit(browser, page, "/consent", &[("decision", &decision)]).await
            }
            other => panic!("unexpected page {other}: {}", page.text()),
        };
        assert_eq!(
            answer.status,
            StatusCode::SEE_OTHER,
            "{path}: {}",
            answer.text()
        );
        resolve(&answer.url, answer.location.as_deref().expect("a redirect"))
    }
}

/// Submits the form of `page` posting to `action`, to the server that sent it.
async fn submit(browser: &TestApp, page: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
    let to = resolve(&page.url, action);
    let values = form_values(page, action, fields);
    let response = browser.http.post(to).form(&values).send().await;
    Page::from(response.expect("POST sent")).await
}

/// `location` (absolute, or relative to `base`) as an absolute address.
pub fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .unwrap_or_else(|e| panic!("{location} from {base}: {e}"))
        .to_string()
}
