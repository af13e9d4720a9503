//! The themed pages in a real browser: headless Chromium driven through
//! chromedriver (WebDriver), so the pages' JavaScript runs under the server's
//! Content-Security-Policy exactly as it does for a person. Each test starts
//! its own chromedriver and Chromium with a fresh profile, and checks what a
//! person sees: text on the page, the address bar, what is enabled.
//!
//! `scripts/test` installs Debian's `chromium` and `chromium-driver` and
//! exports `CHROME_BIN` and `CHROMEDRIVER`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tests::TestApp;
use tests::browser::{MailApp, NewClient, link_in, register_client};

use crate::Backend;

on_both_backends!(
    browser_signs_in_resets_and_changes_the_password,
    screenshots_of_each_theme_sign_in_page,
    password_generator_fills_both_fields,
    browser_turns_on_two_step_sign_in_and_signs_in_with_a_code,
    administrator_runs_the_console_in_a_browser,
    browser_keeps_the_profile_and_signs_out_a_forgotten_device,
);

const PW: &str = "Correct-Horse-Battery-9";
const NEW_PW: &str = "Brand-New-Staple-42!";
const NEWEST_PW: &str = "Third-Time-Lucky-77#";

/// How long any one thing may take to appear in the browser.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Chromium under chromedriver
// ---------------------------------------------------------------------------

/// A running chromedriver and the Chromium it started. Dropping it (at the end
/// of a test, or while a failed test unwinds) ends both: chromedriver leaves
/// Chromium running when it is killed, so Chromium's processes are found as
/// chromedriver's descendants and ended by their ids.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start(log: &Path) -> Self {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let port = tests::free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("start {binary} (run the tests with `bash scripts/test`): {e}")
            });
        let mut driver = Self { child, port };
        let deadline = Instant::now() + WAIT;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return driver;
            }
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before listening on {port}: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
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

/// Every live descendant of `pid`, from /proc (children of all its threads).
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut todo = vec![pid];
    while let Some(parent) = todo.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !found.contains(&child) {
                    found.push(child);
                    todo.push(child);
                }
            }
        }
    }
    found
}

fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    // A zombie has no threads left to run; it only waits for its parent.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Chromium first, politely (it then ends its helpers and crash
        // handler), then chromedriver; whatever is left after 3 s is killed.
        let browser = descendants(self.child.id());
        signal("TERM", &browser);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = Instant::now() + Duration::from_secs(3);
        while browser.iter().any(|&p| alive(p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left: Vec<u32> = browser.into_iter().filter(|&p| alive(p)).collect();
        signal("KILL", &left);
    }
}

