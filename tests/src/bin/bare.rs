//! The benchmark's yardstick: a bare axum server answering `GET /` with a
//! static JSON body the size of the discovery document, on the runtime's
//! defaults. `scripts/bench` loads it like the endpoints, so the report says
//! what this machine does at the moment of the run.
//!
//! ```text
//! bare 127.0.0.1:PORT
//! ```

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = include_str!("bare.json");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    let app = Router::new().route(
        "/",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    );
    axum::serve(listener, app).await
}
