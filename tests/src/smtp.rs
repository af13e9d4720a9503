//! A real SMTP server for the tests: it listens on loopback, speaks enough
//! SMTP for lettre's plaintext client (EHLO/HELO, MAIL, RCPT, DATA, RSET,
//! NOOP, QUIT) and keeps every message it accepts. It can be stopped, so that
//! connections are refused, and started again on the same port: an outage.
//!
//! Hand-written rather than `mailin-embedded`, whose server runs until the
//! process ends: an outage needs a server that can go away and come back.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The name the client gave in EHLO/HELO.
    pub helo: String,
    /// The envelope's recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The envelope's sender (`MAIL FROM`).
    pub from: String,
    /// The message as sent: RFC 5322 text, dot-unstuffed.
    pub data: String,
}

impl ReceivedMail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("an RFC 5322 message")
    }

    /// The decoded Subject header.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    /// The Message-ID, without its angle brackets.
    pub fn message_id(&self) -> String {
        self.parsed().message_id().unwrap_or_default().to_string()
    }

    /// The address in the From header.
    pub fn from_header(&self) -> String {
        let parsed = self.parsed();
        parsed
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string()
    }

    /// The address in the To header.
    pub fn to_header(&self) -> String {
        let parsed = self.parsed();
        parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_string()
    }

    /// The decoded text/plain body (quoted-printable or base64 undone).
    pub fn text_body(&self) -> String {
        let parsed = self.parsed();
        parsed
            .body_text(0)
            .map(|b| b.into_owned())
            .unwrap_or_default()
    }

    /// The decoded text/html alternative, if the message has one.
    pub fn html_body(&self) -> Option<String> {
        let parsed = self.parsed();
        if parsed.html_body_count() == 0 {
            return None;
        }
        parsed.body_html(0).map(|b| b.into_owned())
    }
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<ReceivedMail>>,
    /// Waited before accepting each message: a slow server.
    delay: Mutex<Duration>,
}

/// The SMTP server. Dropping it stops it.
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    server: Mutex<Option<JoinHandle<()>>>,
}

impl SmtpSink {
    /// Starts on 127.0.0.1, on a free port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("sink address").port();
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn(serve(listener, shared.clone()));
        Self {
            port,
            shared,
            server: Mutex::new(Some(server)),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn address(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Every message accepted so far, in order of arrival.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// Makes the server wait this long before accepting each message.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }

    /// Waits until at least `n` messages have arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "the SMTP sink received {} message(s) within {timeout:?}, expected {n}",
                    messages.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops listening and drops every open connection: from now on,
    /// connecting is refused. Messages received so far are kept.
    pub async fn stop(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the SMTP sink's port again");
        let server = tokio::spawn(serve(listener, self.shared.clone()));
        *self.server.lock().unwrap() = Some(server);
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }
}

/// Accepts connections until aborted; aborting drops the listener and, with
/// the `JoinSet`, every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        connections.spawn(session(stream, shared.clone()));
    }
}

/// One SMTP session (RFC 5321, the subset a submission client uses).
async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut helo = String::new();
    let mut from = String::new();
    let mut to = Vec::new();
    if write.write_all(b"220 sink ESMTP ready\r\n").await.is_err() {
        return;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_string();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => {
                helo = command[4..].trim().to_string();
                if verb == "EHLO" {
                    b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
                } else {
                    b"250 sink\r\n"
                }
            }
            "MAIL" => {
                from = address(&command);
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(address(&command));
                b"250 OK\r\n"
            }
            "DATA" => {
                if to.is_empty() {
                    b"503 RCPT first\r\n"
                } else {
                    if write.write_all(b"354 go ahead\r\n").await.is_err() {
                        return;
                    }
                    let Some(data) = read_data(&mut lines).await else {
                        return;
                    };
                    let delay = *shared.delay.lock().unwrap();
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    shared.messages.lock().unwrap().push(ReceivedMail {
                        helo: helo.clone(),
                        to: std::mem::take(&mut to),
                        from: std::mem::take(&mut from),
                        data,
                    });
                    b"250 OK queued\r\n"
                }
            }
            "RSET" => {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The message after `DATA`, up to the line with a single dot.
async fn read_data(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        if line == b".\r\n" || line == b".\n" {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
        // Transparency (RFC 5321 4.5.2): a leading dot was doubled.
        let content = if line.starts_with(b"..") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(content);
    }
}

/// The address between angle brackets of `MAIL FROM:<a@b> ...`.
fn address(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(start), Some(end)) if start < end => command[start + 1..end].to_string(),
        _ => command
            .split_once(':')
            .map(|(_, a)| a.trim().to_string())
            .unwrap_or_default(),
    }
}
