//! The benchmark driver (not a test), run by `scripts/bench`, which starts
//! `idp serve` on PostgreSQL + Redis and passes its URL and pid.
//!
//! 1. Creates a user and a confidential first-party client with `idp user
//!    create` / `idp client create`, as an operator would.
//! 2. Reads the server's RSS idle.
//! 3. Gets a client_credentials token and, through one real authorization
//!    code flow over HTTP, a user access token.
//! 4. Checks one answer of each endpoint is 200, then loads it with
//!    `wrk -t2 -c16 -d10s --latency`: discovery, JWKS, userinfo (bearer),
//!    token (client_credentials, basic auth) and introspection (basic auth),
//!    the last two through a small Lua script.
//! 5. Runs complete authorization-code flows (sign-in with the password
//!    included) from 16 concurrent tasks for 10 s, counting only those that
//!    end with tokens.
//! 6. Reads the RSS again, 1 s after the load and 15 s after it (once
//!    tokio's idle blocking threads have ended), then prints a Markdown
//!    report (and writes it to `--out`) with the figures, where the CPU went
//!    during each load (the server, PostgreSQL, Redis, the load tool,
//!    anything else on the machine), the server's own status counts from
//!    `/metrics` (on the admin listener, `--admin-url`), and the machine.
//!
//! ```text
//! bench --url http://127.0.0.1:PORT --pid PID --idp target/release/idp
//!       [--pg-pid POSTMASTER_PID] [--redis-pid PID] [--workdir DIR]
//!       [--out target/bench/latest.md]
//!       [--duration 10] [--connections 16] [--threads 2] [--rounds 3]
//!       [--admin-url http://127.0.0.1:ADMIN_PORT]
//! ```
//! Each endpoint is loaded `--rounds` times in a row; the report gives the
//! median round (this VM's neighbours move single runs by ±20%) and every
//! round's rate.
//! The `idp` commands inherit this process's environment (`IDP__…`), so they
//! reach the same database as the server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use scraper::{Html, Selector};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

const USER_EMAIL: &str = "bench.user@example.com";
/// The flows sign in as one account per task, `bench.signin.<task>@example.com`:
/// the lockout counts every attempt of an address before checking it (and
/// gives a right one back), so more than `lockout.max_failures` (5)
/// sign-ins of one address at the same moment lock it, as a burst should.
fn flow_email(task: u32) -> String {
    format!("bench.signin.{task}@example.com")
}
const USER_PASSWORD: &str = "Quiet-Harbour-Lantern-7319";
const CLIENT_ID: &str = "bench-client";
const REDIRECT_URI: &str = "http://127.0.0.1/callback";
const SCOPE: &str = "openid profile email";
/// The target of the issue, in MiB.
const RSS_TARGET_MIB: f64 = 30.0;

#[derive(Debug)]
struct Args {
    url: Url,
    pid: u32,
    /// PostgreSQL's postmaster and Redis, for the CPU accounting (optional).
    pg_pid: Option<u32>,
    redis_pid: Option<u32>,
    idp: PathBuf,
    workdir: PathBuf,
    out: PathBuf,
    duration: u64,
    connections: u32,
    threads: u32,
    rounds: usize,
    /// The yardstick (`tests/src/bin/bare.rs`), loaded like the endpoints.
    bare_url: Option<Url>,
    /// The admin listener, where `/metrics` is served (the cross-check is
    /// skipped without it).
    admin_url: Option<Url>,
    /// Scale mode (`scripts/bench --scale`): a second server on the filled
    /// database, compared with the first on the empty one.
    full: Option<FullSide>,
    /// Markdown put at the top of the scale report (the fill's timings).
    preamble: Option<PathBuf>,
}

/// The filled side of the scale mode, and both sides' database URLs (for
/// the `idp` commands that create the benchmark's user and client).
#[derive(Debug)]
struct FullSide {
    url: Url,
    pid: u32,
    admin_url: Url,
    empty_db: String,
    full_db: String,
}

fn parse_args() -> Result<Args> {
    let mut url = None;
    let mut pid = None;
    let mut pg_pid = None;
    let mut redis_pid = None;
    let mut idp = None;
    let mut workdir = std::env::current_dir()?;
    let mut out = PathBuf::from("target/bench/latest.md");
    let mut duration = 10;
    let mut connections = 16;
    let mut threads = 2;
    let mut rounds = 3;
    let mut bare_url = None;
    let mut admin_url = None;
    let (mut full_url, mut full_pid, mut full_admin_url) = (None, None, None);
    let (mut empty_db, mut full_db, mut preamble) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(Url::parse(&value()?).context("--url")?),
            "--pid" => pid = Some(value()?.parse().context("--pid")?),
            "--pg-pid" => pg_pid = Some(value()?.parse().context("--pg-pid")?),
            "--redis-pid" => redis_pid = Some(value()?.parse().context("--redis-pid")?),
            "--idp" => idp = Some(PathBuf::from(value()?)),
            "--workdir" => workdir = PathBuf::from(value()?),
            "--out" => out = PathBuf::from(value()?),
            "--duration" => duration = value()?.parse().context("--duration")?,
            "--connections" => connections = value()?.parse().context("--connections")?,
            "--threads" => threads = value()?.parse().context("--threads")?,
            "--rounds" => rounds = value()?.parse().context("--rounds")?,
            "--bare-url" => bare_url = Some(Url::parse(&value()?).context("--bare-url")?),
            "--admin-url" => admin_url = Some(Url::parse(&value()?).context("--admin-url")?),
            "--full-url" => full_url = Some(Url::parse(&value()?).context("--full-url")?),
            "--full-pid" => full_pid = Some(value()?.parse().context("--full-pid")?),
            "--full-admin-url" => {
                full_admin_url = Some(Url::parse(&value()?).context("--full-admin-url")?)
            }
            "--empty-db" => empty_db = Some(value()?),
            "--full-db" => full_db = Some(value()?),
            "--preamble" => preamble = Some(PathBuf::from(value()?)),
            "-h" | "--help" => {
                println!(
                    "bench --url URL --pid PID --idp PATH [--pg-pid PID] [--redis-pid PID] \
                     [--workdir DIR] [--out FILE] \
                     [--duration SECS] [--connections N] [--threads N] [--rounds N] [--bare-url URL] \
                     [--admin-url URL] [--full-url URL --full-pid PID --full-admin-url URL \
                     --empty-db URL --full-db URL [--preamble FILE]]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other} (see --help)"),
        }
    }
    let full = match full_url {
        None => None,
        Some(url) => Some(FullSide {
            url,
            pid: full_pid.ok_or_else(|| anyhow!("--full-url needs --full-pid"))?,
            admin_url: full_admin_url
                .ok_or_else(|| anyhow!("--full-url needs --full-admin-url"))?,
            empty_db: empty_db.ok_or_else(|| anyhow!("--full-url needs --empty-db"))?,
            full_db: full_db.ok_or_else(|| anyhow!("--full-url needs --full-db"))?,
        }),
    };
    Ok(Args {
        full,
        preamble,
        url: url.ok_or_else(|| anyhow!("--url is required"))?,
        pid: pid.ok_or_else(|| anyhow!("--pid is required"))?,
        pg_pid,
        redis_pid,
        idp: idp.ok_or_else(|| anyhow!("--idp is required"))?,
        workdir,
        out,
        duration,
        connections,
        threads,
        rounds: rounds.max(1),
        bare_url,
        admin_url,
    })
}

