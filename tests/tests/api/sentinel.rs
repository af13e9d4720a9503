//! Redis behind Sentinel: a node follows the primary through a failover.
//!
//! The test starts its own primary, replica and three sentinels on free
//! loopback ports (the `redis-server` of `IDP_TEST_REDIS_SERVER`, set by
//! `scripts/test`), and stops every one of them when it ends (`Drop`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::{Backend, TestApp};

const SERVICE: &str = "idp-primary";
const PW: &str = "Correct-Horse-Battery-9";

/// A primary, a replica and three sentinels, each a child process.
struct SentinelSet {
    dir: tempfile::TempDir,
    /// Ports of the two data nodes; which one is the primary changes.
    nodes: [u16; 2],
    sentinels: [u16; 3],
    children: Vec<(u16, Child)>,
}

impl SentinelSet {
    fn start() -> Self {
        let mut set = Self {
            dir: tempfile::tempdir().unwrap(),
            nodes: [tests::free_port(), tests::free_port()],
            sentinels: [tests::free_port(), tests::free_port(), tests::free_port()],
            children: Vec::new(),
        };
        let [primary, replica] = set.nodes;
        set.spawn_node(primary, None);
        set.spawn_node(replica, Some(primary));
        for port in set.sentinels {
            let conf = set.dir.path().join(format!("sentinel-{port}.conf"));
            // Sentinel rewrites its file (what it learns), so each has its own.
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel announce-ip 127.0.0.1\n\
                     sentinel monitor {SERVICE} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {SERVICE} 1000\n\
                     sentinel failover-timeout {SERVICE} 3000\n\
                     sentinel parallel-syncs {SERVICE} 1\n",
                    dir = set.dir.path().display()
                ),
            )
            .unwrap();
            let child = Command::new(redis_server())
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server --sentinel starts");
            set.children.push((port, child));
            wait_for_port(port);
        }
        // Ready when every sentinel knows the replica: a failover needs one.
        set.wait_until("every sentinel sees the replica", |set| {
            set.sentinels
                .iter()
                .all(|&s| cli(s, &["sentinel", "replicas", SERVICE]).contains(&replica.to_string()))
        });
        set
    }

    fn spawn_node(&mut self, port: u16, replica_of: Option<u16>) {
        let mut cmd = Command::new(redis_server());
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--dbfilename", &format!("dump-{port}.rdb")]);
        if let Some(primary) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (set IDP_TEST_REDIS_SERVER or install redis-server)");
        self.children.push((port, child));
        wait_for_port(port);
    }

    fn addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The primary's port as the first sentinel reports it.
    fn primary(&self) -> u16 {
        let reply = cli(
            self.sentinels[0],
            &["sentinel", "get-master-addr-by-name", SERVICE],
        );
        reply
            .lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no primary reported: {reply:?}"))
    }

    /// Waits until every sentinel reports `port` as the primary.
    fn wait_for_primary(&self, port: u16) {
        self.wait_until("every sentinel reports the new primary", |set| {
            set.sentinels.iter().all(|&s| {
                cli(s, &["sentinel", "get-master-addr-by-name", SERVICE])
                    .lines()
                    .nth(1)
                    == Some(&port.to_string())
            })
        });
    }

    fn kill(&mut self, port: u16) {
        if let Some(i) = self.children.iter().position(|(p, _)| *p == port) {
            let (_, mut child) = self.children.remove(i);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_until(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out waiting until {what}");
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn redis_server() -> String {
    std::env::var("IDP_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into())
}

/// `redis-cli` from the same folder as the server.
fn redis_cli() -> PathBuf {
    let server = redis_server();
    match Path::new(&server).parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join("redis-cli"),
        _ => PathBuf::from("redis-cli"),
    }
}

/// One command through `redis-cli`; its reply as text (empty on failure).
fn cli(port: u16, args: &[&str]) -> String {
    Command::new(redis_cli())
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// Within `within`, a new sign-in succeeds and then a page that needs the
/// session answers 200 (first of all, with `kept`, the session signed in
/// before). Failures before that (requests meeting the failover) are
/// counted, not fatal.
async fn carries_on(app: &TestApp, within: Duration, kept: bool) -> u32 {
    let deadline = Instant::now() + within;
    let mut failed = 0;
    let mut session_seen = !kept;
    loop {
        let last = if session_seen {
            // `sign_in` insists on its form page: ask for it first.
            let form = app.page("/login").await;
            if form.status != StatusCode::OK {
                failed += 1;
                assert!(
                    Instant::now() < deadline,
                    "the node did not carry on within {within:?} (last: /login {})",
                    form.status
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let signed = app.sign_in("ada@example.com", PW).await;
            let account = app.page("/account").await;
            if signed.status == StatusCode::SEE_OTHER && account.status == StatusCode::OK {
                return failed;
            }
            format!("sign-in {}, /account {}", signed.status, account.status)
        } else {
            let account = app.page("/account").await;
            session_seen = account.status == StatusCode::OK;
            if session_seen {
                continue;
            }
            format!("/account with the old session {}", account.status)
        };
        failed += 1;
        assert!(
            Instant::now() < deadline,
            "the node did not carry on within {within:?} (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Requests sent all along (a page that needs the session), so some are in
/// flight when the primary changes; stopped by dropping the handle.
struct Traffic(tokio::task::JoinHandle<()>);

impl Traffic {
    fn start(app: &TestApp) -> Self {
        let http = app.http.clone();
        let url = app.url("/account");
        Self(tokio::spawn(async move {
            loop {
                let _ = http.get(&url).send().await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }))
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Once the node carried on, it keeps working: no request fails.
async fn stays_up(app: &TestApp) {
    for _ in 0..10 {
        assert_eq!(
            app.sign_in("ada@example.com", PW).await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(app.page("/account").await.status, StatusCode::OK);
    }
}

/// A node configured with the sentinels follows the primary: through a
/// failover asked of Sentinel (the old primary is demoted to a replica and
/// answers writes with READONLY), and through a crash of the primary. The
/// session made before the first failover survives it (it was replicated),
/// and the node's writes land on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_follows_the_primary_through_sentinel_failovers() {
    let mut redis = SentinelSet::start();
    let first = redis.primary();
    let addresses = redis.addresses();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.redis.url = None;
        c.redis.sentinel = Some(idp::config::SentinelConfig {
            addresses,
            service: SERVICE.into(),
            ..Default::default()
        });
    })
    .await;
    app.create_user("ada@example.com", PW, "Ada").await;
    app.signed_in("ada@example.com", PW).await;
    assert_eq!(app.page("/account").await.status, StatusCode::OK);
    // The session is on the replica too before the failover starts.
    let second = *redis.nodes.iter().find(|&&p| p != first).unwrap();
    redis.wait_until("the replica has the session", |_| {
        cli(second, &["dbsize"]).trim() != "0"
    });

    // 1. A failover asked of Sentinel: the replica is promoted, the old
    // primary becomes its replica.
    let traffic = Traffic::start(&app);
    let reply = cli(redis.sentinels[0], &["sentinel", "failover", SERVICE]);
    assert_eq!(reply.trim(), "OK", "SENTINEL FAILOVER: {reply:?}");
    redis.wait_for_primary(second);
    // Sentinel demotes the old primary a moment later (it then refuses
    // writes with READONLY and its clients are disconnected).
    redis.wait_until("the old primary is a replica", |_| {
        cli(first, &["role"]).starts_with("slave")
    });
    let failed = carries_on(&app, Duration::from_secs(5), true).await;
    eprintln!("requests failed during the asked failover: {failed}");
    drop(traffic);
    stays_up(&app).await;
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);

    // 2. The primary crashes: Sentinel promotes the other node (after
    // down-after-milliseconds) and the node follows again.
    redis.wait_until("the sentinels see the demoted node as a replica", |set| {
        set.sentinels.iter().all(|&s| {
            let replicas = cli(s, &["sentinel", "replicas", SERVICE]);
            replicas.contains(&first.to_string()) && !replicas.contains("s_down")
        })
    });
    let traffic = Traffic::start(&app);
    redis.kill(second);
    redis.wait_for_primary(first);
    let failed = carries_on(&app, Duration::from_secs(5), false).await;
    eprintln!("requests failed after the crash: {failed}");
    drop(traffic);
    stays_up(&app).await;

    // 3. The sentinels vanish: the primary still answers, but the next
    // failover could not be followed, so the node is not ready.
    for port in redis.sentinels {
        redis.kill(port);
    }
    let mut status = StatusCode::OK;
    for _ in 0..50 {
        status = app.get("/readyz").await.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}
