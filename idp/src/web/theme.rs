//! Themes: one folder each under `themes.dir`, with `theme.toml`, tera
//! templates, static files and mail templates. A theme names a parent; a
//! template or static file it lacks comes from the parent, finally from
//! `default`. Everything is loaded once at start-up; a broken theme stops the
//! server from starting rather than failing one page later. Every theme's
//! templates are compiled at start-up to check them, but only `default`'s
//! are kept compiled: another theme's are compiled again from the same
//! texts when a page first uses it (a theme's compiled templates hold its
//! ancestors' too, about 1 MB each; most nodes serve few of the themes).

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const DEFAULT: &str = "default";

/// The words on buttons and links that a portal's help page tells its
/// customers to look for (`[labels]` in `theme.toml`). `default` sets every
/// one; a theme sets those its help page names and inherits the rest.
pub const LABELS: &[&str] = &[
    "sign_in_button",
    "forgot_password_link",
    "register_link",
    "register_button",
    "forgot_button",
    "reset_button",
    "change_password_title",
    "change_password_button",
    "blocked_domains_link",
];

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("theme {theme}: {reason}")]
    Load { theme: String, reason: String },
    #[error("rendering {template}: {reason}")]
    Render { template: String, reason: String },
}

fn load_error(theme: &str, reason: impl std::fmt::Display) -> ThemeError {
    ThemeError::Load {
        theme: theme.to_owned(),
        reason: reason.to_string(),
    }
}

/// `theme.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeMeta {
    pub display_name: String,
    #[serde(default)]
    pub parent: Option<String>,
    pub logo: String,
    #[serde(default)]
    pub support_text: String,
    #[serde(default)]
    pub captcha_login: bool,
    #[serde(default)]
    pub captcha_forgot: bool,
    /// This portal's promise for reset links, overriding the deployment's.
    #[serde(default)]
    pub reset_link_ttl_minutes: Option<u64>,
    /// This portal's password policy: replaces the deployment's
    /// `[password_policy]` (every key of it, the strength minimum included)
    /// on the pages of this portal's flows. Keys left out take the built-in
    /// defaults, not the deployment's values.
    #[serde(default)]
    pub password_policy: Option<crate::config::PasswordPolicyConfig>,
    /// Button and link words, by [`LABELS`] key; see [`Theme::labels`].
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// This portal's own sender (`Name <address>`); `mail.from` without it.
    /// Its domain should have a `[[mail.dkim]]` key.
    #[serde(default)]
    pub mail_from: Option<String>,
    pub colors: Colors,
}

impl ThemeMeta {
    /// Everything but the colours (checked by [`Colors::validate`]);
    /// the message names the key.
    fn validate(&self) -> Result<(), String> {
        if self.reset_link_ttl_minutes == Some(0) {
            return Err("reset_link_ttl_minutes: must be at least 1".to_owned());
        }
        if let Some(policy) = &self.password_policy {
            policy.validate()?;
        }
        for (key, text) in &self.labels {
            if !LABELS.contains(&key.as_str()) {
                return Err(format!(
                    "labels.{key}: unknown label (known: {})",
                    LABELS.join(", ")
                ));
            }
            if text.trim().is_empty() {
                return Err(format!("labels.{key}: must not be empty"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Colors {
    pub primary: String,
    pub primary_text: String,
    pub background: String,
    pub surface: String,
    pub text: String,
    pub muted: String,
    pub success: String,
    pub error: String,
}

impl Colors {
    fn css(&self) -> String {
        format!(
            ":root {{\n  --color-primary: {};\n  --color-primary-text: {};\n  --color-background: {};\n  --color-surface: {};\n  --color-text: {};\n  --color-muted: {};\n  --color-success: {};\n  --color-error: {};\n}}\n",
            self.primary,
            self.primary_text,
            self.background,
            self.surface,
            self.text,
            self.muted,
            self.success,
            self.error
        )
    }

    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("primary", &self.primary),
            ("primary_text", &self.primary_text),
            ("background", &self.background),
            ("surface", &self.surface),
            ("text", &self.text),
            ("muted", &self.muted),
            ("success", &self.success),
            ("error", &self.error),
        ] {
            let hex = value.strip_prefix('#').unwrap_or("");
            if !matches!(hex.len(), 3 | 6) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "colors.{name} must be #rgb or #rrggbb, not {value:?}"
                ));
            }
        }
        Ok(())
    }
}

/// A loaded theme with its fallback chain resolved.
#[derive(Debug)]
pub struct Theme {
    pub name: String,
    pub meta: ThemeMeta,
    /// Every [`LABELS`] key with its words: the theme's own, else its
    /// nearest ancestor's, else `default`'s.
    pub labels: BTreeMap<String, String>,
    /// Compiled from `templates` at start-up (a check, then dropped unless
    /// this is `default`) and, for another theme, again at first use.
    /// Compiled once, at the first use (a burst of first pages waits for
    /// one compilation instead of compiling on every worker).
    tera: OnceLock<Result<tera::Tera, String>>,
    /// The template names with their texts (shared between themes: a child
    /// holds its ancestors' texts, not copies of them).
    templates: Vec<(String, Arc<str>)>,
    /// Tera's fallback prefixes: the chain, `theme/`.
    prefixes: Vec<String>,
    /// Its own static folder first, then its ancestors'.
    static_dirs: Vec<PathBuf>,
    /// Changes whenever a static file or the colours change: part of asset URLs,
    /// so they can be cached for a year.
    pub version: String,
    vars_css: String,
}

impl Theme {
    pub fn render(&self, template: &str, context: &tera::Context) -> Result<String, ThemeError> {
        let render_error = |reason| ThemeError::Render {
            template: template.to_owned(),
            reason,
        };
        self.tera()
            .map_err(render_error)?
            .render(template, context)
            .map_err(|e| render_error(error_chain(&e)))
    }

