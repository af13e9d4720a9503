//! Headless Chromium for the black-box tests, driven through chromedriver
//! (WebDriver), so the pages' JavaScript runs under the server's
//! Content-Security-Policy exactly as it does for a person, and redirects
//! after a form POST are checked against `form-action` as only a browser does.
//!
//! One chromedriver serves a whole test binary; each test gets its own
//! WebDriver session, that is a Chromium of its own on a fresh profile, and
//! the tests take turns ([`Browser::start`] waits for the previous one to
//! end): the CI machine has two cores.
//!
//! `scripts/test` installs Debian's `chromium` and `chromium-driver` and
//! exports `CHROME_BIN` and `CHROMEDRIVER`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::{Mutex, MutexGuard, OnceCell};

use crate::TestApp;

/// How long any one thing may take to appear in the browser.
pub const WAIT: Duration = Duration::from_secs(30);

/// The test binary's chromedriver: its port and log.
struct Driver {
    port: u16,
    log: PathBuf,
}

static DRIVER: OnceCell<Driver> = OnceCell::const_new();
/// One browser at a time per test binary.
static TURN: Mutex<()> = Mutex::const_new(());

impl Driver {
    /// Starts chromedriver under a small shell watchdog that ends it (and the
    /// Chromiums it started) once this test process has exited: a static is
    /// never dropped, and a chromedriver outliving the tests would hold its
    /// port and memory.
    async fn start() -> Self {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = crate::free_port();
        let log =
            std::env::temp_dir().join(format!("chromedriver-{}-{port}.log", std::process::id()));
        let watchdog = r#"
            "$0" --port="$1" --log-path="$2" </dev/null >/dev/null 2>&1 &
            driver=$!
            while kill -0 "$3" 2>/dev/null && kill -0 "$driver" 2>/dev/null; do sleep 0.5; done
            for child in $(pgrep -P "$driver"); do kill "$child" 2>/dev/null; done
            kill "$driver" 2>/dev/null
            wait "$driver"
            rm -f "$2"
        "#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .arg(&binary)
            .arg(port.to_string())
            .arg(&log)
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start {binary} (run the tests with `bash scripts/test`): {e}")
            });
        let deadline = Instant::now() + WAIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                // Reaped by nobody: the watchdog lives as long as the tests.
                std::mem::forget(child);
                return Self { port, log };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before listening on {port}: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port} within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A headless Chromium session on a fresh profile, this test's turn with the
/// shared chromedriver. Dropping it (also while a failed test unwinds) ends
/// the session, and so that Chromium.
pub struct Browser {
    pub client: Client,
    driver: &'static Driver,
    session: String,
    /// Console messages read from chromedriver and not yet checked.
    seen: std::sync::Mutex<Vec<(String, String, String)>>,
    /// Fields drop in order: the session ends (in `drop`), then the profile
    /// goes, then the next test gets its turn.
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // No runtime to await on here: a plain HTTP DELETE to chromedriver
        // quits this Chromium (an answer of 404 after `quit` is fine).
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.session, self.driver.port
        );
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.driver.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(15)));
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
    }
}

