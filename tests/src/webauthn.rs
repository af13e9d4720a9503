//! Passkeys in headless Chromium: a virtual authenticator through the
//! WebAuthn WebDriver extension (W3C Web Authentication Level 2, §11.3
//! "Automation"), which chromedriver implements. The page's own script
//! calls `navigator.credentials.create` / `get`; Chromium answers with the
//! virtual authenticator of the session (no dialog, no fingerprint), and
//! the test reads back what the authenticator holds.
//!
//! WebAuthn wants a secure context and a relying-party id that is a domain
//! name: the server's issuer must be `http://localhost:<port>`
//! ([`issuer_on_localhost`]; an issuer on 127.0.0.1 has passkeys off) and
//! the browser must open the pages there ([`issuer_url`]), not on the
//! kit's `base_url` (127.0.0.1): `http://localhost` is a secure context,
//! and the script's `Origin` must be the issuer's. Chromium needs no flag.
//!
//! For sign-in tests: [`browser_with_authenticator`] gives a Chromium with a
//! platform authenticator, [`sign_in_at_issuer`] signs in with the password
//! there, and [`register_passkey`] adds a passkey through the account page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::TestApp;
use crate::chromium::{Browser, sign_in};

/// Makes `config`'s issuer `http://localhost:<its port>`: for `spawn_with`.
pub fn issuer_on_localhost(config: &mut idp::config::Config) {
    config
        .server
        .issuer
        .set_host(Some("localhost"))
        .expect("an issuer URL with a host");
}

/// `path` on the issuer's origin: where a browser must be for WebAuthn.
pub fn issuer_url(app: &TestApp, path: &str) -> String {
    let origin = app
        .state
        .config
        .server
        .issuer
        .origin()
        .ascii_serialization();
    format!("{origin}{path}")
}

/// What kind of authenticator to add (§11.3, "Virtual Authenticators").
#[derive(Debug, Clone)]
pub struct AuthenticatorOptions {
    /// `ctap2` or `ctap1/u2f`.
    pub protocol: &'static str,
    /// `internal` (built into the device), `usb`, `nfc`, `ble`.
    pub transport: &'static str,
    /// Stores discoverable credentials (resident keys).
    pub has_resident_key: bool,
    /// Can verify the user (fingerprint, face, PIN).
    pub has_user_verification: bool,
    /// Every presence check passes on its own (Chromium's
    /// `automaticPresenceSimulation`): nobody has to touch it.
    pub is_user_consenting: bool,
    /// Every user verification succeeds (while `has_user_verification`).
    pub is_user_verified: bool,
}

impl Default for AuthenticatorOptions {
    /// A phone's or laptop's own passkey store: CTAP2, internal, resident
    /// keys, the user verified and present without asking.
    fn default() -> Self {
        Self {
            protocol: "ctap2",
            transport: "internal",
            has_resident_key: true,
            has_user_verification: true,
            is_user_consenting: true,
            is_user_verified: true,
        }
    }
}

/// A credential the authenticator holds (§11.3 "Credential Parameters").
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    /// base64url, as the server stores it.
    pub credential_id: String,
    /// Discoverable (a resident key): usable without naming the account.
    pub is_resident_credential: bool,
    #[serde(default)]
    pub rp_id: Option<String>,
    /// base64url of the user handle the server gave; only for resident keys.
    #[serde(default)]
    pub user_handle: Option<String>,
    #[serde(default)]
    pub sign_count: u64,
}

impl Credential {
    /// The user handle's bytes.
    pub fn user_handle_bytes(&self) -> Option<Vec<u8>> {
        self.user_handle.as_deref().map(|h| {
            URL_SAFE_NO_PAD
                .decode(h.trim_end_matches('='))
                .unwrap_or_else(|e| panic!("user handle {h:?} as base64url: {e}"))
        })
    }
}

/// A virtual authenticator attached to one browser session; its methods
/// take that [`Browser`].
#[derive(Debug, Clone)]
pub struct Authenticator {
    id: String,
}

impl Authenticator {
    /// Attaches a new authenticator to `browser`'s session (the browser
    /// uses it for every WebAuthn call from then on).
    pub async fn add(browser: &Browser, options: &AuthenticatorOptions) -> Self {
        let body = json!({
            "protocol": options.protocol,
            "transport": options.transport,
            "hasResidentKey": options.has_resident_key,
            "hasUserVerification": options.has_user_verification,
            "isUserConsenting": options.is_user_consenting,
            "isUserVerified": options.is_user_verified,
        });
        let id = browser
            .session_command(Method::POST, "/webauthn/authenticator", Some(body))
            .await;
        let id = id
            .as_str()
            .unwrap_or_else(|| panic!("an authenticator id, not {id}"))
            .to_owned();
        Self { id }
    }

    fn path(&self, rest: &str) -> String {
        format!("/webauthn/authenticator/{}{rest}", self.id)
    }

