//! Just-in-time migration (issue 15, item 7): a sign-in for an address that
//! has no account here asks the legacy portal, through its migration hook,
//! whether the typed password is right there; on a yes the account is made
//! here with that password, and the hook is never asked about the address
//! again (it exists now). The wire protocol, for whoever writes the
//! portal's side, is in docs/jit-migration.md.
//!
//! Every failure (not configured, over a limit, unreachable, slow, a status
//! other than 200, an answer too big or not understood, `valid: false`) is
//! the same "no" to the caller, which shows "incorrect email or password".
//! The password never reaches a log.

use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use crate::config::{Hook, MigrationHookConfig};
use crate::domain::{AuditKind, Email, PlainPassword};
use crate::ephemeral::keys;
use crate::store::{self, Client, NewUser, User};
use crate::web::client_meta::ClientMeta;
use crate::web::{AppError, AppState, audit};

/// The header that carries the signature: `t=<unix seconds>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-idp-signature";

/// Largest answer read from a hook; a bigger one is a "no".
pub const MAX_ANSWER_BYTES: usize = 4096;

/// Longest name kept from an answer (as registration allows).
const MAX_NAME_CHARS: usize = 200;

/// What a legacy portal vouched for, on a yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JitAnswer {
    pub name: String,
    pub email_verified: bool,
}

/// Why the hook's answer was "no" (for the log: never shown to anyone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Declined {
    /// The address was asked about too often this hour.
    AddressLimit,
    /// The deployment's calls this minute are spent.
    DeploymentLimit,
    Unreachable(String),
    TimedOut,
    Status(u16),
    TooLarge,
    /// Not the JSON object the protocol describes.
    NotUnderstood,
    /// `valid` was false: the password is wrong there too (or unknown).
    Invalid,
}

impl Declined {
    fn reason(&self) -> String {
        match self {
            Self::AddressLimit => "over the per-address limit; not asked".into(),
            Self::DeploymentLimit => "over the per-minute limit; not asked".into(),
            Self::Unreachable(e) => format!("unreachable: {e}"),
            Self::TimedOut => "no answer within timeout_ms".into(),
            Self::Status(s) => format!("answered HTTP {s}"),
            Self::TooLarge => format!("answer larger than {MAX_ANSWER_BYTES} bytes"),
            Self::NotUnderstood => "answer is not {valid, name, email_verified} JSON".into(),
            Self::Invalid => "valid: false".into(),
        }
    }
}

/// The client that calls the hooks, built once at start-up (kept in the
/// app's state as `hook_client`) with the configured timeout: no redirect
/// followed, one connection pool.
///
/// It ignores the proxy environment (`HTTP_PROXY`, `HTTPS_PROXY`,
/// `ALL_PROXY`): a hook may be a plain-http loopback address, and a proxy
/// named there for the server's other traffic would receive the password.
pub fn hook_client(timeout_ms: u64) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_millis(timeout_ms);
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("idp-migration-hook/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// One POST with `client` (see [`hook_client`]), no retry, the answer read
/// up to [`MAX_ANSWER_BYTES`], the whole exchange within `timeout_ms`.
pub async fn call(
    client: &reqwest::Client,
    hook: Hook<'_>,
    timeout_ms: u64,
    timestamp: i64,
    body: String,
) -> Result<JitAnswer, Declined> {
    let signed = signature_header(hook.secret.expose().as_bytes(), timestamp, body.as_bytes());
    let exchange = async {
        let mut response = client
            .post(hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signed)
            .body(body)
            .send()
            .await
            .map_err(from_reqwest)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(Declined::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(Declined::TooLarge);
        }
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(from_reqwest)? {
            if answer.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Declined::TooLarge);
            }
            answer.extend_from_slice(&chunk);
        }
        understood(&answer)
    };
    // reqwest's own timeout covers the body too; this one bounds the whole
    // exchange whatever the transport does.
    tokio::time::timeout(Duration::from_millis(timeout_ms), exchange)
        .await
        .unwrap_or(Err(Declined::TimedOut))
}

/// The signature of one call: HMAC-SHA256 with `secret` over
/// `"<timestamp>.<body>"`, as lowercase hex.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of every length; this branch cannot be reached.
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The signature header's value for a call made at `timestamp`.
pub fn signature_header(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

/// The hook that applies to a sign-in in `client`'s flow (none: outside a
/// flow), chosen by the server's record of the flow, never by the form.
pub fn hook_for<'a>(config: &'a MigrationHookConfig, client: Option<&Client>) -> Option<Hook<'a>> {
    config.hook_for(
        client.map(|c| c.id.as_str()),
        client.and_then(|c| c.theme.as_deref()),
    )
}