/// A headless Chromium session on a fresh profile.
struct Browser {
    client: Client,
    driver: Driver,
    /// Fields drop in order: the browser is gone before its profile is removed.
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        let driver = Driver::start(&profile.path().join("chromedriver.log")).await;
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
                    std::fs::read_to_string(profile.path().join("chromedriver.log"))
                        .unwrap_or_default()
                )
            });
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(WAIT),
                Some(Duration::from_secs(15)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("set timeouts");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session cleanly; `Driver`'s drop then stops the processes.
    async fn quit(self) {
        let _ = self.client.clone().close().await;
    }

    async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The page's visible text, as rendered.
    async fn text(&self) -> String {
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

    async fn current_url(&self) -> url::Url {
        self.client.current_url().await.expect("current URL")
    }

    /// Runs `script` until it returns something truthy, for at most `WAIT`.
    async fn wait_until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        self.wait_until_for(WAIT, what, script, args).await
    }

    async fn wait_until_for(
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let url = self
            .client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default();
        panic!(
            "waited {limit:?} for {what} (last answer: {last}); the browser shows {url}:\n{}",
            self.text().await
        );
    }

    /// Waits until the page shows `needle`.
    async fn see(&self, needle: &str) {
        self.wait_until(
            &format!("the text {needle:?}"),
            "return !!document.body && document.body.innerText.includes(arguments[0]);",
            vec![json!(needle)],
        )
        .await;
    }

    /// Waits until the address bar's path is `path`, and the page has loaded.
    async fn wait_for_path(&self, path: &str) {
        self.wait_until(
            &format!("the path {path}"),
            "return location.pathname === arguments[0] && document.readyState === 'complete';",
            vec![json!(path)],
        )
        .await;
    }

    /// Types `value` into the (visible) input or text area named `name`,
    /// replacing what was there.
    async fn type_into(&self, name: &str, value: &str) {
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
    async fn follow_link(&self, text: &str) {
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
    async fn mark_page(&self) -> String {
        let mark = uuid::Uuid::new_v4().to_string();
        self.client
            .execute("window.__testPage = arguments[0];", vec![json!(mark)])
            .await
            .expect("mark the page");
        mark
    }

    /// Waits until the document marked `mark` has been replaced by one that
    /// has loaded.
    async fn wait_for_next_page(&self, mark: String, what: &str) {
        self.wait_until(
            what,
            "return window.__testPage !== arguments[0] && document.readyState === 'complete';",
            vec![json!(mark)],
        )
        .await;
    }

    /// Clicks the first visible button whose text is `text` (a submit
    /// button) and waits for the page the form leads to.
    async fn click_button(&self, text: &str) {
        let button = self.visible_button(text).await;
        let page = self.mark_page().await;
        button.click().await.expect("click the button");
        self.wait_for_next_page(page, &format!("the page after the button {text:?}"))
            .await;
    }

    /// Clicks the first visible button whose text is `text`, and no more
    /// (a button that acts on the page without leaving it).
    async fn press_button(&self, text: &str) {
        let button = self.visible_button(text).await;
        button.click().await.expect("click the button");
    }

    /// The first visible, enabled button whose text is `text`, once there is one.
    async fn visible_button(&self, text: &str) -> fantoccini::elements::Element {
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
    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let answer: Value = reqwest::Client::new()
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver.url()
            ))
            .json(&json!({ "cmd": cmd, "params": params }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("send {cmd} to chromedriver: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{cmd}'s answer as JSON: {e}"));
        answer["value"].clone()
    }

    /// A PNG of the whole page, also what lies below the window's bottom edge.
    async fn full_page_screenshot(&self) -> Vec<u8> {
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

    /// Console messages since the last call (chromedriver's browser log):
    /// (level, source, message).
    async fn console(&self) -> Vec<(String, String, String)> {
        let session = self
            .client
            .session_id()
            .await
            .expect("session id")
            .expect("a session");
        let answer: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver.url()))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("ask chromedriver for the browser log")
            .json()
            .await
            .expect("the log as JSON");
        answer["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {answer}"))
            .iter()
            .map(|e| {
                let field = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
                (field("level"), field("source"), field("message"))
            })
            .collect()
    }

    /// Fails on any console error or Content-Security-Policy report so far.
    /// A form answered with its errors (422) is expected, not a fault.
    async fn assert_clean_console(&self, page: &str) {
        let bad: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|(level, source, message)| {
                let expected = source == "network" && message.contains("status of 422");
                !expected
                    && (level == "SEVERE"
                        || source == "security"
                        || message.contains("Content Security Policy")
                        || message.contains("Refused to"))
            })
            .collect();
        assert!(bad.is_empty(), "console errors on {page}: {bad:#?}");
    }
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
fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&dir).expect("create target/screenshots");
    dir
}

