//! Turning an outbox row into an RFC 5322 message and handing it to lettre:
//! SMTP (STARTTLS required, implicit TLS, or plaintext to a loopback relay;
//! rustls with the webpki roots) or, in the embedded default, an `.eml` file
//! per message whose links are logged so a developer can follow them.
//!
//! Each message goes out as its portal (the theme's `mail_from`, else
//! `mail.from`), with that address as the envelope sender, and is signed
//! with DKIM (RFC 6376, relaxed/relaxed) when `[[mail.dkim]]` has a key for
//! the sender's domain, so that mail sent as a portal's domain passes DMARC.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use time::OffsetDateTime;
use url::{Host, Url};

use crate::config::{DkimAlgorithm, DkimKeyConfig, MailConfig, MailTransport, SmtpTls};
use crate::store::OutgoingMail;

/// Longest a file write may take before it counts as a failed attempt.
const FILE_DEADLINE: Duration = Duration::from_secs(5);

/// A mail configuration that cannot work; found at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("mail.from: {0}")]
    From(String),
    #[error("mail.dir: cannot create {path}: {reason}")]
    Dir { path: String, reason: String },
    #[error("mail.smtp: {0}")]
    Smtp(String),
    #[error("mail.dkim key for {domain} (selector {selector}, {path}): {reason}")]
    Dkim {
        domain: String,
        selector: String,
        path: String,
        reason: String,
    },
}

/// Why one delivery attempt failed. The text is for the outbox and logs.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Retrying cannot help: an invalid address, a 5xx answer.
    #[error("{0}")]
    Permanent(String),
    /// The server is unreachable, busy or slow: try again later.
    #[error("{0}")]
    Transient(String),
}

impl SendError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }
}

/// Delivers outbox messages; cheap to clone.
#[derive(Clone)]
pub struct Mailer {
    /// `mail.from`: the sender of mail that names none of its own.
    from: Mailbox,
    /// DKIM keys by sending domain (lowercase).
    dkim: HashMap<String, Arc<DkimConfig>>,
    deadline: Duration,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File {
        transport: AsyncFileTransport<Tokio1Executor>,
        dir: PathBuf,
    },
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Smtp(_) => "smtp".to_string(),
            Transport::File { dir, .. } => format!("file:{}", dir.display()),
        };
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &transport)
            .finish()
    }
}

