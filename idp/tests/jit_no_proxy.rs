//! The migration hook's client ignores the proxy environment: a hook may be
//! a plain-http loopback address, and a proxy set for the server's other
//! traffic must not receive the password. A binary of its own, since it
//! sets `HTTP_PROXY` for the whole process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::post;
use idp::config::{Hook, Secret};
use idp::credentials::jit::{call, hook_client};

#[tokio::test]
#[allow(unsafe_code)]
async fn the_hook_client_ignores_the_proxy_environment() {
    // A "proxy" that counts who connects to it and answers nothing.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let proxied = Arc::new(AtomicUsize::new(0));
    let seen = proxied.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = proxy.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    // The hook, which says yes.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/check", hook.local_addr().unwrap());
    let router = Router::new().route("/check", post(|| async { r#"{"valid": true}"# }));
    tokio::spawn(async move { axum::serve(hook, router).await });

    for name in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        // SAFETY: this binary's only test, on a single-threaded runtime,
        // sets these before anything else reads the environment.
        unsafe { std::env::set_var(name, &proxy_url) };
    }
    for name in ["NO_PROXY", "no_proxy"] {
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
    }
    let client = hook_client(2000).unwrap();
    let secret = Secret::new("legacy-portal-shared-secret-0123");
    let hook = Hook {
        key: "deployment",
        url: &url,
        secret: &secret,
    };
    let body = r#"{"email":"a@b.example","password":"x"}"#;
    let answer = call(&client, hook, 2000, 0, body.into()).await;
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(proxied.load(Ordering::SeqCst), 0);
}