/// Types the address and password into the sign-in form and submits it.
async fn sign_in(browser: &Browser, email: &str, password: &str) {
    browser.type_into("email", email).await;
    browser.type_into("password", password).await;
    browser.click_button("Sign in").await;
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

async fn browser_signs_in_resets_and_changes_the_password(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let email = "jane@example.com";
    app.create_user(email, PW, "Jane Doe").await;
    let browser = Browser::start().await;

    // A wrong password: the form says so and stays.
    browser.open(&app.url("/login")).await;
    browser.see("Sign in").await;
    sign_in(&browser, email, "not-my-password-1").await;
    browser.see("Incorrect email or password.").await;
    assert_eq!(browser.current_url().await.path(), "/login");

    // Forgot password: the visible link, the address, the same answer for everyone.
    browser.follow_link("Forgot password?").await;
    browser.wait_for_path("/forgot-password").await;
    browser.see("Reset your password").await;
    browser.type_into("email", email).await;
    browser.click_button("Send reset link").await;
    browser.see("If that email matches an account").await;

    // The link from the mail, opened in the browser.
    let mail = app.wait_for_mail_to(email, 1).await;
    let link = link_in(&mail, "/reset-password");
    browser.open(&app.url(&link)).await;
    browser.see("Choose a new password").await;
    browser.type_into("password", NEW_PW).await;
    browser.type_into("password_confirm", NEW_PW).await;
    browser.click_button("Update password").await;
    browser.see("Your password has been changed").await;

    // Sign in with it: the account page, with her name.
    browser.follow_link("Sign in").await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, email, NEW_PW).await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    browser.see("Your account").await;

    // Change it again from the account page.
    browser.follow_link("Change password").await;
    browser.wait_for_path("/account/password").await;
    browser.type_into("current_password", NEW_PW).await;
    browser.type_into("password", NEWEST_PW).await;
    browser.type_into("password_confirm", NEWEST_PW).await;
    browser.click_button("Save changes").await;
    let confirmation = browser
        .wait_until(
            "a confirmation with role=status",
            "const s = [...document.querySelectorAll('[role=status]')]
               .find(e => e.innerText.includes('Your password was changed'));
             if (!s) return null;
             // Computed colours come as rgb(), color(srgb ...) (from color-mix)
             // and so on: a canvas turns any of them into 0-255 RGB.
             const ctx = document.createElement('canvas').getContext('2d');
             const rgb = c => { ctx.clearRect(0, 0, 1, 1); ctx.fillStyle = c; ctx.fillRect(0, 0, 1, 1);
                                return [...ctx.getImageData(0, 0, 1, 1).data.slice(0, 3)]; };
             const style = getComputedStyle(s);
             return { text: s.innerText, shown: s.getClientRects().length > 0,
                      border: rgb(style.borderLeftColor), background: rgb(style.backgroundColor),
                      css: [style.borderLeftColor, style.backgroundColor] };",
            vec![],
        )
        .await;
    assert_eq!(confirmation["shown"], json!(true), "{confirmation}");
    for part in ["border", "background"] {
        let [r, g, b] = [0, 1, 2].map(|i| confirmation[part][i].as_u64().unwrap_or(0));
        assert!(
            g > r && g > b,
            "the confirmation's {part} is green: {confirmation}"
        );
    }

    // Sign out: back on the sign-in page, nobody named any more.
    browser.click_button("Sign out").await;
    browser.wait_for_path("/login").await;
    browser.see("Sign in").await;
    assert!(
        !browser.text().await.contains("Jane Doe"),
        "{}",
        browser.text().await
    );

    // The newest password works.
    sign_in(&browser, email, NEWEST_PW).await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    browser.assert_clean_console("the account flows").await;
    browser.quit().await;
}

/// Opens the sign-in page of `theme` and waits until it is fully there: its
/// theme, styles and images loaded, its scripts run (password.js adds the Show
/// button), and on the hosting theme the captcha solved by captcha.js.
async fn open_themed_sign_in(browser: &Browser, app: &TestApp, theme: &str, path: &str) {
    browser.open(&app.url(path)).await;
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
             const button = [...document.querySelectorAll('button[type=submit]')]
               .find(b => b.textContent.trim() === 'Sign in');
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

async fn screenshots_of_each_theme_sign_in_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user("jane@example.com", PW, "Jane Doe").await;
    let themes = [
        ("default", "/login"),
        ("helix", "/login?client_id=helix-support"),
        ("hosting", "/login?client_id=hosting-portal"),
        ("customer", "/login?client_id=customer-portal"),
    ];
    for (theme, path) in themes {
        if let Some((_, client)) = path.split_once("client_id=") {
            register_client(&app, NewClient::portal(client, theme)).await;
        }
    }
    let dir = screenshot_dir();
    let browser = Browser::start().await;
    for (theme, path) in themes {
        open_themed_sign_in(&browser, &app, theme, path).await;
        browser.assert_clean_console(path).await;
        let png = browser.full_page_screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        // Both backends write the same files: write aside, then rename.
        let file = dir.join(format!("{theme}-login.png"));
        let partial = dir.join(format!(".{theme}-login.{}.png", uuid::Uuid::new_v4()));
        std::fs::write(&partial, &png).expect("write the screenshot");
        std::fs::rename(&partial, &file).expect("move the screenshot in place");
    }

    // The browser's own answer to the hosting portal's puzzle is accepted.
    open_themed_sign_in(&browser, &app, "hosting", themes[2].1).await;
    sign_in(&browser, "jane@example.com", PW).await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    let url = browser.current_url().await;
    assert_eq!(url.query(), Some("client_id=hosting-portal"), "{url}");
    browser
        .wait_until(
            "the hosting theme on the account page",
            "return document.body.classList.contains('theme-hosting');",
            vec![],
        )
        .await;
    browser
        .assert_clean_console("the hosting account page")
        .await;
    browser.quit().await;
}

