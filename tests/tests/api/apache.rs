//! The README's portal, for real: Debian's `apache2` with
//! `libapache2-mod-auth-openidc` as the relying party, configured with the
//! Apache block of the README's "Connect your portal" as written (read from
//! README.md; only the example hosts and the secret replaced by this test's;
//! the modules Debian enables loaded around it), in front of the real server. A browser without JavaScript
//! (an HTTP client keeping cookies, following each redirect by hand across
//! both origins) opens the portal's `/account`, signs in on the provider's
//! page in the portal's theme, lands back on `/account` with `REMOTE_USER`
//! set to its email address, signs out through mod_auth_openidc's logout
//! (the provider's `/logout`, back to the post-logout address), and is asked
//! to sign in again.
//!
//! `scripts/test` installs both packages and passes `IDP_TEST_APACHE` (the
//! binary) and `IDP_TEST_APACHE_MODULES` (its modules folder); the test
//! starts its own `apache2` on a free loopback port, from its own files, and
//! stops it when it ends, passed or failed.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use tests::TestApp;
use tests::browser::{NewClient, Page, form_values, register_client};
use tests::signin::resolve;

use crate::Backend;

on_both_backends!(the_readme_apache_portal_signs_in_and_out_through_mod_auth_openidc);

const EMAIL: &str = "jane@example.com";
const PW: &str = "Correct-Horse-Battery-9";
/// As in the README's `idp client create`.
const CLIENT_ID: &str = "support-portal";
const THEME: &str = "helix";