    /// The credentials it holds now.
    pub async fn credentials(&self, browser: &Browser) -> Vec<Credential> {
        let list = browser
            .session_command(Method::GET, &self.path("/credentials"), None)
            .await;
        serde_json::from_value(list.clone())
            .unwrap_or_else(|e| panic!("the credential list {list}: {e}"))
    }

    /// Forgets one credential (`credential_id` base64url): as if deleted
    /// from the device.
    pub async fn remove_credential(&self, browser: &Browser, credential_id: &str) {
        let path = self.path(&format!("/credentials/{credential_id}"));
        browser.session_command(Method::DELETE, &path, None).await;
    }

    /// Forgets every credential it holds.
    pub async fn remove_all_credentials(&self, browser: &Browser) {
        let path = self.path("/credentials");
        browser.session_command(Method::DELETE, &path, None).await;
    }

    /// Whether the next user verifications succeed (a finger that is
    /// recognised, or not).
    pub async fn set_user_verified(&self, browser: &Browser, verified: bool) {
        let body = json!({ "isUserVerified": verified });
        browser
            .session_command(Method::POST, &self.path("/uv"), Some(body))
            .await;
    }

    /// Detaches it from the browser, with its credentials.
    pub async fn remove(self, browser: &Browser) {
        let path = self.path("");
        browser.session_command(Method::DELETE, &path, None).await;
    }
}

/// A Chromium (this test's turn, see `chromium`) with a platform
/// authenticator that holds no credential yet.
pub async fn browser_with_authenticator() -> (Browser, Authenticator) {
    let browser = Browser::start().await;
    let authenticator = Authenticator::add(&browser, &AuthenticatorOptions::default()).await;
    (browser, authenticator)
}

/// Signs in with a password on the issuer's origin: `/login{query}` (say
/// `?client_id=helix-portal` for a portal's theme), then waits for the
/// account page. The sign-in is recent from then on.
pub async fn sign_in_at_issuer(
    browser: &Browser,
    app: &TestApp,
    query: &str,
    email: &str,
    password: &str,
) {
    browser
        .open(&issuer_url(app, &format!("/login{query}")))
        .await;
    browser.wait_for_path("/login").await;
    sign_in(browser, email, password).await;
    browser.wait_for_path("/account").await;
}

/// Types `name` into the passkeys page's add form and presses its button:
/// the page's script runs the ceremony with the browser's authenticator.
/// `Ok` once the browser has left the page (the list after a passkey was
/// added, or "Confirm it's you"); `Err` with the message the page showed
/// instead.
pub async fn press_add_passkey(browser: &Browser, name: &str) -> Result<(), String> {
    const FORM: &str = "form[data-passkey-register]";
    // Deferred, the script has run once the page is complete.
    browser
        .wait_until(
            "the passkeys page with its add form",
            "return document.readyState === 'complete' && !!document.querySelector(arguments[0]);",
            vec![json!(FORM)],
        )
        .await;
    // The rename forms come first and have a `name` box too.
    let input = browser
        .client
        .find(fantoccini::Locator::Css(&format!(
            "{FORM} input[name=name]"
        )))
        .await
        .expect("the add form's name box");
    input.clear().await.expect("clear");
    input.send_keys(name).await.expect("type the name");
    let button = browser
        .client
        .find(fantoccini::Locator::Css(&format!(
            "{FORM} [data-passkey-button]"
        )))
        .await
        .expect("the add form's button");
    let page = browser.mark_page().await;
    button.click().await.expect("press Add");
    let outcome = browser
        .wait_until(
            "the passkey to be added, or the page to say why not",
            "if (window.__testPage !== arguments[0])
               return document.readyState === 'complete' ? { left: true } : null;
             const m = document.querySelector(arguments[1] + ' [data-passkey-message]');
             return m && !m.hidden && m.textContent.trim() ? { message: m.textContent.trim() } : null;",
            vec![json!(page), json!(FORM)],
        )
        .await;
    match outcome["message"].as_str() {
        Some(message) => Err(message.to_owned()),
        None => Ok(()),
    }
}

/// Adds a passkey named `name` through `/account/passkeys{query}` for the
/// person signed in (recently) in `browser`, with its authenticator; fails
/// unless the page then lists it.
pub async fn register_passkey(browser: &Browser, app: &TestApp, query: &str, name: &str) {
    let page = format!("/account/passkeys{query}");
    browser.open(&issuer_url(app, &page)).await;
    browser.wait_for_path("/account/passkeys").await;
    if let Err(message) = press_add_passkey(browser, name).await {
        panic!("no passkey added; the page says {message:?}");
    }
    browser.wait_for_path("/account/passkeys").await;
    browser
        .wait_until(
            &format!("the passkey {name:?} in the list"),
            "const list = document.getElementById('passkey-list');
             return !!list && [...list.querySelectorAll('.item-card-title')]
               .some(t => t.textContent.trim() === arguments[0]);",
            vec![json!(name)],
        )
        .await;
}