async fn password_generator_fills_both_fields(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let browser = Browser::start().await;
    browser.open(&app.url("/register")).await;
    browser.see("Create an account").await;
    browser.type_into("name", "Ada Lovelace").await;
    browser.type_into("email", "ada@example.com").await;
    browser.press_button("Generate a strong password").await;

    let values = browser
        .wait_until(
            "both password boxes filled",
            "const a = document.querySelector('input[name=password]').value;
             const b = document.querySelector('input[name=password_confirm]').value;
             return a ? [a, b] : null;",
            vec![],
        )
        .await;
    let (password, confirm) = (
        values[0].as_str().unwrap_or_default(),
        values[1].as_str().unwrap_or_default(),
    );
    assert_eq!(password, confirm, "both boxes hold the same password");
    assert!(password.chars().count() >= 16, "{password:?}");
    // Top level on the meter, in words too.
    let meter = browser
        .wait_until(
            "the strength meter",
            "const m = document.querySelector('.pw-meter');
             return m ? { level: m.getAttribute('data-level'), text: m.innerText } : null;",
            vec![],
        )
        .await;
    assert_eq!(meter["level"], json!("4"), "{meter} for {password:?}");
    browser.see("Password strength: Strong").await;
    browser
        .see("A strong 16-character password is now in both boxes")
        .await;

    browser.click_button("Create account").await;
    browser.see("Check your email").await;
    browser.see("ada@example.com").await;
    assert_eq!(browser.current_url().await.path(), "/register");
    app.wait_for_mail_to("ada@example.com", 1).await;
    browser.assert_clean_console("/register").await;
    browser.quit().await;
}

async fn browser_turns_on_two_step_sign_in_and_signs_in_with_a_code(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "jane@example.com";
    app.create_user(email, PW, "Jane Doe").await;
    let browser = Browser::start().await;

    browser.open(&app.url("/login")).await;
    sign_in(&browser, email, PW).await;
    browser.wait_for_path("/account").await;

    // The two-step sign-in page: off, with a way to turn it on.
    browser.open(&app.url("/account/mfa")).await;
    browser.follow_link("Turn on two-step sign-in").await;
    browser.wait_for_path("/account/mfa/setup").await;
    // A QR code big enough to scan, and the key to type by hand.
    browser
        .wait_until(
            "a QR code on the page",
            "return [...document.querySelectorAll('svg')]
               .some(s => s.getBoundingClientRect().width >= 100);",
            vec![],
        )
        .await;
    let shown = browser
        .wait_until(
            "the setup key (#manual-key)",
            "const k = document.getElementById('manual-key');
             return k && k.getClientRects().length > 0 ? k.innerText : null;",
            vec![],
        )
        .await;
    let key = shown.as_str().unwrap_or_default().trim().to_owned();
    assert!(
        key.split_whitespace().count() > 1 && key.split_whitespace().all(|group| group.len() <= 4),
        "groups of four: {key:?}"
    );
    // Typed into the "app" as shown, spaces and all.
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Turn on").await;
    let codes = browser
        .wait_until(
            "ten recovery codes",
            "const codes = document.body.innerText.split(/\\s+/)
               .filter(w => /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/.test(w));
             return codes.length >= 10 ? codes : null;",
            vec![],
        )
        .await;
    assert_eq!(codes.as_array().map(Vec::len), Some(10), "{codes}");
    browser.follow_link("Continue").await;
    browser.open(&app.url("/account/mfa")).await;
    browser
        .wait_until(
            "the form to turn it off",
            "return !!document.querySelector('form[action=\"/account/mfa/disable\"]');",
            vec![],
        )
        .await;

    // Sign out, and in again: the password, then a code of the next 30 seconds.
    browser.open(&app.url("/account")).await;
    browser.click_button("Sign out").await;
    browser.wait_for_path("/login").await;
    app.clock.advance(time::Duration::seconds(30));
    sign_in(&browser, email, PW).await;
    browser.wait_for_path("/login/otp").await;
    browser.see(email).await;
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Verify").await;
    browser.wait_for_path("/account").await;
    browser.see("Jane Doe").await;
    browser.assert_clean_console("two-step sign-in").await;
    browser.quit().await;
}

