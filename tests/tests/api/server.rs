//! The server's plumbing as an operator or a load balancer sees it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::{Backend, TestApp};

on_both_backends!(
    health_and_readiness_answer,
    every_response_has_a_request_id,
    metrics_count_requests_per_route,
    metrics_are_served_on_the_admin_listener_only,
    oversized_bodies_are_refused,
    answers_given_before_the_body_was_read_say_the_connection_closes,
    unknown_paths_are_404,
);

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["durable"], "ok");
    assert_eq!(body["ephemeral"], "ok");
}

async fn every_response_has_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.get("/healthz").await;
    let b = app.get("/nope").await;
    let id_a = a.headers()["x-request-id"].to_str().unwrap().to_owned();
    let id_b = b.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!id_a.is_empty());
    assert_ne!(id_a, id_b, "each request gets its own id");
    // An id set by a proxy in front is kept, so logs line up across hops.
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "from-the-proxy-42")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "from-the-proxy-42");
}

async fn metrics_count_requests_per_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..3 {
        app.get("/healthz").await;
    }
    app.get("/does-not-exist/123").await;
    // Served on the admin listener only: the public one does not tell
    // outsiders its per-route and per-status counts.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let metrics = app
        .http
        .get(app.admin_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("idp_http_requests_total{") && l.contains("route=\"/healthz\""))
        .unwrap_or_else(|| panic!("no /healthz counter in:\n{text}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(
        text.contains("idp_http_request_duration_seconds_bucket"),
        "{text}"
    );
    // Unknown paths are folded into one series, not one per path.
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(!text.contains("/does-not-exist/123"), "{text}");
}

/// The public listener does not serve `/metrics` (an outsider would learn
/// per-route and per-status counts); the admin listener does, without
/// authentication, like a scrape target.
async fn metrics_are_served_on_the_admin_listener_only(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/healthz").await;
    let public = app.get("/metrics").await;
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let text = public.text().await.unwrap();
    assert!(!text.contains("idp_http_requests_total"), "{text}");
    let admin = reqwest::get(app.admin_url("/metrics")).await.unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    assert!(
        admin
            .text()
            .await
            .unwrap()
            .contains("idp_http_requests_total")
    );
}

async fn oversized_bodies_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = vec![b'x'; 200 * 1024];
    let response = app
        .http
        .post(app.url("/healthz"))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The body is left unread, so the server closes the connection: it says
    // so, and a client's pool does not send its next request into it.
    assert_eq!(
        response
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    for _ in 0..20 {
        let response = app
            .http
            .post(app.url("/healthz"))
            .body(vec![b'x'; 200 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
}

/// Every answer given before its request's body was read (not only a 413)
/// says `Connection: close`, as the server closes the connection after it;
/// a body that was read keeps the connection.
async fn answers_given_before_the_body_was_read_say_the_connection_closes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let connection = |response: &reqwest::Response| {
        response
            .headers()
            .get("connection")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    // Under the body limit, so only the route leaves the body unread.
    let body = || vec![b'x'; 48 * 1024];
    // A 404, a 405 (GET only) and the admin API's 401 to a caller without
    // credentials: each answered before the body.
    let refusals = [
        (app.url("/nope"), StatusCode::NOT_FOUND),
        (app.url("/jwks"), StatusCode::METHOD_NOT_ALLOWED),
        (app.admin_url("/admin/api/users"), StatusCode::UNAUTHORIZED),
    ];
    for _ in 0..10 {
        for (url, status) in &refusals {
            let refused = app
                .http
                .post(url)
                .header("content-type", "application/json")
                .body(body())
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), *status, "{url}");
            assert_eq!(connection(&refused).as_deref(), Some("close"), "{url}");
        }
        // The pooled client's next requests find a live connection.
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
    // No body, or a length of 0: nothing left unread.
    let empty = app
        .http
        .post(app.url("/nope"))
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::NOT_FOUND);
    assert_eq!(connection(&empty), None);
    // A body read to its end: the connection stays open.
    let read = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(connection(&read), None);
}

async fn unknown_paths_are_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.get("/nope").await.status(), StatusCode::NOT_FOUND);
}

/// A Redis server of this test's own, so it can be stopped and started again.
pub(crate) struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnRedis {
    pub(crate) fn start() -> Self {
        let mut redis = Self {
            port: tests::free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        redis.restart();
        redis
    }

    pub(crate) fn restart(&mut self) {
        let binary =
            std::env::var("IDP_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts (set IDP_TEST_REDIS_SERVER or install redis-server)");
        self.child = Some(child);
        // Wait until it accepts connections.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) async fn wait_for_status(app: &TestApp, want: StatusCode) -> Value {
    let mut last = None;
    // Reconnection is the client library's business and takes real time; poll.
    for _ in 0..100 {
        let response = app.get("/readyz").await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        if status == want {
            return body;
        }
        last = Some((status, body));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("/readyz never answered {want}; last: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_redis_down_and_back_without_restart() {
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.redis.url = Some(idp::config::ConnectionUrl::new(url));
    })
    .await;
    wait_for_status(&app, StatusCode::OK).await;

    redis.stop();
    let body = wait_for_status(&app, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["ephemeral"], "unavailable");
    assert_eq!(body["durable"], "ok");
    // Liveness is not readiness: the process itself is fine.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    redis.restart();
    let body = wait_for_status(&app, StatusCode::OK).await;
    assert_eq!(body["ephemeral"], "ok");
}

/// A request stuck on a frozen dependency is cut at `server.request_timeout_secs`
/// (here 1 s, shorter than the 2 s readiness probe) instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_cut_at_the_configured_timeout() {
    let redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.redis.url = Some(idp::config::ConnectionUrl::new(url));
        c.server.request_timeout_secs = 1;
    })
    .await;
    wait_for_status(&app, StatusCode::OK).await;
    let pid = redis.child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let response = app.get("/readyz").await;
    let status = response.status();
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
}

/// Redis restarted under a running node (without persistence: its data is
/// gone): the first request afterwards that touches Redis is answered as
/// if nothing had happened, not with a 503 for the connection that died
/// with the old server. Each restart checks a different first request: a
/// page that needs a session, a sign-in, `/readyz`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_requests_after_a_redis_restart_succeed() {
    const PW: &str = "Correct-Horse-Battery-9";
    let mut redis = OwnRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_with(Backend::Postgres, |c| {
        c.redis.url = Some(idp::config::ConnectionUrl::new(url));
    })
    .await;
    app.create_user("ada@example.com", PW, "Ada").await;
    app.signed_in("ada@example.com", PW).await;
    assert_eq!(app.page("/account").await.status, StatusCode::OK);

    // A page that needs a session: the session went with Redis' data, so
    // the browser is sent to sign in (not a 503).
    redis.stop();
    redis.restart();
    let account = app.page("/account").await;
    assert_eq!(
        account.status,
        StatusCode::SEE_OTHER,
        "first request after the restart: {}",
        account.text()
    );

    // A sign-in (form, then password) as the first request.
    redis.stop();
    redis.restart();
    app.signed_in("ada@example.com", PW).await;
    assert_eq!(app.page("/account").await.status, StatusCode::OK);

    // Readiness as the first request: ready at once, not after a failure.
    redis.stop();
    redis.restart();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK, "{:?}", ready.text().await);
}