/// Asks `hook` whether `password` is right for `email` at the legacy
/// portal, within the limits (each counted before the call, so a burst of
/// unknown addresses gets no more calls than they allow).
///
/// The address's allowance is counted first, so one address that keeps
/// trying cannot spend the deployment's minute for everyone; then the
/// deployment's minute. A try the minute refuses is given back to the
/// address (no call was made): during a flood that spent the minute, a
/// customer's own attempts do not use up their address's hourly allowance.
pub async fn ask(
    state: &AppState,
    hook: Hook<'_>,
    email: &Email,
    password: &PlainPassword,
) -> Result<Result<JitAnswer, Declined>, AppError> {
    let config = &state.config.migration_hook;
    let hour = Duration::from_secs(3600);
    let for_address = keys::counter("jit-address", &email.key());
    let counted = state.ephemeral.count(&for_address, hour).await?;
    if counted.count > config.per_address_per_hour {
        return Ok(Err(Declined::AddressLimit));
    }
    let minute = Duration::from_secs(60);
    let for_deployment = keys::counter("jit-calls", "deployment");
    if state.ephemeral.increment(&for_deployment, minute).await? > config.per_minute {
        state.ephemeral.give_back(&for_address, counted).await?;
        return Ok(Err(Declined::DeploymentLimit));
    }
    let body = json!({ "email": email.as_str(), "password": password.expose() }).to_string();
    let timestamp = state.clock.now().unix_timestamp();
    let client = &state.hook_client;
    Ok(call(client, hook, config.timeout_ms, timestamp, body).await)
}

fn from_reqwest(e: reqwest::Error) -> Declined {
    if e.is_timeout() {
        return Declined::TimedOut;
    }
    // Without the URL: a portal's URL may carry a token in its query.
    let e = e.without_url();
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    Declined::Unreachable(text)
}

/// A yes, or why the answer is a no.
fn understood(answer: &[u8]) -> Result<JitAnswer, Declined> {
    #[derive(Deserialize)]
    struct Wire {
        valid: bool,
        #[serde(default)]
        name: String,
        #[serde(default)]
        email_verified: bool,
    }
    let wire: Wire = serde_json::from_slice(answer).map_err(|_| Declined::NotUnderstood)?;
    if !wire.valid {
        return Err(Declined::Invalid);
    }
    let name: String = wire
        .name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    Ok(JitAnswer {
        name,
        email_verified: wire.email_verified,
    })
}

/// For a sign-in whose address has no account: asks the hook that applies
/// (if any) and, on a yes, makes the account with the typed password hashed
/// as every password is, audited as `user.migrated`. `None`: no hook, or
/// its answer was no; the caller fails the sign-in as a wrong password.
///
/// Two sign-ins racing for the same new address: one creates the account,
/// the other finds it (the unique address) and goes on with it, so its
/// password is then checked against the winner's like any other.
pub async fn migrate(
    state: &AppState,
    meta: &ClientMeta,
    email: &Email,
    password: &PlainPassword,
    client: Option<&Client>,
) -> Result<Option<User>, AppError> {
    let Some(hook) = hook_for(&state.config.migration_hook, client) else {
        return Ok(None);
    };
    let answer = match ask(state, hook, email, password).await? {
        Ok(answer) => answer,
        Err(declined) => {
            if declined == Declined::Invalid {
                tracing::info!(hook = hook.key, reason = %declined.reason(), "migration hook said no");
            } else {
                tracing::warn!(hook = hook.key, reason = %declined.reason(), "migration hook not usable");
            }
            return Ok(None);
        }
    };
    let new = NewUser {
        email: email.clone(),
        name: answer.name,
        email_verified: answer.email_verified,
        password_hash: Some(state.hasher.hash(password).await?),
        is_admin: false,
    };
    match state.store.create_user(new, state.clock.now()).await {
        Ok(user) => {
            audit::record(
                state,
                meta,
                AuditKind::UserMigrated,
                Some(&user.id),
                client.map(|c| &c.id),
                json!({ "hook": hook.key }),
            )
            .await;
            Ok(Some(user))
        }
        Err(store::Error::Conflict) => Ok(state.store.user_by_email(email).await?),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tests/fixtures/jit/generate.py: Python's hmac and hashlib, not ours.
    #[test]
    fn signature_matches_an_independent_implementation() {
        let fixtures = include_str!("../../../tests/fixtures/jit/signatures.jsonl");
        let mut seen = 0;
        for line in fixtures.lines().filter(|l| !l.trim().is_empty()) {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let secret = case["secret"].as_str().unwrap();
            let timestamp = case["timestamp"].as_i64().unwrap();
            let body = case["body"].as_str().unwrap();
            assert_eq!(
                signature_header(secret.as_bytes(), timestamp, body.as_bytes()),
                case["header"].as_str().unwrap(),
                "{line}"
            );
            seen += 1;
        }
        assert_eq!(seen, 3);
    }

    #[test]
    fn answers_other_than_a_valid_object_are_no() {
        assert_eq!(
            understood(br#"{"valid": true, "name": " Ann\u0007 Lee ", "email_verified": true}"#),
            Ok(JitAnswer {
                name: "Ann Lee".into(),
                email_verified: true
            })
        );
        assert_eq!(
            understood(br#"{"valid": true}"#),
            Ok(JitAnswer {
                name: String::new(),
                email_verified: false
            })
        );
        assert_eq!(
            understood(br#"{"valid": false, "name": "x"}"#),
            Err(Declined::Invalid)
        );
        for garbage in [
            &b"<html>ok</html>"[..],
            b"",
            b"true",
            br#"{"valid": "yes"}"#,
            b"{}",
        ] {
            assert_eq!(understood(garbage), Err(Declined::NotUnderstood));
        }
    }
}