/// Saves the page as `target/screenshots/<name>.png` (both backends write
/// the same file: written aside, then renamed).
async fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.full_page_screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = screenshot_dir();
    let partial = dir.join(format!(".{name}.{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&partial, &png).expect("write the screenshot");
    std::fs::rename(&partial, dir.join(format!("{name}.png")))
        .expect("move the screenshot in place");
}

async fn administrator_runs_the_console_in_a_browser(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.create_user("root@example.com", PW, "Root Admin").await;
    app.state
        .store
        .set_user_admin(&root.id, true, app.clock_now())
        .await
        .unwrap();
    app.create_user("carol@example.com", PW, "Carol Locked")
        .await;
    let carol = app.other_browser();
    for _ in 0..5 {
        carol
            .sign_in("carol@example.com", "Wrong-Horse-Battery-1")
            .await;
    }
    let browser = Browser::start().await;

    // The console sends the administrator to sign in: password, then (the
    // first time) an authenticator is set up before the console opens.
    browser.open(&app.admin_url("/admin/")).await;
    browser.wait_for_path("/login").await;
    sign_in(&browser, "root@example.com", PW).await;
    browser.wait_for_path("/login/mfa-setup").await;
    let key = browser
        .wait_until(
            "the setup key (#manual-key)",
            "const k = document.getElementById('manual-key');
             return k && k.getClientRects().length > 0 ? k.innerText : null;",
            vec![],
        )
        .await;
    let key = key.as_str().unwrap_or_default().to_owned();
    browser
        .type_into("code", &tests::totp::code_at(&key, app.clock_now()))
        .await;
    browser.click_button("Turn on").await;
    browser.see("recovery codes").await;
    browser.follow_link("Continue").await;
    browser.wait_for_path("/admin/").await;
    browser.see("Dashboard").await;
    browser.see("Root Admin").await;
    browser.see("locked now").await;
    save_screenshot(&browser, "console-dashboard").await;

    // A new client, its secret shown once.
    browser.follow_link("Clients").await;
    browser.follow_link("New client").await;
    browser.wait_for_path("/admin/clients/new").await;
    browser.type_into("client_id", "billing").await;
    browser.type_into("name", "Billing").await;
    browser
        .type_into("redirect_uris", "https://billing.example.com/callback")
        .await;
    browser.click_button("Create client").await;
    browser.see("Copy the secret now").await;
    let secret = browser
        .wait_until(
            "the secret",
            "const s = document.getElementById('client-secret'); return s ? s.value : null;",
            vec![],
        )
        .await;
    assert_eq!(secret.as_str().map(str::len), Some(43), "{secret}");

    // The locked user: found, unlocked, their sessions ended after a confirmation.
    browser.follow_link("Users").await;
    browser.type_into("q", "carol").await;
    browser.click_button("Search").await;
    browser.follow_link("carol@example.com").await;
    browser.see("locked until").await;
    browser.click_button("Unlock").await;
    browser.see("The account is unlocked").await;
    save_screenshot(&browser, "console-user").await;
    browser.click_button("Sign out everywhere").await;
    browser.see("Every browser session ends").await;
    browser.click_button("Sign out everywhere").await;
    browser.see("Every session ended").await;
    assert!(
        carol
            .sign_in("carol@example.com", PW)
            .await
            .status
            .is_redirection(),
        "Carol signs in again"
    );

    // Both actions in the audit log, with the administrator.
    browser.follow_link("Audit log").await;
    browser.see("admin.client_created").await;
    browser.see("admin.user_unlocked").await;
    browser.type_into("type", "admin.user_unlocked").await;
    browser.click_button("Filter").await;
    browser.see("admin.user_unlocked").await;
    let text = browser.text().await;
    assert!(!text.contains("admin.client_created"), "filtered: {text}");
    browser.assert_clean_console("the admin console").await;

    // Signing out goes through the provider and back.
    browser.click_button("Sign out").await;
    browser.wait_for_path("/admin/signed-out").await;
    browser.see("You are signed out").await;
    browser.open(&app.admin_url("/admin/")).await;
    browser.wait_for_path("/login").await;
    browser.quit().await;
}

async fn browser_keeps_the_profile_and_signs_out_a_forgotten_device(backend: Backend) {
    let app = MailApp::spawn(backend).await;
    let jane = app.create_user("jane@example.com", PW, "Jane Doe").await;
    // An app Jane allowed once.
    let mut planner = NewClient::app("planner", "Trip Planner", "https://planner.example.com/cb");
    planner.first_party = false;
    register_client(&app, planner).await;
    let scopes = ["openid".to_owned(), "email".to_owned()];
    let (client, now) = (
        idp::domain::ClientId::parse("planner").unwrap(),
        app.clock_now(),
    );
    app.state
        .store
        .grant_consent(&jane.id, &client, &scopes, now)
        .await
        .unwrap();
    // Signed in at the library too, and forgot to sign out there.
    let library = app.browser_as(
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
    );
    library.signed_in("jane@example.com", PW).await;
    let browser = Browser::start().await;
    browser.open(&app.url("/login")).await;
    sign_in(&browser, "jane@example.com", PW).await;
    browser.wait_for_path("/account").await;

    // A new name.
    browser
        .follow_link("Change your name or email address")
        .await;
    browser.wait_for_path("/account/profile").await;
    browser.type_into("name", "Jane Q. Doe").await;
    browser.click_button("Save name").await;
    browser.see("Your name is saved.").await;

    // A new address, confirmed from the mail.
    browser.type_into("new_email", "jane.new@example.com").await;
    browser.type_into("password", PW).await;
    browser.click_button("Send a confirmation link").await;
    browser.see("We sent a link to jane.new@example.com").await;
    let mail = app.wait_for_mail_to("jane.new@example.com", 1).await;
    browser
        .open(&app.url(&link_in(&mail, "/account/email/confirm")))
        .await;
    browser.see("Confirm your new email address").await;
    browser.click_button("Confirm new address").await;
    browser
        .see("From now on you sign in with jane.new@example.com")
        .await;
    browser.follow_link("Go to your account").await;
    browser.see("Jane Q. Doe").await;
    browser.see("jane.new@example.com").await;

    // The app's access, removed with its button (inside its card).
    browser.follow_link("Connected apps").await;
    browser.see("Trip Planner").await;
    browser.click_button("Remove access for Trip Planner").await;
    browser.see("Access removed").await;
    assert!(app.state.store.consents(&jane.id).await.unwrap().is_empty());
    browser.follow_link("Back to your account").await;

    // The library computer, signed out from here.
    browser.follow_link("Signed-in devices").await;
    browser.wait_for_path("/account/sessions").await;
    browser.see("This device").await;
    save_screenshot(&browser, "account-devices").await;
    browser.click_button("Sign out Edge on Windows").await;
    browser.see("That device is signed out.").await;
    assert_eq!(
        library.page("/account").await.status,
        reqwest::StatusCode::SEE_OTHER,
        "the library is sent to sign in"
    );

    // All of it, in the account's recent activity.
    browser.follow_link("Back to your account").await;
    browser.follow_link("Recent activity").await;
    browser.wait_for_path("/account/activity").await;
    for what in [
        "A device was signed out",
        "An app's access was removed",
        "Email address changed",
        "Name changed",
        "Signed in",
    ] {
        browser.see(what).await;
    }
    browser
        .assert_clean_console("the profile, devices and activity pages")
        .await;
    browser.quit().await;
}