impl Mailer {
    /// Builds the configured transport; in file mode the folder is created.
    /// `issuer` names this server in the SMTP greeting.
    pub fn from_config(config: &MailConfig, issuer: &Url) -> Result<Self, SetupError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| SetupError::From(format!("{e}")))?;
        let dkim = config
            .dkim
            .iter()
            .map(|key| Ok((key.domain.to_ascii_lowercase(), Arc::new(dkim_key(key)?))))
            .collect::<Result<_, SetupError>>()?;
        let (transport, deadline) = match config.transport {
            MailTransport::File => {
                std::fs::create_dir_all(&config.dir).map_err(|e| SetupError::Dir {
                    path: config.dir.display().to_string(),
                    reason: e.to_string(),
                })?;
                let transport = Transport::File {
                    transport: AsyncFileTransport::new(&config.dir),
                    dir: config.dir.clone(),
                };
                (transport, FILE_DEADLINE)
            }
            MailTransport::Smtp => {
                let timeout = Duration::from_secs(config.smtp.timeout_secs);
                (Transport::Smtp(smtp(config, issuer, timeout)?), timeout)
            }
        };
        Ok(Self {
            from,
            dkim,
            deadline,
            transport,
        })
    }

    /// The longest one delivery may take (`mail.smtp.timeout_secs` for SMTP);
    /// the worker gives up on an attempt after that and sizes its claims by it.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Sends outbox message `id` once, dated `now`. Its Message-ID derives
    /// from `id`, so every attempt of one message carries the same one.
    pub async fn send(
        &self,
        id: &str,
        mail: &OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<(), SendError> {
        let message = self.message(id, mail, now)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                let text = error_chain(&e);
                if e.is_permanent() {
                    SendError::Permanent(text)
                } else {
                    SendError::Transient(text)
                }
            }),
            Transport::File { transport, dir } => {
                // The folder may have been cleaned up since start-up.
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| SendError::Transient(format!("{}: {e}", dir.display())))?;
                let file_id = transport
                    .send(message)
                    .await
                    .map_err(|e| SendError::Transient(error_chain(&e)))?;
                let path = dir.join(format!("{file_id}.eml"));
                tracing::info!(
                    recipient = %mail.recipient,
                    subject = %mail.subject,
                    file = %path.display(),
                    links = ?links(&mail.body_text),
                    "mail written to a file (file transport)"
                );
                Ok(())
            }
        }
    }

    fn message(
        &self,
        id: &str,
        mail: &OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<Message, SendError> {
        let to: Mailbox = mail
            .recipient
            .parse()
            .map_err(|e| SendError::Permanent(format!("invalid recipient: {e}")))?;
        // The portal's own sender; the envelope's MAIL FROM follows it.
        let from = match &mail.sender {
            Some(sender) => sender
                .parse()
                .map_err(|e| SendError::Permanent(format!("invalid sender: {e}")))?,
            None => self.from.clone(),
        };
        let domain = from.email.domain().to_ascii_lowercase();
        let builder = Message::builder()
            .from(from)
            .to(to)
            .subject(mail.subject.clone())
            .date(SystemTime::from(now))
            .message_id(Some(format!("<{id}@{domain}>")));
        let built = match &mail.body_html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                mail.body_text.clone(),
                html.clone(),
            )),
            None => builder.singlepart(SinglePart::plain(mail.body_text.clone())),
        };
        let mut message =
            built.map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        if let Some(key) = self.dkim.get(&domain) {
            message.sign(key);
        }
        Ok(message)
    }
}

/// Headers every signature covers. Not Content-Type: lettre writes a
/// multipart's only when it formats the body, after signing, so the
/// signature would count it as absent and fail at the receiver.
const DKIM_HEADERS: [&str; 6] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
];