impl Browser {
    /// Waits for this test's turn, then opens a Chromium on a fresh profile.
    pub async fn start() -> Self {
        let turn = TURN.lock().await;
        let driver = DRIVER.get_or_init(Driver::start).await;
        let profile = tempfile::tempdir().expect("profile dir");
        let chrome = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let user_data = profile.path().join("chromium");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--no-first-run".into(),
            // Nothing but the test's own servers, even by mistake.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", user_data.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chrome, "args": args }),
        );
        // Console messages (CSP violations among them) are read back from here.
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&driver.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no Chromium session: {e}\n{}",
                    std::fs::read_to_string(&driver.log).unwrap_or_default()
                )
            });
        let session = client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let browser = Self {
            client,
            driver,
            session,
            seen: std::sync::Mutex::default(),
            _profile: profile,
            _turn: turn,
        };
        browser
            .client
            .update_timeouts(TimeoutConfiguration::new(
                Some(WAIT),
                Some(Duration::from_secs(15)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("set timeouts");
        browser
    }

    /// Ends the session cleanly.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The page's visible text, as rendered.
    pub async fn text(&self) -> String {
        self.client
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Runs `script` until it returns something truthy, for at most `WAIT`.
    pub async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        self.wait_until_for(WAIT, what, script, args).await
    }

    pub async fn wait_until_for(
        &self,
        limit: Duration,
        what: &str,
        script: &str,
        args: Vec<Value>,
    ) -> Value {
        let deadline = Instant::now() + limit;
        let last = loop {
            // While a navigation is under way the script may fail: try again.
            let last = match self.client.execute(script, args.clone()).await {
                Ok(v) if truthy(&v) => return v,
                Ok(v) => v.to_string(),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                break last;
            }
            // A Content-Security-Policy violation means the page will not
            // come: say so now, with the console's words.
            let blocked: Vec<_> = self
                .pull_console()
                .await
                .into_iter()
                .filter(|(_, _, message)| is_csp_violation(message))
                .collect();
            if !blocked.is_empty() {
                let url = self.url_now().await;
                panic!(
                    "waiting for {what}: the browser (on {url}) reports a Content-Security-Policy violation: {blocked:#?}\n{}",
                    self.text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let url = self.url_now().await;
        let console = self.pull_console().await;
        let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
        panic!(
            "waited {limit:?} for {what} (last answer: {last}); the browser shows {url}:\n{}\nconsole: {seen:#?} {console:#?}",
            self.text().await
        );
    }

    async fn url_now(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Waits until the address bar shows `address` (scheme, host, port and
    /// path; any query) and the page has loaded: arrival on another origin,
    /// such as a relying party's.
    pub async fn wait_for_address(&self, address: &str) {
        self.wait_until(
            &format!("the address {address}"),
            "return location.origin + location.pathname === arguments[0]
               && document.readyState === 'complete';",
            vec![json!(address)],
        )
        .await;
    }

    /// Waits until the page shows `needle`.
    pub async fn see(&self, needle: &str) {
        self.wait_until(
            &format!("the text {needle:?}"),
            "return !!document.body && document.body.innerText.includes(arguments[0]);",
            vec![json!(needle)],
        )
        .await;
    }

    /// Waits until the address bar's path is `path`, and the page has loaded.
    pub async fn wait_for_path(&self, path: &str) {
        self.wait_until(
            &format!("the path {path}"),
            "return location.pathname === arguments[0] && document.readyState === 'complete';",
            vec![json!(path)],
        )
        .await;
    }

    /// Types `value` into the (visible) input or text area named `name`,
    /// replacing what was there.
    pub async fn type_into(&self, name: &str, value: &str) {
        let css = format!("input[name=\"{name}\"], textarea[name=\"{name}\"]");
        let input = match self.client.find(Locator::Css(&css)).await {
            Ok(input) => input,
            Err(e) => panic!("no input {name}: {e}\n{}", self.text().await),
        };
        assert!(
            input.is_displayed().await.unwrap_or(false),
            "the {name} box is not visible"
        );
        input.clear().await.expect("clear");
        input.send_keys(value).await.expect("type");
    }

    /// Clicks the visible link whose text is exactly `text`.
    pub async fn follow_link(&self, text: &str) {
        // A navigation may be under way (the previous click): wait for the link.
        self.wait_until(
            &format!("a visible link {text:?}"),
            "return [...document.querySelectorAll('a')].some(a =>
               a.innerText.trim() === arguments[0] && a.getClientRects().length > 0);",
            vec![json!(text)],
        )
        .await;
        for link in self
            .client
            .find_all(Locator::LinkText(text))
            .await
            .unwrap_or_default()
        {
            if link.is_displayed().await.unwrap_or(false) {
                let page = self.mark_page().await;
                link.click().await.expect("click the link");
                self.wait_for_next_page(page, &format!("the page after the link {text:?}"))
                    .await;
                return;
            }
        }
        panic!("no visible link {text:?} on:\n{}", self.text().await);
    }

    /// Marks the document now shown, so that its successor can be told from
    /// it: text the next page shares with this one (a table before and after
    /// a filter, say) would otherwise be "seen" before the browser has left.
    pub async fn mark_page(&self) -> String {
        let mark = uuid::Uuid::new_v4().to_string();
        self.client
            .execute("window.__testPage = arguments[0];", vec![json!(mark)])
            .await
            .expect("mark the page");
        mark
    }

    /// Waits until the document marked `mark` has been replaced by one that
    /// has loaded.
    pub async fn wait_for_next_page(&self, mark: String, what: &str) {
        self.wait_until(
            what,
            "return window.__testPage !== arguments[0] && document.readyState === 'complete';",
            vec![json!(mark)],
        )
        .await;
    }

    /// Clicks the first visible button whose text is `text` (a submit
    /// button) and waits for the page the form leads to.
    pub async fn click_button(&self, text: &str) {
        let button = self.visible_button(text).await;
        let page = self.mark_page().await;
        button.click().await.expect("click the button");
        self.wait_for_next_page(page, &format!("the page after the button {text:?}"))
            .await;
    }

    /// Clicks the first visible button whose text is `text`, and no more
    /// (a button that acts on the page without leaving it).
    pub async fn press_button(&self, text: &str) {
        let button = self.visible_button(text).await;
        button.click().await.expect("click the button");
    }

    /// The first visible, enabled button whose text is `text`, once there is one.
    pub async fn visible_button(&self, text: &str) -> fantoccini::elements::Element {
        self.wait_until(
            &format!("a visible button {text:?}"),
            "return [...document.querySelectorAll('button')].some(b =>
               b.textContent.replace(/\\s+/g, ' ').trim() === arguments[0]
               && b.getClientRects().length > 0);",
            vec![json!(text)],
        )
        .await;
        let xpath = format!("//button[normalize-space(.)='{text}']");
        for button in self
            .client
            .find_all(Locator::XPath(&xpath))
            .await
            .unwrap_or_default()
        {
            if button.is_displayed().await.unwrap_or(false) {
                assert!(
                    button.is_enabled().await.unwrap_or(false),
                    "the {text:?} button is disabled"
                );
                return button;
            }
        }
        panic!("no visible button {text:?} on:\n{}", self.text().await);
    }

    /// A Chrome DevTools Protocol command, through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let answer: Value = reqwest::Client::new()
            .post(self.session_url("/goog/cdp/execute"))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("send {cmd} to chromedriver: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{cmd}'s answer as JSON: {e}"));
        answer["value"].clone()
    }

    /// `<chromedriver>/session/<this session><path>`.
    fn session_url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.driver.url(), self.session)
    }

    /// A WebDriver command on this session that fantoccini does not have
    /// (an extension's, such as WebAuthn's virtual authenticators): sent as
    /// `method` to `/session/{id}{path}` with `body` (none for GET and
    /// DELETE); returns the answer's `value`, and fails the test on a
    /// WebDriver error, with its words.
    pub async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let what = format!("{method} {path}");
        let mut request = reqwest::Client::new().request(method, self.session_url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("send {what} to chromedriver: {e}"));
        let status = response.status();
        let answer: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}'s answer as JSON: {e}"));
        assert!(
            status.is_success(),
            "chromedriver refused {what} ({status}): {answer}"
        );
        answer["value"].clone()
    }

    /// A PNG of the whole page, also what lies below the window's bottom edge.
    pub async fn full_page_screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let metrics = self.cdp("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let (width, height) = (size["width"].as_f64(), size["height"].as_f64());
        let (Some(width), Some(height)) = (width, height) else {
            panic!("no page size in {metrics}");
        };
        let shot = self
            .cdp(
                "Page.captureScreenshot",
                json!({
                    "format": "png",
                    "captureBeyondViewport": true,
                    "clip": { "x": 0, "y": 0, "width": width, "height": height, "scale": 1 },
                }),
            )
            .await;
        let data = shot["data"]
            .as_str()
            .unwrap_or_else(|| panic!("no screenshot: {shot}"));
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("the screenshot as base64")
    }

    /// Console messages not read before (chromedriver's browser log):
    /// (level, source, message); also kept for [`Self::assert_clean_console`].
    pub async fn pull_console(&self) -> Vec<(String, String, String)> {
        let answer: Value = match reqwest::Client::new()
            .post(self.session_url("/se/log"))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
        {
            Ok(answer) => answer.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        };
        let new: Vec<(String, String, String)> = answer["value"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (field("level"), field("source"), field("message"))
            })
            .collect();
        if let Ok(mut seen) = self.seen.lock() {
            seen.extend(new.iter().cloned());
        }
        new
    }

    /// Every console message since the last check (the last call of
    /// [`Self::assert_clean_console`]).
    pub async fn console(&self) -> Vec<(String, String, String)> {
        self.pull_console().await;
        self.seen
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// Fails on any console error (a JavaScript error, a failed load) or
    /// Content-Security-Policy report since the last check. A form answered
    /// with its errors (422) is expected, not a fault.
    pub async fn assert_clean_console(&self, page: &str) {
        self.assert_clean_console_but(page, &[]).await;
    }

    /// [`Self::assert_clean_console`], also excusing the network messages
    /// that contain one of `expected`: refusals the page's script asks for
    /// and handles, which Chromium logs as failed loads (say
    /// `/register/start - Failed to load resource: the server responded
    /// with a status of 403`).
    pub async fn assert_clean_console_but(&self, page: &str, expected: &[&str]) {
        let bad: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|(level, source, message)| {
                let expected = source == "network"
                    && (message.contains("status of 422")
                        || expected.iter().any(|e| message.contains(e)));
                !expected
                    && (level == "SEVERE"
                        || source == "security"
                        || is_csp_violation(message)
                        || message.contains("Refused to"))
            })
            .collect();
        assert!(bad.is_empty(), "console errors on {page}: {bad:#?}");
    }
}

