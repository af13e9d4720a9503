//! Each portal's own mail: the theme's sender in From and as the envelope
//! sender (MAIL FROM), a DKIM signature for that sender's domain when
//! `[[mail.dkim]]` has its key, the deployment's `mail.from` otherwise; the
//! reset link as a button with the plain address below it. A DKIM key that
//! cannot be read stops the start.
//!
//! The signature is checked independently of lettre: its tags and body hash
//! here (RFC 6376 relaxed body canonicalization, SHA-256), and the whole
//! signature with Python's `dkimpy` when `IDP_TEST_DKIM_PYTHON` names a
//! Python that has it (or the `python3` on the path does).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use reqwest::StatusCode;
use scraper::Selector;
use sha2::{Digest, Sha256};
use tests::browser::{MailApp, NewClient, link_in, register_client};
use tests::smtp::ReceivedMail;

use crate::Backend;

on_both_backends!(each_portal_sends_as_itself_signed_for_its_domain);

const SELECTOR: &str = "portal2026";

/// A fresh 2048-bit RSA key (PKCS#1 PEM) and its DNS record's `p=` value.
fn rsa_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("nimbus.pem");
    let out = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&key)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = base64::engine::general_purpose::STANDARD.encode(out.stdout);
    (key, public)
}

/// The tags of the message's DKIM-Signature header (unfolded).
fn dkim_tags(mail: &ReceivedMail) -> Vec<(String, String)> {
    let head = mail.data.split("\r\n\r\n").next().unwrap_or("");
    let mut unfolded = String::new();
    let mut in_sig = false;
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("dkim-signature:") {
            in_sig = true;
            unfolded.push_str(&line["dkim-signature:".len()..]);
        } else if in_sig && line.starts_with([' ', '\t']) {
            unfolded.push_str(line);
        } else {
            in_sig = false;
        }
    }
    unfolded
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_owned(),
                v.chars().filter(|c| !c.is_whitespace()).collect(),
            )
        })
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// RFC 6376 3.4.4, written here rather than taken from lettre.
fn relaxed_body_hash(mail: &ReceivedMail) -> String {
    let body = mail
        .data
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    let mut lines: Vec<String> = body
        .split("\r\n")
        .map(|line| {
            let mut out = String::new();
            let mut space = false;
            for c in line.chars() {
                if c == ' ' || c == '\t' {
                    space = true;
                } else {
                    if space {
                        out.push(' ');
                    }
                    space = false;
                    out.push(c);
                }
            }
            out
        })
        .collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    let canonical: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Verifies the whole signature with dkimpy, the DNS answer given; `None`
/// when no Python with dkimpy is at hand.
fn dkimpy_verifies(mail: &ReceivedMail, public: &str) -> Option<bool> {
    let python = std::env::var("IDP_TEST_DKIM_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&python)
        .args(["-c", "import dkim"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        // scripts/test provides one: there a missing verifier is a failure,
        // not a skipped check.
        assert!(
            std::env::var("IDP_TEST_DKIM_PYTHON").is_err(),
            "IDP_TEST_DKIM_PYTHON={python} has no dkimpy"
        );
        eprintln!("dkimpy not found ({python}); set IDP_TEST_DKIM_PYTHON to check with it");
        return None;
    }
    let script = "import sys, dkim\n\
        record = ('v=DKIM1; k=rsa; p=' + sys.argv[1]).encode()\n\
        message = sys.stdin.buffer.read()\n\
        asked = []\n\
        def dns(name, timeout=5):\n\
        \x20   asked.append(name)\n\
        \x20   return record if name.rstrip(b'.') == b'portal2026._domainkey.nimbus.example' else None\n\
        ok = dkim.verify(message, dnsfunc=dns)\n\
        sys.stderr.write(repr(asked))\n\
        print('pass' if ok else 'fail')\n";
    let mut child = Command::new(&python)
        .args(["-c", script, public])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(mail.data.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "dkimpy asked DNS for {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).trim() == "pass")
}

async fn each_portal_sends_as_itself_signed_for_its_domain(backend: Backend) {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = rsa_key(keys.path());
    let app = MailApp::spawn_with(backend, |c| {
        c.mail.dkim = vec![idp::config::DkimKeyConfig {
            domain: "nimbus.example".into(),
            selector: SELECTOR.into(),
            private_key_file: key.clone(),
            algorithm: idp::config::DkimAlgorithm::Rsa,
        }];
    })
    .await;
    register_client(&app, NewClient::portal("hosting-portal", "hosting")).await;
    register_client(&app, NewClient::portal("customer-portal", "customer")).await;
    app.create_user("jane@example.com", "Correct-Horse-9-battery!", "Jane")
        .await;

    let ask = |portal: &'static str| {
        let app = &app;
        async move {
            let path = match portal {
                "" => "/forgot-password".to_owned(),
                p => format!("/forgot-password?client_id={p}"),
            };
            let page = app
                .submit(&path, "/forgot-password", &[("email", "jane@example.com")])
                .await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        }
    };

    // The hosting portal: its own sender, signed for its domain.
    ask("hosting-portal").await;
    let mail = app.wait_for_mail_to("jane@example.com", 1).await;
    assert_eq!(mail.from, "no-reply@nimbus.example", "envelope sender");
    assert_eq!(mail.from_header(), "no-reply@nimbus.example");
    assert!(
        mail.data
            .contains("From: \"Nimbus Hosting\" <no-reply@nimbus.example>"),
        "{}",
        mail.data
    );
    assert!(mail.message_id().ends_with("@nimbus.example"));
    let tags = dkim_tags(&mail);
    assert_eq!(
        tag(&tags, "v"),
        Some("1"),
        "a DKIM-Signature: {}",
        mail.data
    );
    assert_eq!(tag(&tags, "a"), Some("rsa-sha256"));
    assert_eq!(tag(&tags, "d"), Some("nimbus.example"));
    assert_eq!(tag(&tags, "s"), Some(SELECTOR));
    assert_eq!(tag(&tags, "c"), Some("relaxed/relaxed"));
    let signed: Vec<String> = tag(&tags, "h")
        .unwrap_or("")
        .split(':')
        .map(str::to_ascii_lowercase)
        .collect();
    for header in ["from", "to", "subject", "date", "message-id"] {
        assert!(signed.iter().any(|h| h == header), "h= covers {header}");
    }
    assert_eq!(
        tag(&tags, "bh"),
        Some(relaxed_body_hash(&mail).as_str()),
        "body hash"
    );
    if let Some(verified) = dkimpy_verifies(&mail, &public) {
        assert!(verified, "dkimpy verifies the signature:\n{}", mail.data);
    }

    // The reset link as a button, the plain address below it.
    let link = link_in(&mail, "/reset-password");
    let html = mail.html_body().expect("an HTML part");
    let doc = scraper::Html::parse_document(&html);
    let button = Selector::parse("a.button").unwrap();
    let href = doc
        .select(&button)
        .next()
        .and_then(|a| a.value().attr("href"))
        .expect("a button");
    assert!(href.ends_with(&link), "{href} is the link {link}");
    let after = html.split("class=\"button\"").nth(1).unwrap_or("");
    assert!(
        after.contains(&format!(">{}</a>", href.replace('&', "&amp;"))),
        "the plain address below the button:\n{html}"
    );

    // The customer portal: its own sender, no key for its domain, unsigned.
    app.clock.advance(time::Duration::hours(2));
    ask("customer-portal").await;
    let mail = app.wait_for_mail_to("jane@example.com", 2).await;
    assert_eq!(mail.from, "no-reply@brightdesk.example");
    assert!(dkim_tags(&mail).is_empty(), "unsigned: {}", mail.data);

    // No portal: the deployment's sender.
    app.clock.advance(time::Duration::hours(2));
    ask("").await;
    let mail = app.wait_for_mail_to("jane@example.com", 3).await;
    assert_eq!(mail.from, "no-reply@localhost");
    assert_eq!(mail.from_header(), "no-reply@localhost");
}

/// A DKIM key that cannot be read stops the server from starting, and the
/// error names the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unreadable_dkim_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    for (file, why) in [
        (dir.path().join("missing.pem"), "cannot read"),
        (garbage, "not a rsa private key"),
    ] {
        let mut config = tests::config_for(Backend::Sqlite, dir.path()).await;
        config.mail.dkim = vec![idp::config::DkimKeyConfig {
            domain: "nimbus.example".into(),
            selector: SELECTOR.into(),
            private_key_file: file.clone(),
            algorithm: idp::config::DkimAlgorithm::Rsa,
        }];
        let clock = std::sync::Arc::new(idp::clock::ManualClock::default());
        let Err(error) = idp::Application::build_with(config, clock, None).await else {
            panic!("the server started with {}", file.display());
        };
        let text = error.to_string();
        for part in ["nimbus.example", SELECTOR, &file.display().to_string(), why] {
            assert!(text.contains(part), "{text:?} names {part}");
        }
    }
}
