//! Revoked access tokens stay revoked when the ephemeral store loses its
//! data: a Redis restarted without persistence (here the test's own
//! `redis-server`, killed and started again), or the in-process store of
//! the embedded deployment after the process restarts (here a new node on
//! the same SQLite file). Revoked by `/revoke` or by a code replay, a token
//! must still be refused by `/userinfo` and by introspection afterwards.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use idp::config::ConnectionUrl;
use openidconnect::OAuth2TokenResponse;
use openidconnect::core::CoreRevocableToken;
use reqwest::StatusCode;

use crate::oidc::{PW, browse, redeem, revoke, shop, start, tokens_for, userinfo_status};
use crate::{Backend, TestApp};

on_both_backends!(revocations_survive_the_loss_of_the_ephemeral_store);

/// A `redis-server` of this test alone, without persistence.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    async fn start(port: u16) -> Self {
        // scripts/test names the binary; otherwise it must be on PATH.
        let bin = std::env::var("IDP_TEST_REDIS_SERVER").unwrap_or("redis-server".into());
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { port, child }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (its data is gone) and starts a new one on the same port.
    async fn restart(mut self) -> Self {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        Self::start(self.port).await
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server answers `/readyz` with 200 again.
async fn ready(app: &TestApp) {
    for _ in 0..100 {
        if app.get("/readyz").await.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server did not become ready again");
}

async fn revocations_survive_the_loss_of_the_ephemeral_store(backend: Backend) {
    let redis = match backend {
        Backend::Postgres => Some(OwnRedis::start(tests::free_port()).await),
        Backend::Sqlite => None,
    };
    let url = redis.as_ref().map(OwnRedis::url);
    let app = TestApp::spawn_with(backend, |c| {
        if let Some(url) = url {
            c.redis.url = Some(ConnectionUrl::new(url));
        }
    })
    .await;
    let rp = shop(&app).await;

    // One revoked at /revoke, one by the replay of its code, one kept.
    let (by_revoke, _) = tokens_for(&app, &rp, &[]).await;
    revoke(&rp, CoreRevocableToken::from(by_revoke.access_token())).await;
    let auth = start(&rp, &[], &[]);
    let trip = browse(&app, &auth.url, Some(PW), None).await;
    let by_replay = redeem(&rp, trip.code(), &auth.verifier).await.unwrap();
    assert!(redeem(&rp, trip.code(), &auth.verifier).await.is_err());
    let (kept, _) = tokens_for(&app, &rp, &[]).await;
    for revoked in [&by_revoke, &by_replay] {
        assert_eq!(
            userinfo_status(&app, revoked.access_token()).await,
            StatusCode::UNAUTHORIZED
        );
    }

    // The ephemeral store loses everything.
    let (app, _redis) = match redis {
        Some(redis) => {
            let redis = redis.restart().await;
            ready(&app).await;
            (app, Some(redis))
        }
        None => (app.spawn_beside(|_| {}).await, None),
    };
    let secret = crate::oidc::rp_secret(&rp).unwrap();

    for (what, revoked) in [("/revoke", &by_revoke), ("code replay", &by_replay)] {
        assert_eq!(
            userinfo_status(&app, revoked.access_token()).await,
            StatusCode::UNAUTHORIZED,
            "revoked by {what}, alive again after the ephemeral store lost its data"
        );
        assert!(
            !introspect(&app, &secret, revoked.access_token().secret()).await,
            "revoked by {what}, active again at introspection"
        );
    }
    assert_eq!(
        userinfo_status(&app, kept.access_token()).await,
        StatusCode::OK
    );
    assert!(introspect(&app, &secret, kept.access_token().secret()).await);
}

/// `/introspect` of this node (not the discovered one: the embedded case
/// runs a second node), as client `shop`.
async fn introspect(app: &TestApp, secret: &str, token: &str) -> bool {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(app.url("/introspect"))
        .basic_auth("shop", Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["active"].as_bool().unwrap()
}
