//! Driving the themed pages over HTTP like a browser without JavaScript:
//! read a page, fill its form (hidden fields, CSRF token included), submit.

use reqwest::StatusCode;
use scraper::{Html, Selector};
use sha2::{Digest, Sha256};

use crate::TestApp;

/// A fetched page.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub url: String,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status();
        let url = response.url().to_string();
        let headers = response.headers().clone();
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.unwrap_or_default();
        Self {
            status,
            url,
            location,
            headers,
            body,
        }
    }

    /// The authenticator key to type by hand (`#manual-key`), as shown
    /// (groups of four).
    pub fn manual_key(&self) -> Option<String> {
        let sel = Selector::parse("#manual-key").expect("a valid selector");
        self.html()
            .select(&sel)
            .next()
            .map(|e| e.text().collect::<String>().trim().to_owned())
            .filter(|k| !k.is_empty())
    }

    /// The same key without its spaces.
    pub fn manual_key_compact(&self) -> Option<String> {
        self.manual_key().map(|k| k.split_whitespace().collect())
    }

    pub fn html(&self) -> Html {
        Html::parse_document(&self.body)
    }

    /// Visible text, whitespace collapsed: what a person reads.
    pub fn text(&self) -> String {
        let html = self.html();
        let body = Selector::parse("body").unwrap();
        let text: Vec<String> = html
            .select(&body)
            .flat_map(|b| b.text())
            .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|t| !t.is_empty())
            .collect();
        text.join(" ")
    }

    pub fn contains(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }

    /// The value of the first input named `name`.
    pub fn input(&self, name: &str) -> Option<String> {
        let sel = Selector::parse(&format!("input[name=\"{name}\"]")).unwrap();
        self.html()
            .select(&sel)
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_owned))
    }

    /// Hidden inputs of the (first) form that posts to `action`.
    pub fn hidden_fields(&self, action: &str) -> Vec<(String, String)> {
        let html = self.html();
        let form_sel = Selector::parse("form").unwrap();
        let hidden = Selector::parse("input[type=hidden]").unwrap();
        html.select(&form_sel)
            .filter(|f| f.value().attr("action").unwrap_or("").split('?').next() == Some(action))
            .take(1)
            .flat_map(|f| {
                f.select(&hidden)
                    .filter_map(|i| {
                        Some((
                            i.value().attr("name")?.to_owned(),
                            i.value().attr("value").unwrap_or("").to_owned(),
                        ))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The form holding the button that reads `text`: its action and hidden
    /// fields, as a click on that button would send them.
    pub fn button_form(&self, text: &str) -> Option<(String, Vec<(String, String)>)> {
        let html = self.html();
        let form_sel = Selector::parse("form").unwrap();
        let button = Selector::parse("button").unwrap();
        let hidden = Selector::parse("input[type=hidden]").unwrap();
        let words = |e: scraper::ElementRef| {
            e.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        let form = html
            .select(&form_sel)
            .find(|f| f.select(&button).any(|b| words(b) == text))?;
        let fields = form
            .select(&hidden)
            .filter_map(|i| {
                let name = i.value().attr("name")?.to_owned();
                Some((name, i.value().attr("value").unwrap_or("").to_owned()))
            })
            .collect();
        Some((form.value().attr("action").unwrap_or("").to_owned(), fields))
    }

    /// `href`s of links whose text contains `text`.
    pub fn link(&self, text: &str) -> Option<String> {
        let sel = Selector::parse("a").unwrap();
        self.html()
            .select(&sel)
            .find(|a| a.text().collect::<String>().contains(text))
            .and_then(|a| a.value().attr("href").map(str::to_owned))
    }

    /// Messages tied to a field through `aria-describedby`.
    pub fn field_errors(&self, field: &str) -> String {
        let html = self.html();
        let input = Selector::parse(&format!("[name=\"{field}\"]")).unwrap();
        let Some(element) = html.select(&input).next() else {
            return String::new();
        };
        let ids = element
            .value()
            .attr("aria-describedby")
            .unwrap_or("")
            .to_owned();
        ids.split_whitespace()
            .filter_map(|id| {
                let sel = Selector::parse(&format!("[id=\"{id}\"]")).ok()?;
                html.select(&sel)
                    .next()
                    .map(|e| e.text().collect::<String>())
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl TestApp {
    /// The server's current time (its clock is the test's to move).
    pub fn clock_now(&self) -> time::OffsetDateTime {
        use idp::clock::Clock;
        self.clock.now()
    }

    pub async fn page(&self, path: &str) -> Page {
        Page::from(self.get(path).await).await
    }

    /// GET of an absolute URL (another listener, a redirect's target), with this browser's cookies.
    pub async fn page_at(&self, url: &str) -> Page {
        Page::from(self.http.get(url).send().await.expect("GET sent")).await
    }

    /// Opens `path`, then submits its form (the one posting to `action`) with
    /// its hidden fields plus `fields`; solves a captcha if the form has one.
    pub async fn submit(&self, path: &str, action: &str, fields: &[(&str, &str)]) -> Page {
        let form = self.page(path).await;
        assert!(
            form.status.is_success(),
            "GET {path} answered {}: {}",
            form.status,
            form.text()
        );
        self.submit_on(&form, action, fields).await
    }

    /// Submits the form of an already fetched page.
    pub async fn submit_on(&self, form: &Page, action: &str, fields: &[(&str, &str)]) -> Page {
        self.post(action, &form_values(form, action, fields)).await
    }

    /// A raw form POST.
    pub async fn post(&self, action: &str, values: &[(String, String)]) -> Page {
        let response = self
            .http
            .post(self.url(action))
            .form(values)
            .send()
            .await
            .expect("POST sent");
        Page::from(response).await
    }

    /// Signs in through the form; returns the answer (a redirect on success).
    pub async fn sign_in(&self, email: &str, password: &str) -> Page {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    /// Signs in, which must succeed; returns the session cookie's value.
    pub async fn signed_in(&self, email: &str, password: &str) -> String {
        let page = self.sign_in(email, password).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
        page.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let (name, rest) = c.split_once('=')?;
                name.ends_with("idp_session")
                    .then(|| rest.split(';').next().unwrap_or("").to_owned())
            })
            .expect("a session cookie")
    }

    /// Creates an account directly (as the CLI would).
    pub async fn create_user(&self, email: &str, password: &str, name: &str) -> idp::store::User {
        idp::account::create_user(
            self.state.store.as_ref(),
            &self.state.hasher,
            self.state.clock.as_ref(),
            idp::account::NewAccount {
                email: idp::domain::Email::parse(email).unwrap(),
                name: name.into(),
                password: Some(idp::domain::PlainPassword::parse(password).unwrap()),
                email_verified: true,
                is_admin: false,
            },
        )
        .await
        .unwrap()
    }

    /// Takes `user`'s password away, as for an account made elsewhere (an
    /// import) without one: its passkeys are then its only way in. Nothing
    /// in the server makes such an account yet, so the column is cleared
    /// directly.
    pub async fn remove_password(&self, user: &idp::domain::UserId) {
        use sqlx::Connection;
        let url = self.state.config.database.url.expose().to_owned();
        let sql = "update user_account set password_hash = null where user_id = $1";
        match self.backend {
            crate::Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query(sql)
                    .bind(user.as_str())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            crate::Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(sql)
                    .bind(user.as_str())
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }

    /// A second browser on the same server: its own cookies.
    pub fn other_browser(&self) -> TestApp {
        self.browser_as(crate::USER_AGENT)
    }

    /// Another browser, with its own cookies, that calls itself `user_agent`.
    pub fn browser_as(&self, user_agent: &str) -> TestApp {
        TestApp {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .user_agent(user_agent)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            ..self.clone()
        }
    }
}

/// What a browser sends when the form of `form` posting to `action` is
/// submitted with `fields` typed in: its hidden fields (CSRF token included),
/// the fields, and a solved captcha when the form has one.
pub fn form_values(form: &Page, action: &str, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut values = form.hidden_fields(action);
    if let Some((_, challenge)) = values
        .iter()
        .find(|(k, _)| k == "captcha_challenge")
        .cloned()
    {
        let difficulty: u32 = form
            .html()
            .select(&Selector::parse("[data-difficulty]").unwrap())
            .next()
            .and_then(|e| e.value().attr("data-difficulty"))
            .and_then(|d| d.parse().ok())
            .unwrap_or(16);
        let nonce = solve_captcha(&challenge, difficulty).to_string();
        values.retain(|(k, _)| k != "captcha_nonce");
        values.push(("captcha_nonce".into(), nonce));
    }
    for (k, v) in fields {
        values.retain(|(name, _)| name != k);
        values.push(((*k).to_owned(), (*v).to_owned()));
    }
    values
}

/// The proof-of-work answer, computed independently of the server's code:
/// the smallest nonce whose SHA-256(challenge ":" nonce) starts with
/// `difficulty` zero bits.
pub fn solve_captcha(challenge: &str, difficulty: u32) -> u64 {
    (0u64..)
        .find(|nonce| {
            let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
            let mut zeros = 0;
            for byte in digest {
                if byte == 0 {
                    zeros += 8;
                    continue;
                }
                zeros += byte.leading_zeros();
                break;
            }
            zeros >= difficulty
        })
        .unwrap()
}

/// A server delivering its mail to a real SMTP server of the test's own.
pub struct MailApp {
    pub app: TestApp,
    pub sink: std::sync::Arc<crate::smtp::SmtpSink>,
}

impl std::ops::Deref for MailApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl MailApp {
    pub async fn spawn(backend: crate::Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(
        backend: crate::Backend,
        adjust: impl FnOnce(&mut idp::config::Config),
    ) -> Self {
        let sink = std::sync::Arc::new(crate::smtp::SmtpSink::start().await);
        let port = sink.port();
        let app = TestApp::spawn_with(backend, move |c| {
            c.mail.transport = idp::config::MailTransport::Smtp;
            c.mail.smtp.host = "127.0.0.1".into();
            c.mail.smtp.port = port;
            c.mail.smtp.tls = idp::config::SmtpTls::None;
            c.mail.poll_interval_ms = 50;
            adjust(c);
        })
        .await;
        Self { app, sink }
    }

    /// Messages to `email` received so far.
    pub fn mail_to(&self, email: &str) -> Vec<crate::smtp::ReceivedMail> {
        self.sink
            .messages()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(email)))
            .collect()
    }

    /// Waits for the `n`th message to `email` and returns it.
    pub async fn wait_for_mail_to(&self, email: &str, n: usize) -> crate::smtp::ReceivedMail {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mails = self.mail_to(email);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "mail #{n} to {email} did not arrive; got {:?}",
                self.sink
                    .messages()
                    .iter()
                    .map(|m| (m.to.clone(), m.subject()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The first link in a mail's text body that contains `path`, as a path + query.
pub fn link_in(mail: &crate::smtp::ReceivedMail, path: &str) -> String {
    let body = mail.text_body();
    let url = body
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| c == '<' || c == '>' || c == '(' || c == ')' || c == '"'))
        .find(|w| w.starts_with("http") && w.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in:\n{body}"));
    let parsed = url::Url::parse(url).unwrap();
    match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_owned(),
    }
}

/// A client to register, as `idp client create` would.
#[derive(Debug, Clone)]
pub struct NewClient<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: idp::domain::ClientKind,
    pub redirect_uri: &'a str,
    pub post_logout_redirect_uri: Option<&'a str>,
    /// First-party clients get no consent page.
    pub first_party: bool,
    pub theme: Option<&'a str>,
    /// Every sign-in for it needs the second step (`--require-mfa`).
    pub require_mfa: bool,
    /// PKCE required of it even when confidential.
    pub require_pkce: bool,
}

impl<'a> NewClient<'a> {
    /// A confidential first-party portal wearing `theme`, sending people
    /// back to `https://portal.example.com/cb`.
    pub fn portal(id: &'a str, theme: &'a str) -> Self {
        Self {
            id,
            name: id,
            kind: idp::domain::ClientKind::Confidential,
            redirect_uri: "https://portal.example.com/cb",
            post_logout_redirect_uri: None,
            first_party: true,
            theme: Some(theme),
            require_mfa: false,
            require_pkce: false,
        }
    }

    /// A confidential first-party application in the default theme, sending
    /// people back to `redirect_uri`.
    pub fn app(id: &'a str, name: &'a str, redirect_uri: &'a str) -> Self {
        Self {
            id,
            name,
            theme: None,
            redirect_uri,
            ..Self::portal(id, "default")
        }
    }
}

/// Registers a client directly in the store; returns its secret
/// (`None` for a public client).
pub async fn register_client(app: &TestApp, client: NewClient<'_>) -> Option<String> {
    let uri = |u: &str| idp::domain::RedirectUri::parse(u).unwrap();
    idp::oidc::register_client(
        app.state.store.as_ref(),
        app.state.clock.as_ref(),
        idp::oidc::ClientRegistration {
            id: idp::domain::ClientId::parse(client.id).unwrap(),
            name: client.name.into(),
            kind: client.kind,
            redirect_uris: vec![uri(client.redirect_uri)],
            post_logout_redirect_uris: client
                .post_logout_redirect_uri
                .map(uri)
                .into_iter()
                .collect(),
            first_party: client.first_party,
            theme: client.theme.map(str::to_owned),
            grant_types: vec![],
            id_token_alg: idp::domain::IdTokenAlg::RS256,
            require_mfa: client.require_mfa,
            require_pkce: client.require_pkce,
            external_id_claim: None,
        },
    )
    .await
    .unwrap()
    .secret
}