    pub fn has_template(&self, template: &str) -> bool {
        self.tera().is_ok_and(|t| t.contains_template(template))
    }

    /// The compiled templates, compiled now if this is their first use.
    fn tera(&self) -> Result<&tera::Tera, String> {
        // The same texts compiled without error at start-up, so this fails
        // only if tera does.
        self.tera
            .get_or_init(|| compile(&self.prefixes, &self.templates))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether the templates are compiled now (tests).
    #[cfg(test)]
    fn compiled(&self) -> bool {
        self.tera.get().is_some()
    }

    /// URL prefix of this theme's static files.
    pub fn static_prefix(&self) -> String {
        format!("/static/{}/{}", self.name, self.version)
    }

    /// A static file by its path under `static/`, searching the chain; `vars.css`
    /// is generated from `theme.toml`. Paths with `..` or absolute parts are refused.
    pub fn static_file(&self, path: &str) -> Option<StaticFile> {
        if path == "vars.css" {
            return Some(StaticFile {
                bytes: self.vars_css.clone().into_bytes(),
                content_type: "text/css; charset=utf-8",
            });
        }
        let relative = Path::new(path);
        if path.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return None;
        }
        let content_type = content_type(path)?;
        self.static_dirs
            .iter()
            .map(|dir| dir.join(relative))
            .find(|p| p.is_file())
            .and_then(|p| std::fs::read(p).ok())
            .map(|bytes| StaticFile {
                bytes,
                content_type,
            })
    }
}

pub struct StaticFile {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

fn content_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Every theme, by name.
#[derive(Debug, Clone)]
pub struct Themes {
    by_name: Arc<HashMap<String, Arc<Theme>>>,
    default: Arc<Theme>,
}

impl Themes {
    pub fn load(dir: &Path) -> Result<Self, ThemeError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| load_error(DEFAULT, format!("cannot read {}: {e}", dir.display())))?;
        let mut metas: HashMap<String, ThemeMeta> = HashMap::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let toml_path = path.join("theme.toml");
            if !toml_path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&toml_path).map_err(|e| load_error(&name, e))?;
            let meta: ThemeMeta = toml::from_str(&text).map_err(|e| load_error(&name, e))?;
            meta.colors.validate().map_err(|e| load_error(&name, e))?;
            if let Some(from) = &meta.mail_from
                && from.parse::<lettre::message::Mailbox>().is_err()
            {
                return Err(load_error(
                    &name,
                    format!(
                        "mail_from must be an address such as `Name <user@example.com>`, not {from:?}"
                    ),
                ));
            }
            meta.validate().map_err(|e| load_error(&name, e))?;
            metas.insert(name, meta);
        }
        if !metas.contains_key(DEFAULT) {
            return Err(load_error(
                DEFAULT,
                format!("no {}/default/theme.toml", dir.display()),
            ));
        }
        let mut by_name = HashMap::new();
        let mut texts = HashMap::new();
        for name in metas.keys() {
            let chain = chain(name, &metas)?;
            let theme = build(dir, name, &chain, &metas, &mut texts)?;
            by_name.insert(name.clone(), Arc::new(theme));
        }
        let default = by_name
            .get(DEFAULT)
            .cloned()
            .ok_or_else(|| load_error(DEFAULT, "missing"))?;
        Ok(Self {
            by_name: Arc::new(by_name),
            default,
        })
    }

    /// The named theme, or `default` when there is none of that name.
    pub fn get(&self, name: Option<&str>) -> Arc<Theme> {
        name.and_then(|n| self.by_name.get(n))
            .unwrap_or(&self.default)
            .clone()
    }

    pub fn exists(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The theme, its ancestors, and `default` last.
fn chain(name: &str, metas: &HashMap<String, ThemeMeta>) -> Result<Vec<String>, ThemeError> {
    let mut chain = vec![name.to_owned()];
    let mut current = name;
    while let Some(parent) = metas.get(current).and_then(|m| m.parent.as_deref()) {
        if !metas.contains_key(parent) {
            return Err(load_error(
                name,
                format!("parent theme {parent:?} does not exist"),
            ));
        }
        if chain.iter().any(|c| c == parent) {
            return Err(load_error(name, "parent themes form a cycle"));
        }
        chain.push(parent.to_owned());
        current = parent;
    }
    if chain.last().map(String::as_str) != Some(DEFAULT) {
        chain.push(DEFAULT.to_owned());
    }
    Ok(chain)
}

/// A theme's templates compiled: `prefixes` its chain, `templates` every
/// template of it by its prefixed name. Added in one batch: a template may
/// extend one from a later theme in the chain.
fn compile(prefixes: &[String], templates: &[(String, Arc<str>)]) -> Result<tera::Tera, String> {
    let mut tera = tera::Tera::new();
    tera.set_fallback_prefixes(prefixes.to_vec())
        .map_err(|e| error_chain(&e))?;
    tera.autoescape_on([".html"]);
    tera.add_raw_templates(templates.iter().map(|(n, t)| (n.as_str(), &**t)))
        .map_err(|e| error_chain(&e))?;
    Ok(tera)
}

/// `texts`: the template files read so far, by path (a theme shares its
/// ancestors' with them).
fn build(
    dir: &Path,
    name: &str,
    chain: &[String],
    metas: &HashMap<String, ThemeMeta>,
    texts: &mut HashMap<PathBuf, Arc<str>>,
) -> Result<Theme, ThemeError> {
    let meta = metas
        .get(name)
        .cloned()
        .ok_or_else(|| load_error(name, "missing theme.toml"))?;
    let prefixes: Vec<String> = chain.iter().map(|t| format!("{t}/")).collect();
    let mut hasher = Sha256::new();
    hasher.update(meta.colors.css().as_bytes());
    let mut static_dirs = Vec::new();
    let mut templates = Vec::new();
    for theme in chain {
        let root = dir.join(theme);
        for (sub, prefix) in [
            ("templates", format!("{theme}/")),
            ("mail", format!("{theme}/mail/")),
        ] {
            for file in files_under(&root.join(sub)) {
                let rel = file
                    .strip_prefix(root.join(sub))
                    .map_err(|e| load_error(name, e))?
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = match texts.get(&file) {
                    Some(text) => text.clone(),
                    None => {
                        let text: Arc<str> = std::fs::read_to_string(&file)
                            .map_err(|e| load_error(name, format!("{}: {e}", file.display())))?
                            .into();
                        texts.insert(file, text.clone());
                        text
                    }
                };
                templates.push((format!("{prefix}{rel}"), text));
            }
        }
        let static_dir = root.join("static");
        for file in files_under(&static_dir) {
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(std::fs::read(&file).unwrap_or_default());
        }
        static_dirs.push(static_dir);
    }
    // Compiled now, so that a broken template stops the start; kept only
    // for `default`, which every node serves (error pages, mail).
    let compiled = compile(&prefixes, &templates).map_err(|e| load_error(name, e))?;
    let tera = OnceLock::new();
    if name == DEFAULT {
        let _ = tera.set(Ok(compiled));
    } else {
        drop(compiled);
    }
    let version = hex::encode(&hasher.finalize()[..5]);
    let vars_css = meta.colors.css();
    let mut labels = BTreeMap::new();
    for key in LABELS {
        let text = chain
            .iter()
            .find_map(|theme| metas.get(theme).and_then(|m| m.labels.get(*key)))
            .ok_or_else(|| {
                load_error(
                    name,
                    format!("labels.{key}: missing (set it in the default theme's theme.toml)"),
                )
            })?;
        labels.insert((*key).to_owned(), text.clone());
    }
    Ok(Theme {
        name: name.to_owned(),
        meta,
        labels,
        tera,
        templates,
        prefixes,
        static_dirs,
        version,
        vars_css,
    })
}

/// Files below `dir`, recursively, sorted; none if it does not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shipped() -> Themes {
        Themes::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes")).unwrap()
    }

    /// Variables every page gets, plus the optional ones when `full`.
    fn base(theme: &Theme, full: bool) -> tera::Context {
        let mut c = tera::Context::new();
        c.insert("page_title", "Title");
        c.insert(
            "theme",
            &json!({ "name": theme.name, "display_name": theme.meta.display_name, "logo": theme.meta.logo,
                     "support_text": theme.meta.support_text, "captcha_login": true, "captcha_forgot": true,
                     "labels": theme.labels }),
        );
        c.insert("static", &theme.static_prefix());
        c.insert("csrf_token", "CSRF-TOKEN-VALUE");
        c.insert("client_id", if full { "portal" } else { "" });
        c.insert("flow_query", if full { "?client_id=portal" } else { "" });
        c.insert("errors", &json!(if full { json!({ "email": ["Bad <email>"], "password": ["Too short"], "password_confirm": ["No match"], "current_password": ["Wrong"], "name": ["Missing"], "captcha": ["Failed"], "token": ["Bad"] }) } else { json!({}) }));
        c.insert(
            "values",
            &json!({ "email": "jane@example.com", "name": "Jane <b>" }),
        );
        if full {
            c.insert("form_error", "Incorrect email or password.");
            c.insert("flash", &json!({ "kind": "success", "message": "Saved." }));
            c.insert(
                "user",
                &json!({ "name": "Jane <script>", "email": "jane@example.com" }),
            );
            c.insert(
                "captcha",
                &json!({ "challenge": "abcdefghijklmnopqrstuv", "difficulty": 16 }),
            );
        }
        c.insert("policy", &vec!["At least 8 characters"]);
        c.insert("blocked_domains", &vec!["blocked.example"]);
        c.insert("email", "jane@example.com");
        c.insert("ttl_minutes", &120);
        c.insert("ttl_hours", &48);
        c.insert("token", "TOKEN");
        c.insert("locked_until", "Monday 23 November 2026, 00:00 UTC");
        c.insert("title", "Not found");
        c.insert("message", "Nothing here.");
        c.insert("user_name", "Jane");
        c.insert("link", "http://127.0.0.1:8080/reset-password?token=abc");
        c.insert("reset_link", "http://127.0.0.1:8080/forgot-password");
        c.insert("when", "Sun, 22 Nov 2026 20:00:00 +0000");
        c.insert("until", "Monday 23 November 2026, 00:00 UTC");
        c.insert("account_link", "http://127.0.0.1:8080/account/mfa");
        c.insert("remaining", &2);
        c.insert("old_email", "jane.old@example.com");
        c.insert("new_email", "jane.new@example.com");
        c.insert("passkey_name", "Work <laptop>");
        c
    }

    /// Ten recovery codes as the server shows them.
    fn sample_codes() -> Vec<String> {
        (0..10)
            .map(|i| format!("abcd-efgh-ijkl-mn{i:02}"))
            .collect()
    }

    /// The contexts a page is rendered with: one, or one per state it can be in.
    fn page_contexts(theme: &Theme, page: &str, full: bool) -> Vec<tera::Context> {
        let mut c = base(theme, full);
        if full && MFA_PAGES.contains(&page) {
            c.insert("errors", &json!({ "code": ["Wrong <code>"] }));
            c.insert("form_error", "That code did not work.");
        }
        match page {
            "error.html" => c.insert("status", &404),
            "email_changed.html" => {
                let mut out = Vec::new();
                for (status, taken) in [
                    ("confirm", false),
                    ("changed", false),
                    ("invalid", false),
                    ("invalid", true),
                ] {
                    let mut v = c.clone();
                    v.insert("status", status);
                    v.insert("taken", &taken);
                    out.push(v);
                }
                return out;
            }
            "activity.html" => {
                let entry = json!({
                    "what": "Signed in", "when": "22 November 2026, 20:00 UTC",
                    "ip": "203.0.113.9", "browser": "Firefox on <Linux>",
                });
                c.insert("entries", &if full { vec![entry] } else { vec![] });
            }
            "sessions.html" => {
                let device = |current: bool| {
                    json!({
                        "handle": "0123456789abcdef", "current": current,
                        "browser": "Firefox on <Linux>", "ip": "203.0.113.9",
                        "signed_in": "22 November 2026, 20:00 UTC",
                        "last_seen": "22 November 2026, 21:00 UTC", "with_code": full,
                    })
                };
                let devices = if full {
                    vec![device(true), device(false)]
                } else {
                    vec![device(true)]
                };
                c.insert("devices", &devices);
                c.insert("others", &(devices.len() - 1));
            }
            "verify_email.html" => {
                let mut out = Vec::new();
                for status in ["confirm", "verified", "invalid"] {
                    let mut v = c.clone();
                    v.insert("status", status);
                    v.insert("email", "jane@example.com");
                    v.insert("token", "TOKEN");
                    out.push(v);
                }
                return out;
            }
            "reauth.html" => {
                let mut out = Vec::new();
                for (password, code) in [(true, false), (false, true), (true, true), (false, false)]
                {
                    let mut v = c.clone();
                    v.insert("has_password", &password);
                    v.insert("has_code", &code);
                    v.insert("return_to", "/account/mfa/setup");
                    if full {
                        v.insert("errors", &json!({ "password": ["Wrong <password>"] }));
                    }
                    out.push(v);
                }
                return out;
            }
            "login_recovery_used.html" => {
                c.insert("continue_url", "/authorize/continue?req=abc");
                let mut out = Vec::new();
                for remaining in [0, 1, 2, 9] {
                    let mut v = c.clone();
                    v.insert("remaining", &remaining);
                    out.push(v);
                }
                return out;
            }
            "mfa_enrol.html" => {
                c.insert("qr_svg", SAMPLE_SVG);
                c.insert("secret_groups", "JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP");
                c.insert(
                    "otpauth_uri",
                    "otpauth://totp/Account%20Center:jane%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Account%20Center",
                );
                c.insert(
                    "action",
                    if full {
                        "/login/mfa-setup"
                    } else {
                        "/account/mfa/setup"
                    },
                );
                c.insert("required", &full);
                c.insert("cancel_url", if full { "/login" } else { "/account/mfa" });
                if full {
                    c.insert("req", "REQ-ID");
                }
            }
            "continue.html" => {
                c.insert("continue_url", "http://[::1]:49152/cb?code=abc&state=<x>");
                if full {
                    c.insert("message", "You are signed out.");
                    c.insert("app_name", "Desktop <App>");
                }
            }
            "mfa_recovery_codes.html" => {
                c.insert("codes", &sample_codes());
                c.insert("continue_url", "/account/mfa");
                c.insert("first", &full);
            }
            "mfa.html" => {
                let mut off = base(theme, full);
                off.insert("mfa_enabled", &false);
                let mut out = vec![off];
                c.insert("mfa_enabled", &true);
                c.insert("recovery_remaining", &if full { 1 } else { 10 });
                c.insert("enabled_on", "22 November 2026");
                // After an error the server names the form that was sent;
                // without that, a password error means the disable form.
                for (form, password_error) in [
                    ("disable", true),
                    ("regenerate", false),
                    ("", true),
                    ("", false),
                ] {
                    let mut v = c.clone();
                    v.insert("values", &json!({ "form": form }));
                    if full && password_error {
                        v.insert(
                            "errors",
                            &json!({ "code": ["Wrong <code>"], "password": ["Wrong password"] }),
                        );
                    }
                    out.push(v);
                }
                return out;
            }
            _ => {}
        }
        vec![c]
    }

    const SAMPLE_SVG: &str =
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 29 29'><path d='M0 0h7v7H0z'/></svg>";

    const PAGES: &[&str] = &[
        "login.html",
        "locked.html",
        "register.html",
        "register_sent.html",
        "verify_email.html",
        "forgot_password.html",
        "forgot_sent.html",
        "reset_password.html",
        "reset_invalid.html",
        "reset_done.html",
        "account.html",
        "change_password.html",
        "error.html",
        "login_otp.html",
        "login_recovery_used.html",
        "mfa_enrol.html",
        "mfa_recovery_codes.html",
        "mfa.html",
        "sessions.html",
        "profile.html",
        "email_changed.html",
        "activity.html",
        "continue.html",
        "reauth.html",
    ];
    /// Two-step sign-in pages (docs/mfa.md): they use the field `code`.
    const MFA_PAGES: &[&str] = &[
        "login_otp.html",
        "login_recovery_used.html",
        "mfa_enrol.html",
        "mfa_recovery_codes.html",
        "mfa.html",
    ];
    const MAILS: &[&str] = &[
        "verify_email",
        "registration_attempt",
        "reset_password",
        "password_changed",
        "account_locked",
        "mfa_enabled",
        "mfa_disabled",
        "mfa_reset",
        "mfa_recovery_code_used",
        "mfa_recovery_codes_regenerated",
        "mfa_failed",
        "email_change",
        "email_changed",
        "email_change_taken",
        "passkey_added",
    ];

    #[test]
    fn every_template_of_every_theme_renders() {
        let themes = shipped();
        for name in ["default", "helix", "hosting", "customer"] {
            assert!(themes.exists(name), "theme {name} is shipped");
        }
        for name in themes.names() {
            let theme = themes.get(Some(name));
            for full in [false, true] {
                for page in PAGES {
                    for c in page_contexts(&theme, page, full) {
                        let html = theme
                            .render(page, &c)
                            .unwrap_or_else(|e| panic!("{name}/{page} (full={full}): {e}"));
                        assert!(
                            html.contains(&theme.meta.display_name),
                            "{name}/{page} shows the portal's name"
                        );
                        assert!(
                            !html.contains("<script>alert")
                                && !html.contains("Jane <script>")
                                && !html.contains("Wrong <code>"),
                            "{name}/{page} escapes"
                        );
                        if html.contains("<form") && html.contains("method=\"post\"") {
                            assert_eq!(
                                html.matches("<form").count(),
                                html.matches("name=\"csrf_token\" value=\"CSRF-TOKEN-VALUE\"")
                                    .count(),
                                "{name}/{page}: every form carries the CSRF token"
                            );
                        }
                        // The CSP forbids inline script and style.
                        assert!(
                            !html.contains("<script>")
                                && !html.contains("<style")
                                && !html.contains(" style=")
                                && !html.contains(" onclick="),
                            "{name}/{page}: no inline script or style"
                        );
                        if MFA_PAGES.contains(page) {
                            check_mfa_page(name, page, &c, &html);
                        }
                        check_labels(&theme, page, &html);
                        if full {
                            check_errors_once(name, page, &html);
                        }
                    }
                }
                for mail in MAILS {
                    let c = base(&theme, full);
                    for ext in ["subject.txt", "txt", "html"] {
                        let text = theme
                            .render(&format!("mail/{mail}.{ext}"), &c)
                            .unwrap_or_else(|e| panic!("{name}/mail/{mail}.{ext}: {e}"));
                        if (mail.starts_with("mfa_") || mail.starts_with("passkey_"))
                            && ext != "subject.txt"
                        {
                            assert!(
                                text.contains("jane@example.com")
                                    && text.contains("Sun, 22 Nov 2026 20:00:00 +0000")
                                    && text.contains("http://127.0.0.1:8080/forgot-password"),
                                "{name}/mail/{mail}.{ext} says which account, when, and how to reset the password"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The help pages' words, where customers look for them.
    fn check_labels(theme: &Theme, page: &str, html: &str) {
        let label = |key: &str| theme.labels[key].clone();
        let button = |key: &str| format!(">{}</button>", label(key));
        let link = |key: &str| format!(">{}</a>", label(key));
        let expected: Vec<String> = match page {
            "login.html" => vec![
                button("sign_in_button"),
                link("forgot_password_link"),
                link("register_link"),
            ],
            "register.html" => vec![button("register_button")],
            "forgot_password.html" => vec![
                button("forgot_button"),
                format!("<summary>{}</summary>", label("blocked_domains_link")),
            ],
            "reset_password.html" => vec![button("reset_button")],
            "change_password.html" => vec![
                format!(">{}</h1>", label("change_password_title")),
                button("change_password_button"),
            ],
            _ => vec![],
        };
        for needle in expected {
            assert!(html.contains(&needle), "{}/{page}: {needle}", theme.name);
        }
    }

    /// A field's messages appear at the field, not again in the summary.
    fn check_errors_once(theme: &str, page: &str, html: &str) {
        for message in ["Too short", "No match", "Missing", "Failed"] {
            assert!(
                html.matches(message).count() <= 1,
                "{theme}/{page}: {message:?} shown more than once"
            );
        }
    }

    #[test]
    fn each_portal_has_its_help_pages_words() {
        let themes = shipped();
        let label = |theme: &str, key: &str| themes.get(Some(theme)).labels[key].clone();
        assert_eq!(
            label("helix", "forgot_password_link"),
            "RESET YOUR PASSWORD HERE"
        );
        assert_eq!(label("helix", "forgot_button"), "SEND EMAIL");
        assert_eq!(label("helix", "reset_button"), "UPDATE");
        assert_eq!(label("helix", "sign_in_button"), "SIGN IN");
        assert_eq!(label("hosting", "sign_in_button"), "Login");
        assert_eq!(label("hosting", "forgot_password_link"), "Forgot?");
        assert_eq!(label("hosting", "change_password_button"), "Save Changes");
        assert_eq!(label("hosting", "change_password_title"), "Change Password");
        assert_eq!(label("customer", "forgot_password_link"), "Forgot Password");
        // Not set by the customer theme: inherited from default.
        assert_eq!(label("customer", "sign_in_button"), "Sign in");
        let customer = themes.get(Some("customer"));
        let policy = customer.meta.password_policy.as_ref().unwrap();
        assert!(policy.require_uppercase && policy.require_digit && policy.require_symbol);
        assert_eq!((policy.min_length, policy.min_strength), (8, 0));
    }

    #[test]
    fn bad_policy_or_labels_fail_start_up_naming_theme_and_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("default/templates")).unwrap();
        let labels: String = LABELS.iter().map(|k| format!("{k} = \"x\"\n")).collect();
        let colors = "[colors]\nprimary = \"#000\"\nprimary_text = \"#fff\"\nbackground = \"#fff\"\nsurface = \"#fff\"\ntext = \"#000\"\nmuted = \"#555\"\nsuccess = \"#0a0\"\nerror = \"#a00\"\n";
        let head = "display_name = \"D\"\nlogo = \"l.svg\"\n";
        std::fs::write(
            dir.path().join("default/theme.toml"),
            format!("{head}{colors}[labels]\n{labels}"),
        )
        .unwrap();
        assert!(Themes::load(dir.path()).is_ok());
        std::fs::create_dir_all(dir.path().join("acme")).unwrap();
        for (extra, key) in [
            (
                "[password_policy]\nmin_strength = 7\n",
                "password_policy.min_strength",
            ),
            ("[password_policy]\nmin_lenght = 9\n", "min_lenght"),
            ("[labels]\nsign_in = \"Go\"\n", "labels.sign_in"),
            (
                "[labels]\nsign_in_button = \" \"\n",
                "labels.sign_in_button",
            ),
            ("reset_link_ttl_minutes = 0\n", "reset_link_ttl_minutes"),
        ] {
            let (top, tables) = if extra.starts_with('[') {
                ("", extra)
            } else {
                (extra, "")
            };
            std::fs::write(
                dir.path().join("acme/theme.toml"),
                format!("{top}parent = \"default\"\n{head}{colors}{tables}"),
            )
            .unwrap();
            let err = Themes::load(dir.path()).unwrap_err().to_string();
            assert!(
                err.starts_with("theme acme:") && err.contains(key),
                "{key}: {err}"
            );
        }
        // A label missing everywhere names the theme and the key.
        std::fs::remove_dir_all(dir.path().join("acme")).unwrap();
        std::fs::write(
            dir.path().join("default/theme.toml"),
            format!("{head}{colors}"),
        )
        .unwrap();
        let err = Themes::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("theme default:") && err.contains("labels.sign_in_button"),
            "{err}"
        );
    }

    /// What the black-box tests and assistive technology rely on in the
    /// two-step sign-in pages.
    fn check_mfa_page(theme: &str, page: &str, c: &tera::Context, html: &str) {
        let at = format!("{theme}/{page}");
        let full = c.get("form_error").is_some();
        // Only password.js (Show/Hide on the password field), which the page
        // does not need.
        assert_eq!(
            html.matches("<script").count(),
            html.matches("/password.js\" defer></script>").count(),
            "{at}: works without JavaScript"
        );
        if html.contains("name=\"code\"") {
            // No numeric keyboard where a recovery code (letters) may be typed.
            assert!(
                html.contains("autocomplete=\"one-time-code\""),
                "{at}: the code field suits one-time codes"
            );
        }
        match page {
            "login_otp.html" => {
                assert!(html.contains("action=\"/login/otp\""), "{at}");
                assert!(html.contains(">Authentication code</label>"), "{at}");
                assert!(html.contains(">Verify</button>"), "{at}");
                assert!(
                    html.contains("recovery code"),
                    "{at}: mentions recovery codes"
                );
                let flow_query = if full { "?client_id=portal" } else { "" };
                assert!(
                    html.contains(&format!("href=\"/login{flow_query}\">Start again</a>")),
                    "{at}: start again"
                );
                if full {
                    assert!(
                        html.contains("aria-describedby=\"code-hint code-error\"")
                            && html.contains("id=\"code-error\""),
                        "{at}: the code error is tied to the field"
                    );
                }
            }
            "login_recovery_used.html" => {
                assert!(
                    html.contains("href=\"/authorize/continue?req=abc\">Continue</a>"),
                    "{at}: continue"
                );
                let remaining = c
                    .get("remaining")
                    .and_then(|v| v.as_i64())
                    .unwrap_or_default();
                assert_eq!(
                    html.contains("role=\"alert\"") && html.contains("/account/mfa"),
                    remaining <= 2,
                    "{at}: warns when {remaining} codes remain"
                );
            }
            "mfa_enrol.html" => {
                assert!(
                    html.contains(SAMPLE_SVG),
                    "{at}: the QR code is inserted as is"
                );
                assert!(html.contains("<figure"), "{at}: QR code in a figure");
                assert!(
                    html.contains("id=\"manual-key\"")
                        && html.contains(">JBSW Y3DP EHPK 3PXP JBSW Y3DP EHPK 3PXP</code>"),
                    "{at}: the key to type by hand"
                );
                let action = c.get("action").and_then(|v| v.as_str()).unwrap_or_default();
                assert!(
                    html.contains(&format!("action=\"{action}\"")),
                    "{at}: {action}"
                );
                assert!(html.contains(">Turn on</button>"), "{at}");
                assert!(html.contains(">Cancel</a>"), "{at}");
                assert_eq!(
                    html.contains("requires two-step sign-in"),
                    full,
                    "{at}: required"
                );
                if full {
                    assert!(
                        html.contains("name=\"req\" value=\"REQ-ID\""),
                        "{at}: the form carries the pending request"
                    );
                }
            }
            "mfa_recovery_codes.html" => {
                let list = html
                    .split("id=\"recovery-codes\"")
                    .nth(1)
                    .and_then(|rest| rest.split("</ol>").next())
                    .unwrap_or_else(|| panic!("{at}: list of codes"));
                assert_eq!(list.matches("<li><code>").count(), 10, "{at}: ten codes");
                assert!(list.contains("<code>abcd-efgh-ijkl-mn09</code>"), "{at}");
                assert!(html.contains("href=\"/account/mfa\">Continue</a>"), "{at}");
                assert_eq!(
                    html.contains("Two-step sign-in is now on"),
                    full,
                    "{at}: first"
                );
            }
            "mfa.html" => {
                let enabled = c.get("mfa_enabled").and_then(|v| v.as_bool()) == Some(true);
                let form = c
                    .get("values")
                    .and_then(|v| v.get_from_path("form"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                assert!(html.contains("Back to your account</a>"), "{at}");
                if !enabled {
                    assert!(html.contains(">Off</span>"), "{at}: status off");
                    assert!(html.contains(">Turn on two-step sign-in</a>"), "{at}");
                    assert!(html.contains("href=\"/account/mfa/setup"), "{at}");
                    assert!(
                        !html.contains("<form class=\"form\""),
                        "{at}: no forms when off"
                    );
                    return;
                }
                assert!(html.contains(">On</span>"), "{at}: status on");
                assert!(html.contains("22 November 2026"), "{at}: since");
                assert!(
                    html.contains("action=\"/account/mfa/recovery-codes\""),
                    "{at}"
                );
                assert!(html.contains(">Generate new codes</button>"), "{at}");
                assert!(html.contains("action=\"/account/mfa/disable\""), "{at}");
                assert!(html.contains(">Turn off</button>"), "{at}");
                for id in ["regenerate-code", "disable-code", "disable-password"] {
                    assert_eq!(
                        html.matches(&format!("id=\"{id}\"")).count(),
                        1,
                        "{at}: one input with id {id}"
                    );
                    assert!(
                        html.contains(&format!("for=\"{id}\"")),
                        "{at}: label for {id}"
                    );
                }
                assert!(
                    html.contains("autocomplete=\"current-password\""),
                    "{at}: the password field"
                );
                if full {
                    // Errors show next to the form that was sent; without
                    // `values.form`, a password error points to the disable form.
                    let password_error = c
                        .get("errors")
                        .and_then(|v| v.get_from_path("password"))
                        .is_some();
                    let shown = match form {
                        "" if password_error => "disable",
                        "" => "regenerate",
                        form => form,
                    };
                    let other = if shown == "regenerate" {
                        "disable"
                    } else {
                        "regenerate"
                    };
                    assert!(
                        html.contains(&format!("id=\"{shown}-code-error\"")),
                        "{at} ({form:?})"
                    );
                    assert!(
                        html.contains(&format!("href=\"#{shown}-code\"")),
                        "{at} ({form:?}): summary link"
                    );
                    assert!(
                        !html.contains(&format!("id=\"{other}-code-error\"")),
                        "{at} ({form:?})"
                    );
                    assert_eq!(
                        html.contains("id=\"disable-password-error\""),
                        shown == "disable",
                        "{at} ({form:?})"
                    );
                } else {
                    assert!(!html.contains("aria-invalid"), "{at}: no errors");
                }
            }
            _ => {}
        }
    }

    #[test]
    fn child_themes_fall_back_to_default_and_keep_their_own() {
        let themes = shipped();
        let hosting = themes.get(Some("hosting"));
        assert_eq!(themes.get(Some("no-such-theme")).name, DEFAULT);
        // A static file the child lacks comes from default; vars.css from its own colours.
        assert!(hosting.static_file("captcha.js").is_some());
        let vars = hosting.static_file("vars.css").unwrap();
        assert!(
            String::from_utf8(vars.bytes)
                .unwrap()
                .contains(&hosting.meta.colors.primary)
        );
        assert!(hosting.static_file("../theme.toml").is_none());
        assert!(hosting.static_file("/etc/passwd").is_none());
        assert_ne!(hosting.version, themes.get(Some("helix")).version);
    }

    /// Only `default` stays compiled after the start; another theme is
    /// compiled at its first page, and renders as it would have.
    #[test]
    fn other_themes_compile_at_first_use() {
        let themes = shipped();
        assert!(themes.get(None).compiled());
        let hosting = themes.get(Some("hosting"));
        assert!(!hosting.compiled());
        assert!(hosting.has_template("login.html"));
        assert!(hosting.compiled());
        let helix = themes.get(Some("helix"));
        assert!(!helix.compiled());
        let page = helix.render("login.html", &base(&helix, true)).unwrap();
        assert!(helix.compiled());
        assert!(page.contains(&helix.labels["sign_in_button"]), "{page}");
    }

    /// A theme that is not kept compiled is still checked at start-up.
    #[test]
    fn a_broken_child_theme_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../themes/default");
        copy_dir(&shipped, &dir.path().join("default"));
        std::fs::create_dir_all(dir.path().join("child/templates")).unwrap();
        std::fs::write(
            dir.path().join("child/theme.toml"),
            std::fs::read_to_string(shipped.join("theme.toml")).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.path().join("child/templates/login.html"), "{% if %}").unwrap();
        let err = Themes::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("child") && err.contains("login.html"), "{err}");
        std::fs::write(dir.path().join("child/templates/login.html"), "ok").unwrap();
        assert!(Themes::load(dir.path()).is_ok());
    }

    fn copy_dir(from: &Path, to: &Path) {
        for file in files_under(from) {
            let target = to.join(file.strip_prefix(from).unwrap());
            std::fs::create_dir_all(target.parent().unwrap()).unwrap();
            std::fs::copy(&file, &target).unwrap();
        }
    }

    #[test]
    fn broken_themes_are_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("default/templates")).unwrap();
        let toml = "display_name = \"D\"\nlogo = \"l.svg\"\n[colors]\nprimary = \"#000\"\nprimary_text = \"#fff\"\nbackground = \"#fff\"\nsurface = \"#fff\"\ntext = \"#000\"\nmuted = \"#555\"\nsuccess = \"#0a0\"\nerror = \"#a00\"\n";
        let labels: String = LABELS.iter().map(|k| format!("{k} = \"x\"\n")).collect();
        let toml = format!("{toml}[labels]\n{labels}");
        let toml = toml.as_str();
        std::fs::write(dir.path().join("default/theme.toml"), toml).unwrap();
        std::fs::write(dir.path().join("default/templates/x.html"), "{% if %}").unwrap();
        let err = Themes::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("x.html"), "{err}");
        std::fs::write(dir.path().join("default/templates/x.html"), "ok").unwrap();
        std::fs::create_dir_all(dir.path().join("orphan")).unwrap();
        std::fs::write(
            dir.path().join("orphan/theme.toml"),
            format!("parent = \"nope\"\n{toml}"),
        )
        .unwrap();
        let err = Themes::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