fn say(msg: impl AsRef<str>) {
    eprintln!("-- {}", msg.as_ref());
}

// --- the server process -------------------------------------------------------

/// A field of /proc/<pid>/status in kB (VmRSS, VmHWM).
fn proc_status_kb(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("the server (pid {pid}) is not running"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/{pid}/status"))
}

/// The server's resident memory at one moment, in kB: the total, and the
/// part that is anonymous (heap, stacks) or file-backed (mostly the binary's code).
#[derive(Debug, Clone, Copy)]
struct Mem {
    rss: u64,
    anon: u64,
    file: u64,
}

fn memory(pid: u32) -> Result<Mem> {
    Ok(Mem {
        rss: proc_status_kb(pid, "VmRSS")?,
        anon: proc_status_kb(pid, "RssAnon")?,
        file: proc_status_kb(pid, "RssFile")?,
    })
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

async fn wait_ready(http: &reqwest::Client, args: &Args) -> Result<()> {
    wait_ready_at(http, &args.url, args.pid).await
}

async fn wait_ready_at(http: &reqwest::Client, base: &Url, pid: u32) -> Result<()> {
    let url = base.join("/readyz")?;
    // A server that has just opened a large database may take a while.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        ensure!(alive(pid), "the server (pid {pid}) exited");
        if let Ok(r) = http.get(url.clone()).send().await
            && r.status() == StatusCode::OK
        {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "the server did not become ready within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The accounts the flow tasks sign in as (see [`flow_email`]).
async fn create_flow_users(
    args: &Args,
    database_url: Option<&str>,
    tasks: u32,
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for task in 0..tasks {
        let email = flow_email(task);
        let user = idp_json_on(
            args,
            database_url,
            &[
                "user",
                "create",
                "--email",
                &email,
                "--password",
                USER_PASSWORD,
                "--verified",
            ],
        )
        .await?;
        ids.push(
            user["user_id"]
                .as_str()
                .ok_or_else(|| anyhow!("no user_id in {user}"))?
                .to_owned(),
        );
    }
    Ok(ids)
}

/// Runs `idp ARGS...` and parses its one line of JSON.
async fn idp_json(args: &Args, cli: &[&str]) -> Result<Value> {
    idp_json_on(args, None, cli).await
}

/// [`idp_json`] on the database at `database_url` (instead of the inherited
/// `IDP__DATABASE__URL`).
async fn idp_json_on(args: &Args, database_url: Option<&str>, cli: &[&str]) -> Result<Value> {
    let mut cmd = tokio::process::Command::new(&args.idp);
    if let Some(url) = database_url {
        cmd.env("IDP__DATABASE__URL", url);
    }
    let out = cmd
        .args(cli)
        .current_dir(&args.workdir)
        .output()
        .await
        .with_context(|| format!("running {}", args.idp.display()))?;
    ensure!(
        out.status.success(),
        "idp {} failed: {}",
        cli.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    serde_json::from_slice(&out.stdout).with_context(|| format!("output of idp {}", cli[0]))
}

// --- one browser ----------------------------------------------------------------

/// A browser without JavaScript: its own cookies, a shared connection pool,
/// no redirect following.
struct Browser<'a> {
    http: &'a reqwest::Client,
    base: &'a Url,
    jar: Jar,
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl<'a> Browser<'a> {
    fn new(http: &'a reqwest::Client, base: &'a Url) -> Self {
        Self {
            http,
            base,
            jar: Jar::default(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &Url) -> Result<Answer> {
        let request = match self.jar.cookies(url) {
            Some(c) => request.header(COOKIE, c),
            None => request,
        };
        let response = request.send().await?;
        let status = response.status();
        let headers: &HeaderMap = response.headers();
        self.jar
            .set_cookies(&mut headers.get_all(SET_COOKIE).iter(), url);
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await?;
        Ok(Answer {
            status,
            location,
            body,
        })
    }

    async fn get(&self, path_or_url: &str) -> Result<Answer> {
        let url = self.base.join(path_or_url)?;
        self.send(self.http.get(url.clone()), &url).await
    }

    async fn post(&self, path: &str, form: &[(String, String)]) -> Result<Answer> {
        let url = self.base.join(path)?;
        self.send(self.http.post(url.clone()).form(form), &url)
            .await
    }
}

/// The hidden inputs of the form posting to `action`.
fn hidden_fields(html: &str, action: &str) -> Result<Vec<(String, String)>> {
    let doc = Html::parse_document(html);
    let forms = Selector::parse("form").map_err(|e| anyhow!("{e}"))?;
    let hidden = Selector::parse("input[type=hidden]").map_err(|e| anyhow!("{e}"))?;
    let form = doc
        .select(&forms)
        .find(|f| f.value().attr("action").unwrap_or("").split('?').next() == Some(action))
        .ok_or_else(|| anyhow!("no form posting to {action}"))?;
    Ok(form
        .select(&hidden)
        .filter_map(|i| {
            Some((
                i.value().attr("name")?.to_owned(),
                i.value().attr("value").unwrap_or("").to_owned(),
            ))
        })
        .collect())
}

fn expect_redirect(step: &str, a: &Answer) -> Result<String> {
    match (&a.location, a.status.is_redirection()) {
        (Some(l), true) => Ok(l.clone()),
        _ => Err(anyhow!(
            "{step}: expected a redirect, got {} {}",
            a.status,
            // An HTML page's title says more than its first bytes.
            a.body
                .split_once("<title>")
                .and_then(|(_, t)| t.split_once("</title>"))
                .map_or_else(|| a.body.chars().take(200).collect(), |(t, _)| t.to_owned())
        )),
    }
}

fn basic(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

/// Why a flow did not end with tokens: the step that failed.
#[derive(Debug)]
struct FlowError {
    step: &'static str,
    error: anyhow::Error,
}

fn at(step: &'static str) -> impl FnOnce(anyhow::Error) -> FlowError {
    move |error| FlowError { step, error }
}

/// One complete authorization-code flow, sign-in with the password included,
/// in a fresh browser: /authorize → /login → POST /login →
/// /authorize/continue → redirect with the code → POST /token.
/// Returns the token response.
async fn code_flow(
    http: &reqwest::Client,
    base: &Url,
    secret: &str,
    email: &str,
) -> std::result::Result<Value, FlowError> {
    let browser = Browser::new(http, base);
    let state = random_b64(16);
    let nonce = random_b64(16);
    let verifier = random_b64(32);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = base
        .join("/authorize")
        .map_err(|e| at("authorize")(e.into()))?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let a = browser
        .get(authorize.as_str())
        .await
        .map_err(at("GET /authorize"))?;
    let login = expect_redirect("GET /authorize", &a).map_err(at("GET /authorize"))?;
    let page = browser.get(&login).await.map_err(at("GET /login"))?;
    if page.status != StatusCode::OK {
        return Err(at("GET /login")(anyhow!("status {}", page.status)));
    }
    let mut form = hidden_fields(&page.body, "/login").map_err(at("GET /login"))?;
    if !form.iter().any(|(k, _)| k == "csrf_token") || !form.iter().any(|(k, _)| k == "req") {
        return Err(at("GET /login")(anyhow!(
            "the form lacks csrf_token or req"
        )));
    }
    form.push(("email".into(), email.into()));
    form.push(("password".into(), USER_PASSWORD.into()));
    let a = browser
        .post("/login", &form)
        .await
        .map_err(at("POST /login"))?;
    let resume = expect_redirect("POST /login", &a).map_err(at("POST /login"))?;
    let a = browser
        .get(&resume)
        .await
        .map_err(at("GET /authorize/continue"))?;
    let back =
        expect_redirect("GET /authorize/continue", &a).map_err(at("GET /authorize/continue"))?;
    let back = Url::parse(&back).map_err(|e| at("redirect")(e.into()))?;
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if !back.as_str().starts_with(REDIRECT_URI) || param("state").as_deref() != Some(&state) {
        return Err(at("redirect")(anyhow!("unexpected redirect {back}")));
    }
    let code = param("code")
        .ok_or_else(|| at("redirect")(anyhow!("no code in {back}: {:?}", param("error"))))?;
    let response = http
        .post(
            base.join("/token")
                .map_err(|e| at("POST /token")(e.into()))?,
        )
        .header(AUTHORIZATION, basic(CLIENT_ID, secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .map_err(|e| at("POST /token")(e.into()))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|e| at("POST /token")(e.into()))?;
    if status != StatusCode::OK || body["access_token"].as_str().is_none() {
        return Err(at("POST /token")(anyhow!("{status} {body}")));
    }
    if body["id_token"].as_str().is_none() {
        return Err(at("POST /token")(anyhow!("no id_token: {body}")));
    }
    Ok(body)
}

/// `bytes` random bytes (at most 32), base64url.
fn random_b64(bytes: usize) -> String {
    let mut raw = Vec::with_capacity(32);
    raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    raw.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    raw.truncate(bytes);
    URL_SAFE_NO_PAD.encode(raw)
}

// --- where the CPU goes ------------------------------------------------------------

/// CPU time so far, in clock ticks, by consumer; `machine_*` from /proc/stat
/// (all CPUs).
#[derive(Debug, Clone, Copy, Default)]
struct Cpu {
    idp: u64,
    postgres: u64,
    redis: u64,
    /// This driver (it is the load tool during the flows)...
    driver: u64,
    /// ...and its finished children: wrk.
    children: u64,
    machine_busy: u64,
    machine_total: u64,
}

/// (ppid, utime + stime, cutime + cstime) of a process.
fn proc_times(pid: &str) -> Option<(u32, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name in parentheses: field 3 (state) onwards.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let n = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((n(4)? as u32, n(14)? + n(15)?, n(16)? + n(17)?))
}

fn cpu_sample(args: &Args) -> Cpu {
    let mut cpu = Cpu::default();
    if let Some((_, own, children)) = proc_times("self") {
        cpu.driver = own;
        cpu.children = children;
    }
    cpu.idp = proc_times(&args.pid.to_string()).map_or(0, |t| t.1);
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    for entry in entries {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Some((ppid, own, _)) = proc_times(pid) else {
            continue;
        };
        let pid: u32 = pid.parse().unwrap_or(0);
        // The postmaster and its backends; Redis.
        if let Some(pg) = args.pg_pid
            && (pid == pg || ppid == pg)
        {
            cpu.postgres += own;
        }
        if args.redis_pid == Some(pid) {
            cpu.redis += own;
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/stat")
        && let Some(line) = stat.lines().find(|l| l.starts_with("cpu "))
    {
        // user nice system idle iowait irq softirq steal
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 8 {
            cpu.machine_total = v.iter().sum();
            cpu.machine_busy = cpu.machine_total - v[3] - v[4];
        }
    }
    cpu
}

/// Shares of the machine's CPU time between two samples, in percent of all
/// its cores: (server, PostgreSQL, Redis, load tool, other, idle).
fn cpu_shares(before: Cpu, after: Cpu) -> [f64; 6] {
    let d = |a: u64, b: u64| a.saturating_sub(b) as f64;
    let total = d(after.machine_total, before.machine_total).max(1.0);
    let idp = d(after.idp, before.idp);
    let pg = d(after.postgres, before.postgres);
    let redis = d(after.redis, before.redis);
    let tool = d(after.driver, before.driver) + d(after.children, before.children);
    let busy = d(after.machine_busy, before.machine_busy);
    let other = (busy - idp - pg - redis - tool).max(0.0);
    let pct = |x: f64| 100.0 * x / total;
    [
        pct(idp),
        pct(pg),
        pct(redis),
        pct(tool),
        pct(other),
        pct(total - busy),
    ]
}

// --- wrk -------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct WrkResult {
    requests: u64,
    rps: f64,
    p50: String,
    p99: String,
    /// "Non-2xx or 3xx responses", plus socket errors (connect, read, write, timeout).
    errors: u64,
    error_detail: String,
}

/// One load: `-t threads -c connections -d duration --latency`, with an
/// optional header and Lua script.
fn wrk(args: &Args, url: &Url, header: Option<&str>, script: Option<&Path>) -> Result<WrkResult> {
    let mut cmd = std::process::Command::new("wrk");
    cmd.arg(format!("-t{}", args.threads))
        .arg(format!("-c{}", args.connections))
        .arg(format!("-d{}s", args.duration))
        .arg("--latency");
    if let Some(h) = header {
        cmd.arg("-H").arg(h);
    }
    if let Some(s) = script {
        cmd.arg("-s").arg(s);
    }
    cmd.arg(url.as_str());
    let out = cmd.output().context("running wrk (is it installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "wrk failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&text).with_context(|| format!("parsing wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut rps = None;
    let mut requests = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut errors = 0u64;
    let mut detail = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse::<f64>().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = Some(v.trim().to_owned());
        } else if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            let n: u64 = v.trim().parse().unwrap_or(0);
            errors += n;
            detail.push(format!("{n} non-2xx/3xx"));
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            let n: u64 = v
                .split(',')
                .filter_map(|p| p.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            errors += n;
            detail.push(format!("socket errors: {}", v.trim()));
        }
    }
    Ok(WrkResult {
        requests: requests.ok_or_else(|| anyhow!("no request count"))?,
        rps: rps.ok_or_else(|| anyhow!("no Requests/sec"))?,
        p50: p50.ok_or_else(|| anyhow!("no 50% latency"))?,
        p99: p99.ok_or_else(|| anyhow!("no 99% latency"))?,
        errors,
        error_detail: detail.join("; "),
    })
}

/// A Lua script making wrk POST a form with HTTP Basic client authentication.
fn post_script(dir: &Path, name: &str, body: &str, authorization: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.lua"));
    let lua = format!(
        "wrk.method = \"POST\"\n\
         wrk.body = \"{body}\"\n\
         wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n\
         wrk.headers[\"Authorization\"] = \"{authorization}\"\n"
    );
    std::fs::write(&path, lua)?;
    Ok(path)
}

// --- the flow loop ------------------------------------------------------------------

#[derive(Debug)]
struct FlowResult {
    completed: u64,
    failed: BTreeMap<String, u64>,
    first_failure: Option<String>,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn flow_load(
    http: &reqwest::Client,
    base: &Url,
    secret: &str,
    tasks: u32,
    duration: Duration,
) -> FlowResult {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (http, base, secret, stop) =
            (http.clone(), base.clone(), secret.to_owned(), stop.clone());
        let email = flow_email(task);
        handles.push(tokio::spawn(async move {
            let mut times = Vec::new();
            let mut failures: Vec<FlowError> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match code_flow(&http, &base, &secret, &email).await {
                    Ok(_) => times.push(t.elapsed()),
                    Err(e) => failures.push(e),
                }
            }
            (times, failures)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut times = Vec::new();
    let mut failed = BTreeMap::new();
    let mut first_failure = None;
    for h in handles {
        match h.await {
            Ok((t, f)) => {
                times.extend(t);
                for e in f {
                    first_failure.get_or_insert_with(|| format!("{}: {:#}", e.step, e.error));
                    *failed.entry(e.step.to_owned()).or_insert(0) += 1;
                }
            }
            Err(e) => {
                first_failure.get_or_insert_with(|| format!("task: {e}"));
                *failed.entry("task panicked".to_owned()).or_insert(0) += 1;
            }
        }
    }
    // Flows in flight at the stop are finished and counted: divide by the
    // time until the last one ended.
    let seconds = started.elapsed().as_secs_f64();
    times.sort();
    let pct = |p: f64| {
        if times.is_empty() {
            return 0.0;
        }
        let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1000.0
    };
    FlowResult {
        completed: times.len() as u64,
        failed,
        first_failure,
        seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

// --- report ----------------------------------------------------------------------------

struct Row {
    endpoint: String,
    rate: String,
    /// Every round's rate, in order (empty for the flows).
    rounds: String,
    p50: String,
    p99: String,
    errors: String,
    target: String,
    met: String,
}

fn mark(ok: bool) -> String {
    if ok { "yes".into() } else { "**no**".into() }
}

fn fmt_rate(x: f64) -> String {
    let n = x.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
            s.push_str(&String::from_utf8_lossy(&o.stderr));
            s.lines().next().unwrap_or("").trim().to_owned()
        })
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "?".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "?".into());
    vec![
        ("date (UTC)", date),
        ("code", code_version()),
        ("nproc", command_line("nproc", &[])),
        ("CPU", cpu),
        ("memory", memory),
        ("kernel", command_line("uname", &["-sr"])),
        ("OS", os),
        ("wrk", command_line("wrk", &["-v"])),
        ("PostgreSQL", command_line("psql", &["--version"])),
        ("Redis", command_line("redis-server", &["--version"])),
    ]
}

/// Requests per route and status, from the server's own `/metrics` (on the
/// admin listener).
async fn server_counts(
    http: &reqwest::Client,
    base: &Url,
) -> Result<BTreeMap<(String, String), BTreeMap<u16, u64>>> {
    let text = http
        .get(base.join("/metrics")?)
        .send()
        .await?
        .text()
        .await?;
    let mut counts: BTreeMap<(String, String), BTreeMap<u16, u64>> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("idp_http_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let (Some(method), Some(route), Some(status)) =
            (label("method"), label("route"), label("status"))
        else {
            continue;
        };
        let n = value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        *counts
            .entry((route, method))
            .or_default()
            .entry(status.parse().unwrap_or(0))
            .or_insert(0) += n;
    }
    Ok(counts)
}

/// `section.key` of `idp check-config` (TOML), as written.
async fn effective_config(args: &Args) -> Result<BTreeMap<String, String>> {
    let out = tokio::process::Command::new(&args.idp)
        .arg("check-config")
        .current_dir(&args.workdir)
        .output()
        .await?;
    ensure!(
        out.status.success(),
        "idp check-config: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mut section = String::new();
    let mut values = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = line.split_once(" = ") {
            values.insert(format!("{section}.{k}"), v.trim_matches('"').to_owned());
        }
    }
    Ok(values)
}

/// The `alg` in a JWT's header.
fn jwt_alg(token: &str) -> String {
    token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h["alg"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The commit the server was built from, and whether its sources differ from it.
fn code_version() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["log", "-1", "--format=%h %s"]) else {
        return "?".into();
    };
    match git(&[
        "status",
        "--porcelain",
        "--",
        "idp",
        "migrations",
        "themes",
        "Cargo.lock",
    ]) {
        Some(changes) if !changes.is_empty() => {
            format!("{head} (plus uncommitted changes to the server)")
        }
        _ => head,
    }
}

// --- main -------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    if args.full.is_some() {
        return scale::run(&args).await;
    }
    let base = args.url.clone();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("idp-bench/1.0")
        .pool_max_idle_per_host(64)
        .build()?;

    say(format!("waiting for {base} (pid {})", args.pid));
    wait_ready(&http, &args).await?;

    // 1. A user and a client, as an operator makes them.
    say("creating the user and the client with the idp command");
    idp_json(
        &args,
        &[
            "user",
            "create",
            "--email",
            USER_EMAIL,
            "--password",
            USER_PASSWORD,
            "--name",
            "Bench User",
            "--verified",
        ],
    )
    .await?;
    let client = idp_json(
        &args,
        &[
            "client",
            "create",
            "--client-id",
            CLIENT_ID,
            "--name",
            "Benchmark",
            "--redirect-uri",
            REDIRECT_URI,
            "--first-party",
            "--grant",
            "authorization_code",
            "--grant",
            "refresh_token",
            "--grant",
            "client_credentials",
        ],
    )
    .await?;
    let secret = client["client_secret"]
        .as_str()
        .ok_or_else(|| anyhow!("no client_secret in {client}"))?
        .to_owned();
    let client_auth = basic(CLIENT_ID, &secret);

    // 2. Idle: started, nothing asked of it but /readyz.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = memory(args.pid)?;
    say(format!("RSS idle: {:.1} MiB", mib(rss_idle.rss)));

    // 3. Tokens.
    let cc = http
        .post(base.join("/token")?)
        .header(AUTHORIZATION, &client_auth)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?;
    ensure!(
        cc.status() == StatusCode::OK,
        "client_credentials: {}",
        cc.status()
    );
    let cc: Value = cc.json().await?;
    ensure!(cc["access_token"].is_string(), "client_credentials: {cc}");
    create_flow_users(&args, None, args.connections).await?;
    let user_tokens = code_flow(&http, &base, &secret, USER_EMAIL)
        .await
        .map_err(|e| anyhow!("the first code flow failed at {}: {:#}", e.step, e.error))?;
    let user_token = user_tokens["access_token"]
        .as_str()
        .ok_or_else(|| anyhow!("no access_token"))?
        .to_owned();
    let access_alg = jwt_alg(&user_token);
    let id_alg = jwt_alg(user_tokens["id_token"].as_str().unwrap_or(""));
    let config = effective_config(&args).await?;
    let setting = |key: &str| config.get(key).cloned().unwrap_or_else(|| "?".into());
    say("got a client_credentials token and a user token (one full code flow)");
    let rss_one_sign_in = memory(args.pid)?;

    // 4. Each endpoint: one checked answer, then wrk.
    let dir = tempfile::tempdir()?;
    let token_script = post_script(
        dir.path(),
        "token",
        "grant_type=client_credentials",
        &client_auth,
    )?;
    let introspect_script = post_script(
        dir.path(),
        "introspect",
        &format!("token={user_token}"),
        &client_auth,
    )?;
    let bearer = format!("Authorization: Bearer {user_token}");

    struct Load<'a> {
        name: &'a str,
        path: &'a str,
        target: f64,
        header: Option<&'a str>,
        script: Option<&'a Path>,
    }
    let loads = [
        Load {
            name: "discovery `GET /.well-known/openid-configuration`",
            path: "/.well-known/openid-configuration",
            target: 40_000.0,
            header: None,
            script: None,
        },
        Load {
            name: "JWKS `GET /jwks`",
            path: "/jwks",
            target: 40_000.0,
            header: None,
            script: None,
        },
        Load {
            name: "token `POST /token` (client_credentials, basic auth)",
            path: "/token",
            target: 12_000.0,
            header: None,
            script: Some(&token_script),
        },
        Load {
            name: "introspection `POST /introspect` (user access token, basic auth)",
            path: "/introspect",
            target: 10_000.0,
            header: None,
            script: Some(&introspect_script),
        },
        Load {
            name: "userinfo `GET /userinfo` (bearer)",
            path: "/userinfo",
            target: 10_000.0,
            header: Some(&bearer),
            script: None,
        },
    ];

    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut cpu_rows: Vec<(String, [f64; 6])> = Vec::new();
    // The yardstick first: what a bare axum handler does on this machine now.
    if let Some(bare) = &args.bare_url {
        let mut runs = Vec::new();
        for _ in 0..args.rounds {
            let run = wrk(&args, bare, None, None)?;
            say(format!("bare axum: {:.0} req/s", run.rps));
            runs.push(run);
        }
        let rounds: Vec<String> = runs.iter().map(|r| fmt_rate(r.rps)).collect();
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let r = runs.swap_remove(runs.len() / 2);
        rows.push(Row {
            endpoint: "yardstick: a bare axum handler, static JSON of the same size (not the IdP)"
                .into(),
            rate: fmt_rate(r.rps),
            rounds: rounds.join(" / "),
            p50: r.p50,
            p99: r.p99,
            errors: r.errors.to_string(),
            target: "— (~70,000 on the issue's machine)".into(),
            met: "—".into(),
        });
    }
    for load in &loads {
        let url = base.join(load.path)?;
        // The same request wrk will send, once, checked.
        let sample = match load.path {
            "/token" => http
                .post(url.clone())
                .header(AUTHORIZATION, &client_auth)
                .form(&[("grant_type", "client_credentials")]),
            "/introspect" => http
                .post(url.clone())
                .header(AUTHORIZATION, &client_auth)
                .form(&[("token", user_token.as_str())]),
            "/userinfo" => http
                .get(url.clone())
                .header(AUTHORIZATION, format!("Bearer {user_token}")),
            _ => http.get(url.clone()),
        }
        .send()
        .await?;
        let status = sample.status();
        let body: Value = sample.json().await.unwrap_or(Value::Null);
        ensure!(
            status == StatusCode::OK,
            "{}: sample answer {status}: {body}",
            load.path
        );
        match load.path {
            "/introspect" => ensure!(body["active"] == true, "introspection: {body}"),
            "/userinfo" => ensure!(body["sub"].is_string(), "userinfo: {body}"),
            "/token" => ensure!(body["access_token"].is_string(), "token: {body}"),
            "/jwks" => ensure!(body["keys"].is_array(), "jwks: {body}"),
            _ => ensure!(body["issuer"].is_string(), "discovery: {body}"),
        }
        say(format!(
            "{}: sample 200; {} rounds of wrk -t{} -c{} -d{}s",
            load.path, args.rounds, args.threads, args.connections, args.duration
        ));
        let before = cpu_sample(&args);
        let mut runs = Vec::new();
        for _ in 0..args.rounds {
            let run = wrk(&args, &url, load.header, load.script)?;
            say(format!(
                "{}: {:.0} req/s, p50 {}, p99 {}, {} errors",
                load.path, run.rps, run.p50, run.p99, run.errors
            ));
            runs.push(run);
        }
        cpu_rows.push((load.path.to_owned(), cpu_shares(before, cpu_sample(&args))));
        let rounds: Vec<String> = runs.iter().map(|r| fmt_rate(r.rps)).collect();
        let errors: u64 = runs.iter().map(|r| r.errors).sum();
        runs.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        let mut r = runs.swap_remove(runs.len() / 2);
        r.errors = errors;
        if r.errors > 0 {
            notes.push(format!(
                "{}: {} ({} requests)",
                load.path, r.error_detail, r.requests
            ));
        }
        ensure!(
            alive(args.pid),
            "the server exited during the load of {}",
            load.path
        );
        rows.push(Row {
            endpoint: load.name.to_owned(),
            rate: fmt_rate(r.rps),
            rounds: rounds.join(" / "),
            p50: r.p50.clone(),
            p99: r.p99.clone(),
            errors: r.errors.to_string(),
            target: format!("≥ {}", fmt_rate(load.target)),
            met: mark(r.rps >= load.target && r.errors == 0),
        });
    }
    // The user token is still good after all that (not expired, not revoked).
    let again: Value = http
        .post(base.join("/introspect")?)
        .header(AUTHORIZATION, &client_auth)
        .form(&[("token", user_token.as_str())])
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        again["active"] == true,
        "introspection after the load: {again}"
    );
    let rss_after_endpoints = memory(args.pid)?;
    say(format!(
        "RSS after the endpoint loads: {:.1} MiB",
        mib(rss_after_endpoints.rss)
    ));

    // 5. Complete flows.
    say(format!(
        "authorization-code flows with sign-in: {} tasks for {} s",
        args.connections, args.duration
    ));
    let before = cpu_sample(&args);
    let flows = flow_load(
        &http,
        &base,
        &secret,
        args.connections,
        Duration::from_secs(args.duration),
    )
    .await;
    cpu_rows.push(("flows".to_owned(), cpu_shares(before, cpu_sample(&args))));
    let failed: u64 = flows.failed.values().sum();
    let flow_rate = flows.completed as f64 / flows.seconds;
    say(format!(
        "flows: {} completed in {:.1} s ({flow_rate:.1}/s), {failed} failed",
        flows.completed, flows.seconds
    ));
    if let Some(f) = &flows.first_failure {
        notes.push(format!(
            "flows: {failed} failed ({:?}); first: {f}",
            flows.failed
        ));
    }
    ensure!(alive(args.pid), "the server exited during the flows");
    rows.push(Row {
        endpoint: "complete authorization-code flow (5 requests, sign-in with argon2id included)"
            .into(),
        rate: format!("{flow_rate:.1} flows/s"),
        rounds: String::new(),
        p50: format!("{:.1}ms", flows.p50_ms),
        p99: format!("{:.1}ms", flows.p99_ms),
        errors: failed.to_string(),
        target: "— (measured)".into(),
        met: "—".into(),
    });

    // 6. Memory after the load.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = memory(args.pid)?;
    let rss_peak = proc_status_kb(args.pid, "VmHWM")?;
    say(format!("RSS after the load: {:.1} MiB", mib(rss_after.rss)));
    // tokio ends blocking-pool threads (where argon2 runs) after 10 s idle;
    // what they held may go with them.
    say("waiting 15 s for the server's idle threads to end");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let rss_settled = memory(args.pid)?;
    say(format!(
        "RSS 15 s after the load: {:.1} MiB",
        mib(rss_settled.rss)
    ));
    let counts = match &args.admin_url {
        Some(admin) => server_counts(&http, admin).await.unwrap_or_default(),
        None => BTreeMap::new(),
    };

    // The report.
    let mut md = String::new();
    writeln!(md, "### Results")?;
    writeln!(md)?;
    writeln!(
        md,
        "wrk `-t{} -c{} -d{}s --latency` per endpoint, {} rounds in a row (the row is the median round); flows: {} concurrent tasks for {} s. \
         PostgreSQL + Redis on loopback, release build, default configuration: \
         argon2id m={} KiB t={} p={} (at most {} at once), access tokens {access_alg}, \
         the client's ID tokens {id_alg}, {} database connections.",
        args.threads,
        args.connections,
        args.duration,
        args.rounds,
        args.connections,
        args.duration,
        setting("password_hashing.memory_kib"),
        setting("password_hashing.iterations"),
        setting("password_hashing.parallelism"),
        setting("password_hashing.max_concurrent"),
        setting("database.max_connections"),
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| endpoint | req/s (median) | rounds (req/s) | p50 | p99 | errors | target | met? |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|:---:|")?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r.endpoint, r.rate, r.rounds, r.p50, r.p99, r.errors, r.target, r.met
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "| server memory (VmRSS of `idp serve`) | MiB | anonymous | file-backed | target | met? |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|:---:|")?;
    let mem_rows = [
        ("idle (started, keys loaded, no traffic)", rss_idle, false),
        (
            "after one sign-in (the first code flow)",
            rss_one_sign_in,
            false,
        ),
        ("after the endpoint loads", rss_after_endpoints, false),
        ("after the load (endpoints + flows)", rss_after, true),
        (
            "15 s after the load (idle blocking threads ended)",
            rss_settled,
            false,
        ),
    ];
    for (label, m, judged) in mem_rows {
        let (target, met) = if judged {
            (
                format!("< {RSS_TARGET_MIB:.0}"),
                mark(mib(m.rss) < RSS_TARGET_MIB),
            )
        } else {
            (String::new(), String::new())
        };
        writeln!(
            md,
            "| {label} | {:.1} | {:.1} | {:.1} | {target} | {met} |",
            mib(m.rss),
            mib(m.anon),
            mib(m.file)
        )?;
    }
    writeln!(md, "| peak (VmHWM) | {:.1} | | | | |", mib(rss_peak))?;
    writeln!(md)?;
    writeln!(
        md,
        "Where the CPU went during each load, in % of all {} cores' time \
         (from /proc; the load tool is wrk, or this driver for the flows):",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| load | idp | PostgreSQL | Redis | load tool | other | idle |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---:|")?;
    for (name, shares) in &cpu_rows {
        let cells: Vec<String> = shares.iter().map(|x| format!("{x:.0}%")).collect();
        writeln!(md, "| {name} | {} |", cells.join(" | "))?;
    }
    writeln!(md)?;
    let busiest = cpu_rows
        .iter()
        .map(|(name, shares)| (name, shares[4]))
        .fold(None::<(&String, f64)>, |best, (n, o)| match best {
            Some((_, b)) if b >= o => best,
            _ => Some((n, o)),
        });
    if let Some((name, other)) = busiest
        && other > 5.0
    {
        let warning = format!(
            "**The machine was not quiet**: other processes took up to {other:.0}% of the CPU \
             (during {name}); the figures above are lower than this machine can do. \
             Re-run when nothing else is running."
        );
        say(&warning);
        writeln!(md, "{warning}")?;
        writeln!(md)?;
    }
    if !notes.is_empty() {
        writeln!(md, "Errors seen:")?;
        writeln!(md)?;
        for n in &notes {
            writeln!(md, "- {n}")?;
        }
        writeln!(md)?;
    }
    if !counts.is_empty() {
        writeln!(md, "Answers counted by the server (`/metrics`), whole run:")?;
        writeln!(md)?;
        writeln!(md, "| route | statuses |")?;
        writeln!(md, "|---|---|")?;
        for ((route, method), statuses) in &counts {
            let s: Vec<String> = statuses
                .iter()
                .map(|(code, n)| format!("{code}: {n}"))
                .collect();
            writeln!(md, "| {method} {route} | {} |", s.join(", "))?;
        }
        writeln!(md)?;
    }
    writeln!(
        md,
        "Machine (the server, PostgreSQL, Redis and the load tool share it):"
    )?;
    writeln!(md)?;
    for (k, v) in machine() {
        writeln!(md, "- {k}: {v}")?;
    }
    println!("{md}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, &md).with_context(|| format!("writing {}", args.out.display()))?;
    say(format!("written to {}", args.out.display()));
    Ok(())
}

// --- scale mode ---------------------------------------------------------------------------------

/// `scripts/bench --scale`: the same loads on a server whose database is
/// empty and on one whose database holds years of data, in interleaved
/// rounds, compared as medians.
mod scale {
    use super::*;

    /// One server, ready to be loaded.
    struct Side {
        label: &'static str,
        base: Url,
        admin: Url,
        pid: u32,
        secret: String,
        client_auth: String,
        user_token: String,
        admin_token: String,
        user_id: String,
    }

    /// The benchmark's user and a client that may also call the admin API
    /// (client_credentials with the `admin` scope), created with the `idp`
    /// command on `db`; then one code flow for a user token.
    async fn prepare(
        http: &reqwest::Client,
        args: &Args,
        label: &'static str,
        base: &Url,
        admin: &Url,
        pid: u32,
        db: &str,
    ) -> Result<Side> {
        say(format!("{label}: waiting for {base} (pid {pid})"));
        wait_ready_at(http, base, pid).await?;
        idp_json_on(
            args,
            Some(db),
            &[
                "user",
                "create",
                "--email",
                USER_EMAIL,
                "--password",
                USER_PASSWORD,
                "--name",
                "Bench User",
                "--verified",
            ],
        )
        .await?;
        let mut cli = vec![
            "client",
            "create",
            "--client-id",
            CLIENT_ID,
            "--name",
            "Benchmark",
            "--redirect-uri",
            REDIRECT_URI,
            "--first-party",
        ];
        for grant in ["authorization_code", "refresh_token", "client_credentials"] {
            cli.extend(["--grant", grant]);
        }
        for scope in ["openid", "profile", "email", "offline_access", "admin"] {
            cli.extend(["--scope", scope]);
        }
        let client = idp_json_on(args, Some(db), &cli).await?;
        let secret = client["client_secret"]
            .as_str()
            .ok_or_else(|| anyhow!("no client_secret in {client}"))?
            .to_owned();
        let client_auth = basic(CLIENT_ID, &secret);
        let answer: Value = http
            .post(base.join("/token")?)
            .header(AUTHORIZATION, &client_auth)
            .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
            .send()
            .await?
            .json()
            .await?;
        let admin_token = answer["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("{label}: no admin token: {answer}"))?
            .to_owned();
        // The audit page measured is that of the first flow task's account:
        // the flows (run first) give it a history of sign-ins.
        let history_user = create_flow_users(args, Some(db), args.connections)
            .await?
            .swap_remove(0);
        let tokens = code_flow(http, base, &secret, USER_EMAIL)
            .await
            .map_err(|e| {
                anyhow!(
                    "{label}: the first code flow failed at {}: {:#}",
                    e.step,
                    e.error
                )
            })?;
        let user_token = tokens["access_token"]
            .as_str()
            .ok_or_else(|| anyhow!("no access_token"))?
            .to_owned();
        Ok(Side {
            label,
            base: base.clone(),
            admin: admin.clone(),
            pid,
            secret,
            client_auth,
            user_token,
            admin_token,
            user_id: history_user,
        })
    }

    /// What one load sends to one side: URL, header, Lua script.
    struct Request {
        url: Url,
        header: Option<String>,
        script: Option<PathBuf>,
    }

    #[derive(Clone, Copy)]
    enum Kind {
        Discovery,
        Jwks,
        Token,
        Introspect,
        Userinfo,
        UserSearch,
        AuditPage,
    }

    const LOADS: [(Kind, &str); 7] = [
        (
            Kind::Discovery,
            "discovery `GET /.well-known/openid-configuration`",
        ),
        (Kind::Jwks, "JWKS `GET /jwks`"),
        (Kind::Token, "token `POST /token` (client_credentials)"),
        (Kind::Introspect, "introspection `POST /introspect`"),
        (Kind::Userinfo, "userinfo `GET /userinfo`"),
        (
            Kind::UserSearch,
            "admin user search by email prefix `GET /admin/api/users?q=bench.user`",
        ),
        (
            Kind::AuditPage,
            "one user's audit page `GET /admin/api/audit-events?user_id=…` (a flow account: 50 of its sign-ins)",
        ),
    ];

    fn request(side: &Side, kind: Kind, dir: &Path) -> Result<Request> {
        let bearer = |t: &str| Some(format!("Authorization: Bearer {t}"));
        let name = format!("{}-{}", side.label, kind as u8);
        Ok(match kind {
            Kind::Discovery => Request {
                url: side.base.join("/.well-known/openid-configuration")?,
                header: None,
                script: None,
            },
            Kind::Jwks => Request {
                url: side.base.join("/jwks")?,
                header: None,
                script: None,
            },
            Kind::Token => Request {
                url: side.base.join("/token")?,
                header: None,
                script: Some(post_script(
                    dir,
                    &name,
                    "grant_type=client_credentials",
                    &side.client_auth,
                )?),
            },
            Kind::Introspect => Request {
                url: side.base.join("/introspect")?,
                header: None,
                script: Some(post_script(
                    dir,
                    &name,
                    &format!("token={}", side.user_token),
                    &side.client_auth,
                )?),
            },
            Kind::Userinfo => Request {
                url: side.base.join("/userinfo")?,
                header: bearer(&side.user_token),
                script: None,
            },
            Kind::UserSearch => Request {
                url: side.admin.join("/admin/api/users?q=bench.user")?,
                header: bearer(&side.admin_token),
                script: None,
            },
            Kind::AuditPage => Request {
                url: side
                    .admin
                    .join(&format!("/admin/api/audit-events?user_id={}", side.user_id))?,
                header: bearer(&side.admin_token),
                script: None,
            },
        })
    }

    /// The request once, checked: 200 and the expected content.
    async fn check(http: &reqwest::Client, side: &Side, kind: Kind, r: &Request) -> Result<()> {
        let mut builder = match kind {
            Kind::Token => http
                .post(r.url.clone())
                .header(AUTHORIZATION, &side.client_auth)
                .form(&[("grant_type", "client_credentials")]),
            Kind::Introspect => http
                .post(r.url.clone())
                .header(AUTHORIZATION, &side.client_auth)
                .form(&[("token", side.user_token.as_str())]),
            _ => http.get(r.url.clone()),
        };
        if let Some(h) = &r.header
            && let Some((k, v)) = h.split_once(": ")
        {
            builder = builder.header(k, v);
        }
        let answer = builder.send().await?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        ensure!(
            status == StatusCode::OK,
            "{}: {} {status}: {body}",
            side.label,
            r.url
        );
        let ok = match kind {
            Kind::Discovery => body["issuer"].is_string(),
            Kind::Jwks => body["keys"].is_array(),
            Kind::Token => body["access_token"].is_string(),
            Kind::Introspect => body["active"] == true,
            Kind::Userinfo => body["sub"].is_string(),
            Kind::UserSearch => body["items"][0]["email"] == USER_EMAIL,
            Kind::AuditPage => body["items"].as_array().is_some_and(|i| {
                !i.is_empty() && i.iter().all(|e| e["user_id"] == side.user_id.as_str())
            }),
        };
        ensure!(
            ok,
            "{}: unexpected answer from {}: {body}",
            side.label,
            r.url
        );
        Ok(())
    }

    /// A wrk latency ("980.00us", "1.86ms", "1.02s") in milliseconds.
    fn latency_ms(text: &str) -> f64 {
        let t = text.trim();
        let (number, factor) = if let Some(n) = t.strip_suffix("us") {
            (n, 0.001)
        } else if let Some(n) = t.strip_suffix("ms") {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1000.0)
        } else {
            (t, 1.0)
        };
        number.parse::<f64>().map_or(f64::NAN, |n| n * factor)
    }

    fn median(mut xs: Vec<f64>) -> f64 {
        xs.sort_by(f64::total_cmp);
        match xs.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => xs[n / 2],
            n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
        }
    }

    /// Rounds of one side: (rate, p99 in ms, errors).
    #[derive(Default)]
    struct Rounds {
        rates: Vec<f64>,
        p99s: Vec<f64>,
        errors: u64,
    }

    struct ScaleRow {
        name: String,
        unit: &'static str,
        empty: Rounds,
        full: Rounds,
    }

    /// Round `r` runs the empty side first when even, the full one first
    /// when odd: neither always gets the machine's warmer or cooler moment.
    fn order(r: usize) -> [usize; 2] {
        if r.is_multiple_of(2) { [0, 1] } else { [1, 0] }
    }

    pub(super) async fn run(args: &Args) -> Result<()> {
        let full = args
            .full
            .as_ref()
            .ok_or_else(|| anyhow!("not in scale mode"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("idp-bench/1.0")
            .pool_max_idle_per_host(64)
            .build()?;
        let empty_admin = args
            .admin_url
            .clone()
            .ok_or_else(|| anyhow!("scale mode needs --admin-url"))?;
        let sides = [
            prepare(
                &http,
                args,
                "empty",
                &args.url,
                &empty_admin,
                args.pid,
                &full.empty_db,
            )
            .await?,
            prepare(
                &http,
                args,
                "full",
                &full.url,
                &full.admin_url,
                full.pid,
                &full.full_db,
            )
            .await?,
        ];
        let mut rows: Vec<ScaleRow> = Vec::new();

        // Sign-in first: complete code flows (argon2id included). They also
        // give the benchmark's user a history for its audit page.
        let mut flows = ScaleRow {
            name: "sign-in: complete authorization-code flow (5 requests, argon2id)".into(),
            unit: "flows/s",
            empty: Rounds::default(),
            full: Rounds::default(),
        };
        for r in 0..args.rounds {
            for i in order(r) {
                let side = &sides[i];
                let f = flow_load(
                    &http,
                    &side.base,
                    &side.secret,
                    args.connections,
                    Duration::from_secs(args.duration),
                )
                .await;
                let rate = f.completed as f64 / f.seconds;
                let failed: u64 = f.failed.values().sum();
                say(format!(
                    "flows on {}: {rate:.1}/s, p99 {:.0} ms, {failed} failed{}",
                    side.label,
                    f.p99_ms,
                    f.first_failure
                        .map(|e| format!(" (first: {e})"))
                        .unwrap_or_default()
                ));
                let rounds = if i == 0 {
                    &mut flows.empty
                } else {
                    &mut flows.full
                };
                rounds.rates.push(rate);
                rounds.p99s.push(f.p99_ms);
                rounds.errors += failed;
            }
        }
        rows.push(flows);

        let dir = tempfile::tempdir()?;
        for (kind, name) in LOADS {
            let requests = [
                request(&sides[0], kind, dir.path())?,
                request(&sides[1], kind, dir.path())?,
            ];
            for (side, r) in sides.iter().zip(&requests) {
                check(&http, side, kind, r).await?;
            }
            let mut row = ScaleRow {
                name: name.to_owned(),
                unit: "req/s",
                empty: Rounds::default(),
                full: Rounds::default(),
            };
            for round in 0..args.rounds {
                for i in order(round) {
                    let r = &requests[i];
                    let w = wrk(args, &r.url, r.header.as_deref(), r.script.as_deref())?;
                    say(format!(
                        "{name} on {}: {:.0} req/s, p99 {}, {} errors",
                        sides[i].label, w.rps, w.p99, w.errors
                    ));
                    let rounds = if i == 0 {
                        &mut row.empty
                    } else {
                        &mut row.full
                    };
                    rounds.rates.push(w.rps);
                    rounds.p99s.push(latency_ms(&w.p99));
                    rounds.errors += w.errors;
                }
            }
            for s in &sides {
                ensure!(alive(s.pid), "the {} server exited", s.label);
            }
            rows.push(row);
        }

        let mut md = String::new();
        writeln!(
            md,
            "### Cost as data grows: an empty database and a full one"
        )?;
        writeln!(md)?;
        if let Some(p) = &args.preamble {
            md.push_str(&std::fs::read_to_string(p).unwrap_or_default());
            writeln!(md)?;
        }
        writeln!(
            md,
            "Two `idp serve` (release, default configuration) on one PostgreSQL cluster and one Redis:              one on an empty database, one on the full one. Each load is wrk `-t{} -c{} -d{}s --latency`              (the flows: {} tasks for {} s), {} rounds per side, interleaved (empty then full,              then full then empty, ...). The figures are the medians of the rounds; p99 is the              median of the rounds' p99. Target: the full figure within 1.2x of the empty one.",
            args.threads,
            args.connections,
            args.duration,
            args.connections,
            args.duration,
            args.rounds
        )?;
        writeln!(md)?;
        writeln!(
            md,
            "| endpoint | empty: rate | full: rate | empty ÷ full | empty: p99 | full: p99 | rounds, empty | rounds, full | errors | within 1.2x? |"
        )?;
        writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")?;
        for row in &rows {
            let (e, f) = (
                median(row.empty.rates.clone()),
                median(row.full.rates.clone()),
            );
            let fmt = |x: f64| {
                if row.unit == "flows/s" {
                    format!("{x:.1}")
                } else {
                    fmt_rate(x)
                }
            };
            let list = |r: &Rounds| {
                r.rates
                    .iter()
                    .map(|x| fmt(*x))
                    .collect::<Vec<_>>()
                    .join(" / ")
            };
            writeln!(
                md,
                "| {} | {} {} | {} {} | {:.2} | {:.2}ms | {:.2}ms | {} | {} | {} | {} |",
                row.name,
                fmt(e),
                row.unit,
                fmt(f),
                row.unit,
                e / f,
                median(row.empty.p99s.clone()),
                median(row.full.p99s.clone()),
                list(&row.empty),
                list(&row.full),
                row.empty.errors + row.full.errors,
                mark(f * 1.2 >= e && row.empty.errors + row.full.errors == 0),
            )?;
        }
        writeln!(md)?;
        writeln!(
            md,
            "Machine (both servers, PostgreSQL, Redis and the load tool share it):"
        )?;
        writeln!(md)?;
        for (k, v) in machine() {
            writeln!(md, "- {k}: {v}")?;
        }
        println!("{md}");
        if let Some(parent) = args.out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&args.out, &md)
            .with_context(|| format!("writing {}", args.out.display()))?;
        say(format!("written to {}", args.out.display()));
        Ok(())
    }
}
