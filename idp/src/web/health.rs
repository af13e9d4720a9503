//! Liveness and readiness for load balancers and orchestrators, and the
//! metrics for Prometheus (served on the admin listener).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::paths;

/// A dependency slower than this counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::HEALTHZ, get(healthz))
        .route(paths::READYZ, get(readyz))
}

/// The process is up and answering.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Both stores answer: 200; otherwise 503 naming what is down (no detail).
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let durable = tokio::time::timeout(PROBE_TIMEOUT, state.store.ping());
    let ephemeral = tokio::time::timeout(PROBE_TIMEOUT, state.ephemeral.ping());
    let (durable, ephemeral) = tokio::join!(durable, ephemeral);
    let durable_ok = matches!(durable, Ok(Ok(())));
    let ephemeral_ok = matches!(ephemeral, Ok(Ok(())));
    if let Ok(Err(e)) = &durable {
        tracing::warn!(error = %e, "durable store not ready");
    }
    if let Ok(Err(e)) = &ephemeral {
        tracing::warn!(error = %e, "ephemeral store not ready");
    }
    let status = if durable_ok && ephemeral_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        Json(json!({
            "status": word(durable_ok && ephemeral_ok),
            "durable": word(durable_ok),
            "ephemeral": word(ephemeral_ok),
        })),
    )
}

/// `GET /metrics` in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = match state.metrics.text() {
        Ok(body) => body,
        Err(e) => return super::AppError::Internal(e.to_string()).into_response(),
    };
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
