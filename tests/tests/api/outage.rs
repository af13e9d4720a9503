//! The durable store going away under running nodes: PostgreSQL stopped
//! (a cluster of this test's own, never the shared one) and started again.
//! While it is known to be down, requests that need it are answered at
//! once with a 503, not after the connect timeout each; once it is back,
//! requests succeed again within about a second.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::{Backend, TestApp};

const PW: &str = "Correct-Horse-Battery-9";

/// A PostgreSQL cluster of this test alone, run as the `postgres` user
/// (initdb refuses root) with the binaries in `IDP_TEST_PG_BIN`.
struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = PathBuf::from(tests::env_url("IDP_TEST_PG_BIN"));
        // Under /tmp, not $TMPDIR: the postgres user must reach it.
        let dir = tempfile::Builder::new()
            .prefix("idp-outage.")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("run")).unwrap();
        run(Command::new("chmod").arg("755").arg(dir.path()));
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path()));
        run(Command::new("chmod")
            .arg("700")
            .arg(dir.path().join("data")));
        let pg = Self {
            bin,
            dir,
            port: tests::free_port(),
        };
        pg.as_postgres("initdb", |c| {
            c.arg("-D")
                .arg(pg.data())
                .args([
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-locale",
                    "-E",
                    "UTF8",
                ])
                .arg("--no-sync");
        });
        pg.up();
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs one of the cluster's programs as `postgres`.
    fn as_postgres(&self, program: &str, args: impl FnOnce(&mut Command)) {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .current_dir(self.dir.path());
        args(&mut command);
        run(&mut command);
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().join("run").display()
        );
        self.as_postgres("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("postgres.log"))
                .args(["-w", "-t", "60", "start", "-o", &options]);
        });
    }

    /// Stops it at once (as a crash would).
    fn down(&self) {
        self.as_postgres("pg_ctl", |c| {
            c.arg("-D")
                .arg(self.data())
                .args(["stop", "-m", "immediate", "-w", "-t", "30"]);
        });
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        if Path::new(&self.data().join("postmaster.pid")).exists() {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["stop", "-m", "immediate", "-w", "-t", "30"])
                .current_dir(self.dir.path())
                .output();
        }
    }
}

fn run(command: &mut Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A request's status and how long it took.
async fn timed(request: impl Future<Output = reqwest::Response>) -> (StatusCode, Duration, String) {
    let started = Instant::now();
    let response = request.await;
    let status = response.status();
    let body = response.text().await.unwrap();
    (status, started.elapsed(), body)
}

/// Well under the connect timeout (5 s): a behavioural bound, not a benchmark.
const AT_ONCE: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_fast_while_postgres_is_down_and_succeed_soon_after_it_returns() {
    let pg = OwnPostgres::start();
    let url = pg.url();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.database.url = idp::config::ConnectionUrl::new(url);
        c.database.connect_timeout_secs = 5;
    })
    .await;
    app.create_user("ada@example.com", PW, "Ada").await;
    app.signed_in("ada@example.com", PW).await;
    assert_eq!(app.page("/account").await.status, StatusCode::OK);
    let api = reqwest::Client::new();
    let token_request = || {
        api.post(app.url("/token"))
            .basic_auth("no-such-client", Some("secret"))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };

    pg.down();
    // Every request that needs the database, from the first one on, is
    // answered with a 503 well under the connect timeout: a page (the
    // existing page) and an API endpoint (JSON), several at once too.
    for round in 0..3 {
        let (status, took, body) = timed(async { app.get("/account").await }).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "round {round}: {body}"
        );
        assert!(took < AT_ONCE, "round {round}: /account took {took:?}");
        let (status, took, body) = timed(async { token_request().await.unwrap() }).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "round {round}: {body}"
        );
        assert!(took < AT_ONCE, "round {round}: /token took {took:?}");
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON: {body}"));
        assert!(json["error"].is_string(), "{json}");
        for leak in ["sqlx", "postgres", "connection refused", "Pool"] {
            assert!(
                !body.to_lowercase().contains(&leak.to_lowercase()),
                "{leak} in {body}"
            );
        }
    }
    // More requests at once than the pool has connections: none waits.
    let crowd: Vec<_> = (0..12)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { timed(async { app.get("/account").await }).await })
        })
        .collect();
    for one in crowd {
        let (status, took, body) = one.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(took < AT_ONCE, "a request among several took {took:?}");
    }
    let (status, took, body) = timed(async { app.get("/readyz").await }).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(took < AT_ONCE, "/readyz took {took:?}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["durable"], "unavailable");
    assert_eq!(json["ephemeral"], "ok");

    pg.up();
    let back = Instant::now();
    let mut last = None;
    while back.elapsed() < Duration::from_secs(3) {
        let status = app.page("/account").await.status;
        if status == StatusCode::OK {
            break;
        }
        last = Some(status);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered = back.elapsed();
    assert!(
        recovered < Duration::from_millis(1500),
        "requests succeeded again only after {recovered:?} (last {last:?})"
    );
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    app.other_browser().signed_in("ada@example.com", PW).await;
}
