//! Prometheus metrics: requests and latencies per route template (never the
//! raw path, whose variety would explode the series), and what the retention
//! job (`crate::retention`) pruned.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::MatchedPath;
use axum::http::{Method, Request};
use axum::response::Response;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

// Labels cost no allocation per request: the method is one of a fixed set,
// the route template is the router's own shared string.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: Route,
}

/// A route template (`/users/{id}`), shared with the router; `unmatched`
/// for paths no route took.
#[derive(Debug, Clone)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The registry and its families; one per application instance, no globals.
/// Cloned per request by the middleware: one `Arc`.
#[derive(Debug, Clone)]
pub struct Metrics(Arc<Families>);

#[derive(Debug)]
pub struct Families {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    pruned: Family<TableLabels, Counter>,
    retention_success: Gauge,
    series: std::sync::RwLock<SeriesMap>,
}

impl std::ops::Deref for Metrics {
    type Target = Families;

    fn deref(&self) -> &Families {
        &self.0
    }
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to ~16 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(&crate::credentials::HashLoad::default())
    }
}

impl Metrics {
    /// The families, with the password hasher's `load` (its counters are
    /// shared handles: the hasher updates them, this registry reads them).
    pub fn new(load: &crate::credentials::HashLoad) -> Self {
        let mut registry = Registry::with_prefix("idp");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests",
            latency.clone(),
        );
        let pruned = Family::<TableLabels, Counter>::default();
        // Every table from the start, so a dashboard sees 0 rather than nothing.
        for table in crate::store::retention::Prune::TABLES {
            pruned.get_or_create(&TableLabels { table }).inc_by(0);
        }
        registry.register(
            "retention_rows_pruned",
            "Rows deleted by the retention job, per table",
            pruned.clone(),
        );
        let retention_success = Gauge::default();
        registry.register(
            "retention_last_success_timestamp_seconds",
            "When this node last completed a retention pass (Unix time, app clock; 0: not yet)",
            retention_success.clone(),
        );
        registry.register(
            "password_hashes_refused",
            "Sign-ins and password changes refused at once because password_hashing.max_queued hashes already waited",
            load.refused.clone(),
        );
        registry.register(
            "password_hashes_queued",
            "Password hashes waiting for a hashing thread now",
            load.queued.clone(),
        );
        Self(Arc::new(Families {
            registry,
            requests,
            latency,
            pruned,
            retention_success,
            series: Default::default(),
        }))
    }
}

impl Families {
    /// Every family in the Prometheus text format.
    pub fn text(&self) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        encode(&mut body, &self.registry)?;
        Ok(body)
    }

    /// Rows of `table` the retention job deleted (one committed batch).
    pub fn record_pruned(&self, table: &'static str, rows: u64) {
        self.pruned
            .get_or_create(&TableLabels { table })
            .inc_by(rows);
    }

    /// A retention pass completed at `unix_seconds`.
    pub fn record_retention_success(&self, unix_seconds: i64) {
        self.retention_success.set(unix_seconds);
    }
}

/// Records every request: its count per route, method and status, and its
/// latency per route and method. A plain tower layer: no boxed future and no
/// clone of the inner service per request, unlike a `from_fn` middleware.
#[derive(Debug, Clone)]
pub struct TrackLayer(pub Metrics);

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B> Service<Request<B>> for Track<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        TrackFuture {
            route: Some(Route(request.extensions().get::<MatchedPath>().cloned())),
            method: method_label(request.method()),
            started: Instant::now(),
            metrics: self.metrics.clone(),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        metrics: Metrics,
        route: Option<Route>,
        method: &'static str,
        started: Instant,
    }
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(route)) = (&answer, this.route.take()) {
            this.metrics.record(
                this.method,
                route,
                response.status().as_u16(),
                this.started.elapsed(),
            );
        }
        Poll::Ready(answer)
    }
}

/// One series' handles, looked up once per (method, route, status): the
/// families hash their labels with SipHash under a lock at every lookup,
/// twice per request; this map hashes them once with FxHash.
#[derive(Debug, Clone)]
struct Series {
    requests: Counter,
    latency: Histogram,
}

type SeriesMap = std::collections::HashMap<RequestLabels, Series, rustc_hash::FxBuildHasher>;

impl Families {
    fn record(&self, method: &'static str, route: Route, status: u16, took: Duration) {
        let key = RequestLabels {
            method,
            route,
            status,
        };
        let seconds = took.as_secs_f64();
        let count = |series: &Series| {
            series.latency.observe(seconds);
            series.requests.inc();
        };
        if let Some(series) = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            count(series);
            return;
        }
        let series = Series {
            requests: self.requests.get_or_create(&key).clone(),
            latency: self
                .latency
                .get_or_create(&RouteLabels {
                    method,
                    route: key.route.clone(),
                })
                .clone(),
        };
        count(&series);
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, series);
    }
}