/// Chromium's words for a Content-Security-Policy violation (a blocked
/// script, style or form submission, `form-action` on a redirect included).
pub fn is_csp_violation(message: &str) -> bool {
    message.contains("Content Security Policy") || message.contains("violates the following")
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    }
}

/// `<workspace>/target/screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Types the address and password into the sign-in form and submits it.
pub async fn sign_in(browser: &Browser, email: &str, password: &str) {
    browser.type_into("email", email).await;
    browser.type_into("password", password).await;
    // Each portal words its button as its help page does ("Login", "SIGN IN").
    let label = browser
        .wait_until(
            "the sign-in form's button",
            "const b = document.querySelector('form[action^=\"/login\"] button[type=submit]');
             return b ? b.textContent.trim() : null;",
            vec![],
        )
        .await;
    browser
        .click_button(label.as_str().expect("the button's words"))
        .await;
}

/// Saves the page as `target/screenshots/<name>.png` (both backends write
/// the same file: written aside, then renamed).
pub async fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.full_page_screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = screenshot_dir();
    let partial = dir.join(format!(".{name}.{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&partial, &png).expect("write the screenshot");
    std::fs::rename(&partial, dir.join(format!("{name}.png")))
        .expect("move the screenshot in place");
}

/// Opens the sign-in page of `theme` and waits until it is fully there: its
/// theme, styles and images loaded, its scripts run (password.js adds the Show
/// button), and on the hosting theme the captcha solved by captcha.js.
pub async fn open_themed_sign_in(browser: &Browser, app: &TestApp, theme: &str, path: &str) {
    browser.open(&app.url(path)).await;
    wait_for_themed_sign_in(browser, theme).await;
}

/// Waits until the sign-in page shown (however the browser got there, a
/// relying party's redirect say) is fully there in `theme`, as
/// [`open_themed_sign_in`] describes.
pub async fn wait_for_themed_sign_in(browser: &Browser, theme: &str) {
    browser.wait_for_path("/login").await;
    browser
        .wait_until(
            &format!("the {theme} theme, loaded"),
            "return document.readyState === 'complete'
               && document.body.classList.contains('theme-' + arguments[0])
               && [...document.images].every(i => i.complete && i.naturalWidth > 0)
               && document.styleSheets.length >= 3
               && !!document.querySelector('button.pw-toggle');",
            vec![json!(theme)],
        )
        .await;
    if theme != "hosting" {
        return;
    }
    // The status says done, the answer is in the form, the button is enabled.
    let state = browser
        .wait_until(
            "the captcha to be solved",
            "const box = document.querySelector('[data-captcha]');
             const nonce = document.querySelector('input[name=captcha_nonce]');
             const button = document.querySelector('form[action^=\"/login\"] button[type=submit]');
             if (!box || box.getAttribute('data-state') !== 'done') return null;
             return { status: box.innerText, nonce: nonce.value, enabled: !button.disabled,
                      shown: box.getClientRects().length > 0 };",
            vec![],
        )
        .await;
    assert_eq!(state["enabled"], json!(true), "{state}");
    assert_eq!(state["shown"], json!(true), "{state}");
    assert!(
        state["status"]
            .as_str()
            .unwrap_or_default()
            .contains("done"),
        "{state}"
    );
    assert!(
        state["nonce"]
            .as_str()
            .is_some_and(|n| n.parse::<u64>().is_ok()),
        "{state}"
    );
}
