//! The benchmark's yardstick: a bare axum server answering GETs with static
//! JSON bytes, on the runtime's defaults. `scripts/bench` has the driver start
//! it with the bytes of our discovery document and JWKS at the same paths, and
//! loads it like the endpoints, so the report says what this machine does at
//! the moment of the run.
//!
//! ```text
//! bare 127.0.0.1:PORT [ROUTE=FILE]...
//! ```
//!
//! Without routes it answers `GET /` with `bare.json` (the size of the
//! discovery document). It prints the address it listens on, then serves.

use axum::Router;
use axum::http::header;
use axum::routing::get;

const BODY: &str = include_str!("bare.json");

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let mut app = Router::new();
    let mut routes = 0;
    for route in args {
        let Some((path, file)) = route.split_once('=') else {
            eprintln!("usage: bare ADDR [ROUTE=FILE]...");
            std::process::exit(2);
        };
        let body: &'static [u8] = std::fs::read(file)?.leak();
        app = app.route(
            path,
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], body) }),
        );
        routes += 1;
    }
    if routes == 0 {
        app = app.route(
            "/",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
        );
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