/// Reads one `[[mail.dkim]]` key; a missing or unreadable file stops start-up.
fn dkim_key(key: &DkimKeyConfig) -> Result<DkimConfig, SetupError> {
    let fail = |reason: String| SetupError::Dkim {
        domain: key.domain.clone(),
        selector: key.selector.clone(),
        path: key.private_key_file.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(&key.private_key_file)
        .map_err(|e| fail(format!("cannot read the private key: {e}")))?;
    let algorithm = match key.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let signing_key = DkimSigningKey::new(text.trim(), algorithm).map_err(|e| {
        fail(format!(
            "not a {} private key ({e}; rsa wants PKCS#1 PEM, ed25519 the base64 of its 32-byte seed)",
            algorithm
        ))
    })?;
    Ok(DkimConfig::new(
        key.selector.clone(),
        key.domain.to_ascii_lowercase(),
        signing_key,
        DKIM_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

fn smtp(
    config: &MailConfig,
    issuer: &Url,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SetupError> {
    let s = &config.smtp;
    let tls = |host: &str| {
        TlsParameters::new(host.to_string()).map_err(|e| SetupError::Smtp(error_chain(&e)))
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
        .port(s.port)
        .timeout(Some(timeout));
    builder = match s.tls {
        SmtpTls::Starttls => builder.tls(Tls::Required(tls(&s.host)?)),
        SmtpTls::Tls => builder.tls(Tls::Wrapper(tls(&s.host)?)),
        SmtpTls::None => builder.tls(Tls::None),
    };
    if let Some(username) = &s.username {
        let Some(password) = &s.password else {
            return Err(SetupError::Smtp(
                "username is set but password is not (IDP__MAIL__SMTP__PASSWORD or _FILE)".into(),
            ));
        };
        builder = builder.credentials(Credentials::new(
            username.clone(),
            password.expose().to_string(),
        ));
    }
    let hello = match issuer.host() {
        Some(Host::Domain(d)) => Some(ClientId::Domain(d.to_string())),
        Some(Host::Ipv4(ip)) => Some(ClientId::Ipv4(ip)),
        Some(Host::Ipv6(ip)) => Some(ClientId::Ipv6(ip)),
        None => None,
    };
    if let Some(hello) = hello {
        builder = builder.hello_name(hello);
    }
    Ok(builder.build())
}

/// An error with its causes, on one line ("connection error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Every `http://` or `https://` link in a text body.
fn links(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | ')'))
            .unwrap_or(tail.len());
        let link = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?']);
        found.push(link);
        rest = &tail[end..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn mail(html: Option<&str>) -> OutgoingMail {
        OutgoingMail {
            recipient: "Jane <jane@example.com>".into(),
            subject: "Réinitialiser votre mot de passe".into(),
            body_text: "Bonjour,\nhttps://id.example.com/reset-password?token=abc".into(),
            body_html: html.map(Into::into),
            sender: None,
        }
    }

    fn file_mailer(dir: &std::path::Path) -> Mailer {
        let mut config = Config::default();
        config.mail.dir = dir.join("mail");
        Mailer::from_config(&config.mail, &config.server.issuer).unwrap()
    }

    #[test]
    fn links_are_found_in_text() {
        let text = "Open https://id.example.com/reset?token=a_b-c. Or (http://x.test/y) \
                    <https://z.test/q?x=1&y=2>\nnot ftp://no";
        assert_eq!(
            links(text),
            vec![
                "https://id.example.com/reset?token=a_b-c",
                "http://x.test/y",
                "https://z.test/q?x=1&y=2",
            ]
        );
        assert!(links("no links here").is_empty());
    }

    #[test]
    fn messages_are_alternative_with_a_stable_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = file_mailer(dir.path());
        let now = OffsetDateTime::now_utc();
        let message = mailer
            .message("0190-abc", &mail(Some("<p>Bonjour</p>")), now)
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(raw.contains("Message-ID: <0190-abc@localhost>"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/html"), "{raw}");
        let from = raw.lines().find(|l| l.starts_with("From: ")).unwrap();
        assert!(
            from.contains("Identity Provider") && from.ends_with("<no-reply@localhost>"),
            "{from}"
        );
        let plain = mailer.message("0190-abd", &mail(None), now).unwrap();
        let raw = String::from_utf8(plain.formatted()).unwrap();
        assert!(!raw.contains("multipart"), "{raw}");
        assert!(raw.contains("text/plain"), "{raw}");
    }

    #[test]
    fn a_bad_recipient_is_permanent() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = file_mailer(dir.path());
        let mut bad = mail(None);
        bad.recipient = "not an address".into();
        let err = mailer
            .message("x", &bad, OffsetDateTime::now_utc())
            .unwrap_err();
        assert!(err.is_permanent(), "{err}");
    }

    #[test]
    fn smtp_needs_a_password_with_a_username() {
        let mut config = Config::default();
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp.username = Some("idp".into());
        let err = Mailer::from_config(&config.mail, &config.server.issuer).unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        for tls in [SmtpTls::Starttls, SmtpTls::Tls, SmtpTls::None] {
            config.mail.smtp.username = None;
            config.mail.smtp.tls = tls;
            Mailer::from_config(&config.mail, &config.server.issuer).unwrap();
        }
    }

    #[tokio::test]
    async fn the_file_transport_writes_one_eml_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = file_mailer(dir.path());
        mailer
            .send("id-1", &mail(None), OffsetDateTime::now_utc())
            .await
            .unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        assert!(raw.contains("Message-ID: <id-1@localhost>"), "{raw}");
    }
}