/// The README's Apache block (the first ```apache fence of "Connect your
/// portal"), for a portal at `portal` and a provider at `issuer`.
fn readme_apache_block(issuer: &str, portal: &str, secret: &str) -> String {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split_once("## Connect your portal")
        .expect("the README has \"Connect your portal\"")
        .1;
    let block = section
        .split_once("```apache\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("an ```apache block in \"Connect your portal\"")
        .0;
    // Each example value must be there: a README that changes them should
    // change this test too, not leave it testing something else.
    let mut conf = block.to_owned();
    for (example, ours) in [
        ("https://id.example.com", issuer.to_owned()),
        ("https://support.example.com", portal.to_owned()),
        (
            "\"the secret client create printed\"",
            format!("\"{secret}\""),
        ),
    ] {
        assert!(
            conf.contains(example),
            "the README's Apache block has no {example}:\n{block}"
        );
        conf = conf.replace(example, &ours);
    }
    let client_id = block
        .lines()
        .find_map(|l| l.strip_prefix("OIDCClientID"))
        .map(str::trim);
    assert_eq!(client_id, Some(CLIENT_ID), "the README's client id");
    conf
}

/// The README's sign-out link (`href="/oidc/callback?logout=…"`, in a
/// comment of its Apache block) for a portal at `portal`, as an absolute URL.
fn readme_sign_out_link(portal: &str) -> String {
    let readme = include_str!("../../../README.md");
    let href = readme
        .split_once("href=\"/oidc/callback?logout=")
        .and_then(|(_, rest)| rest.split_once('"'))
        .expect("the README's sign-out link")
        .0;
    let target: String = url::form_urlencoded::parse(format!("t={href}").as_bytes())
        .map(|(_, v)| v.into_owned())
        .collect();
    let ours = target.replace("https://support.example.com", portal);
    assert_ne!(ours, target, "the README's link returns to {target}");
    let encoded: String = url::form_urlencoded::byte_serialize(ours.as_bytes()).collect();
    format!("{portal}/oidc/callback?logout={encoded}")
}

/// `apache2 -DFOREGROUND` from its own ServerRoot; stopped on drop (SIGTERM
/// to the parent, which stops its children), with its error log printed
/// when the test is failing.
struct Apache {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Apache {
    /// Starts `apache2` with the modules it needs, `portal_conf` (the
    /// README's block), a static `/account` page that shows `REMOTE_USER`
    /// in an `X-Remote-User` header, and a static `/`; waits until it answers.
    async fn start(port: u16, portal_conf: &str) -> Self {
        let binary = tests::env_url("IDP_TEST_APACHE");
        let modules = tests::env_url("IDP_TEST_APACHE_MODULES");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        // As root, the children run as www-data: they must read these files.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let htdocs = root.join("htdocs");
        std::fs::create_dir(&htdocs).unwrap();
        std::fs::write(htdocs.join("account"), "Your account\n").unwrap();
        std::fs::write(htdocs.join("index.html"), "<p>Helix Support</p>\n").unwrap();
        let as_root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let user = if as_root {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let root_s = root.display();
        let conf = format!(
            r#"ServerRoot "{root_s}"
ServerName 127.0.0.1:{port}
Listen 127.0.0.1:{port}
PidFile "{root_s}/apache2.pid"
DefaultRuntimeDir "{root_s}"
ErrorLog "{root_s}/error.log"
LogLevel warn auth_openidc:debug
{user}
# What Debian's apache2.conf and mods-enabled give the README's block:
# AuthType (authn_core), Require valid-user (authz_core, authz_user) and
# auth_openidc (enabled by its package); headers and dir serve the pages.
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authn_core_module {modules}/mod_authn_core.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule authz_user_module {modules}/mod_authz_user.so
LoadModule headers_module {modules}/mod_headers.so
LoadModule dir_module {modules}/mod_dir.so
LoadModule auth_openidc_module {modules}/mod_auth_openidc.so
DocumentRoot "{root_s}/htdocs"
DirectoryIndex index.html

# --- the README's block ---
{portal_conf}
# --- end of the README's block ---

# The portal's page: who Apache says is signed in.
<Location /account>
    Header set X-Remote-User "expr=%{{REMOTE_USER}}"
</Location>
"#
        );
        let conf_path = root.join("apache2.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let stderr = std::fs::File::create(root.join("stderr.log")).unwrap();
        let child = Command::new(&binary)
            .arg("-DFOREGROUND")
            .arg("-f")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} does not start: {e}"));
        let mut apache = Self { child, dir, port };
        let probe = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = apache.child.try_wait() {
                panic!("apache2 exited ({status})");
            }
            if probe.get(apache.url("/")).send().await.is_ok() {
                return apache;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "apache2 does not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Its stderr, error log and configuration, for a failure message.
    fn logs(&self) -> String {
        ["stderr.log", "error.log", "apache2.conf"]
            .iter()
            .map(|name| {
                let text = std::fs::read_to_string(self.path(name)).unwrap_or_default();
                format!("--- {name} ---\n{text}")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        // SIGTERM lets the parent stop its children; SIGKILL only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Opens `url` and follows redirects (on either origin) until a page that
/// is not one; returns every address opened, in order, and that page.
async fn follow(browser: &TestApp, url: &str) -> (Vec<String>, Page) {
    let mut chain = vec![url.to_owned()];
    for _ in 0..16 {
        let page = browser.page_at(chain.last().unwrap()).await;
        let Some(to) = page
            .location
            .as_deref()
            .filter(|_| page.status.is_redirection())
        else {
            return (chain, page);
        };
        chain.push(resolve(&page.url, to));
    }
    panic!("a redirect loop: {chain:#?}");
}

fn path_of(url: &str) -> String {
    url::Url::parse(url).unwrap().path().to_owned()
}

fn query_of(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The stylesheets a page links.
fn stylesheets(page: &Page) -> Vec<String> {
    let sel = scraper::Selector::parse("link[rel=stylesheet]").unwrap();
    page.html()
        .select(&sel)
        .filter_map(|l| l.value().attr("href").map(str::to_owned))
        .collect()
}

/// Asserts `page` is the provider's sign-in page in the portal's theme.
fn assert_themed_sign_in(app: &TestApp, chain: &[String], page: &Page) {
    assert_eq!(page.status, StatusCode::OK, "{chain:#?}\n{}", page.text());
    assert!(
        page.url.starts_with(&app.url("/login")),
        "the sign-in page: {chain:#?}"
    );
    let css = stylesheets(page);
    assert!(
        !css.is_empty()
            && css
                .iter()
                .all(|h| h.starts_with(&format!("/static/{THEME}/"))),
        "the portal's theme ({THEME}): {css:?}"
    );
}

async fn the_readme_apache_portal_signs_in_and_out_through_mod_auth_openidc(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(EMAIL, PW, "Jane Doe").await;
    let port = tests::free_port();
    let portal = format!("http://127.0.0.1:{port}");
    let callback = format!("{portal}/oidc/callback");
    let signed_out = format!("{portal}/");
    // What the README's `idp client create` registers, at this portal's address.
    let secret = register_client(
        &app,
        NewClient {
            name: "Helix Support",
            redirect_uri: &callback,
            post_logout_redirect_uri: Some(&signed_out),
            ..NewClient::portal(CLIENT_ID, THEME)
        },
    )
    .await
    .expect("a confidential client has a secret");
    let conf = readme_apache_block(&app.base_url, &portal, &secret);
    let apache = Apache::start(port, &conf).await;
    let browser = app.other_browser();

    // 1. The portal's /account sends the browser to the provider, as the
    //    README configures it: code flow, query response mode, PKCE S256.
    let (chain, sign_in) = follow(&browser, &apache.url("/account")).await;
    let authorize = chain
        .iter()
        .find(|u| u.starts_with(&app.url("/authorize")))
        .unwrap_or_else(|| panic!("no /authorize on the way: {chain:#?}"));
    assert_eq!(query_of(authorize, "client_id").as_deref(), Some(CLIENT_ID));
    assert_eq!(
        query_of(authorize, "redirect_uri").as_deref(),
        Some(callback.as_str())
    );
    assert_eq!(
        query_of(authorize, "response_type").as_deref(),
        Some("code")
    );
    assert_eq!(
        query_of(authorize, "response_mode").as_deref(),
        Some("query")
    );
    assert_eq!(
        query_of(authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let scope = query_of(authorize, "scope").unwrap_or_default();
    for s in ["openid", "email", "profile"] {
        assert!(scope.split(' ').any(|x| x == s), "scope {scope:?}");
    }
    assert_themed_sign_in(&app, &chain, &sign_in);

    // 2. Sign in on that page: its form, hidden fields included.
    let values = form_values(&sign_in, "/login", &[("email", EMAIL), ("password", PW)]);
    let answer = Page::from(
        browser
            .http
            .post(resolve(&sign_in.url, "/login"))
            .form(&values)
            .send()
            .await
            .expect("POST sent"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    let next = resolve(&answer.url, answer.location.as_deref().unwrap());

    // 3. Back through Apache's callback to /account, as Jane.
    let (chain, account) = follow(&browser, &next).await;
    let back = chain
        .iter()
        .find(|u| u.starts_with(&callback))
        .unwrap_or_else(|| panic!("never at the callback: {chain:#?}"));
    assert!(query_of(back, "code").is_some(), "{back}");
    assert_eq!(
        account.status,
        StatusCode::OK,
        "{chain:#?}\n{}",
        account.body
    );
    assert_eq!(
        chain.last().map(|u| path_of(u)).as_deref(),
        Some("/account"),
        "{chain:#?}"
    );
    assert!(chain.last().unwrap().starts_with(&portal), "{chain:#?}");
    assert_eq!(account.body, "Your account\n");
    assert_eq!(
        account
            .headers
            .get("x-remote-user")
            .and_then(|v| v.to_str().ok()),
        Some(EMAIL),
        "REMOTE_USER is the email claim (OIDCRemoteUserClaim email)"
    );
    // The portal's session holds: /account again answers at once.
    let again = browser.page_at(&apache.url("/account")).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["x-remote-user"], EMAIL);

    // 4. Sign out as the README's link does: mod_auth_openidc ends its
    //    session and sends the browser to the provider's /logout with
    //    id_token_hint, which sends it back to the post-logout address.
    let logout = readme_sign_out_link(&portal);
    assert_eq!(
        logout,
        format!(
            "{callback}?logout={}",
            url::form_urlencoded::byte_serialize(signed_out.as_bytes()).collect::<String>()
        )
    );
    let (chain, home) = follow(&browser, &logout).await;
    let end_session = chain
        .iter()
        .find(|u| u.starts_with(&app.url("/logout")))
        .unwrap_or_else(|| panic!("no provider /logout on the way: {chain:#?}"));
    assert!(
        query_of(end_session, "id_token_hint").is_some(),
        "{end_session}"
    );
    assert_eq!(
        query_of(end_session, "post_logout_redirect_uri").as_deref(),
        Some(signed_out.as_str())
    );
    assert_eq!(
        chain.last().map(String::as_str),
        Some(signed_out.as_str()),
        "{chain:#?}"
    );
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("Helix Support"), "{}", home.body);

    // 5. Signed out on both sides: /account asks for the password again.
    let (chain, sign_in) = follow(&browser, &apache.url("/account")).await;
    assert!(
        chain.iter().any(|u| u.starts_with(&app.url("/authorize"))),
        "{chain:#?}"
    );
    assert_themed_sign_in(&app, &chain, &sign_in);
    let password = scraper::Selector::parse("input[name=password]").unwrap();
    assert!(
        sign_in.html().select(&password).next().is_some(),
        "{}",
        sign_in.text()
    );

    drop(apache);
}
