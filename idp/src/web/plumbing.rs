//! Pieces of the per-request stack (`startup::plumbing`) written for what a
//! cheap request (discovery, JWKS) costs: tower-http's request-id maker
//! formats through a `String`, its timeout arms a timer on every request,
//! and its trace layer makes a span whose fields the log formatter turns
//! into a `String` per request even when nothing is logged.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::HttpBody as _;
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use tokio::time::Sleep;
use tower::{Layer, Service};

/// Answers `408 Request Timeout` when the inner service takes longer than
/// the configured time. Unlike tower-http's `TimeoutLayer`, the inner
/// future is polled first and the timer is armed only when it is pending:
/// a request answered at once (discovery, JWKS) never reads the clock nor
/// touches the timer wheel, whose insert and removal take the driver's
/// lock. The time counts from that first poll, microseconds after the call.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer(pub Duration);

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout {
            inner,
            timeout: self.0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Timeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for Timeout<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Default,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        TimeoutFuture {
            inner: self.inner.call(request),
            timeout: self.timeout,
            sleep: None,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        timeout: Duration,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F, ResB, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
    ResB: Default,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => {
                let mut response = Response::new(ResB::default());
                *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
                Poll::Ready(Ok(response))
            }
            _ => Poll::Pending,
        }
    }
}

/// Says `Connection: close` on an answer given before its request's body
/// was read to the end: a refusal for size (413), a 404 or 405 to a POST,
/// the admin API's 401, a timeout. Hyper then closes the connection unless
/// the rest of the body happens to be in its buffer already; without the
/// header a client that pools connections sends its next request into the
/// closing one and gets no answer (RFC 9112, section 9.6). With it the
/// close is said, and always happens. A request without a body (every
/// GET, so discovery and JWKS, and a `Content-Length: 0`) passes
/// untouched; one with a body has it watched for its end.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnreadBodyLayer;

impl<S> Layer<S> for UnreadBodyLayer {
    type Service = UnreadBody<S>;

    fn layer(&self, inner: S) -> UnreadBody<S> {
        UnreadBody { inner }
    }
}

#[derive(Debug, Clone)]
pub struct UnreadBody<S> {
    inner: S,
}

impl<S, ResB> Service<Request<axum::body::Body>> for UnreadBody<S>
where
    S: Service<Request<axum::body::Body>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = UnreadBodyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        // Hyper's body knows: none, or a length of 0 however written.
        if request.body().is_end_stream() {
            return UnreadBodyFuture {
                inner: self.inner.call(request),
                ended: None,
            };
        }
        let ended = Arc::new(AtomicBool::new(false));
        let request = request.map(|body| {
            axum::body::Body::new(Watched {
                inner: body,
                ended: ended.clone(),
            })
        });
        UnreadBodyFuture {
            inner: self.inner.call(request),
            ended: Some(ended),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct UnreadBodyFuture<F> {
        #[pin]
        inner: F,
        ended: Option<Arc<AtomicBool>>,
    }
}

impl<F, ResB, E> Future for UnreadBodyFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut answer = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(ended)) = (&mut answer, this.ended.as_ref())
            && !ended.load(Ordering::Acquire)
        {
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                HeaderValue::from_static("close"),
            );
        }
        Poll::Ready(answer)
    }
}

pin_project_lite::pin_project! {
    /// A request body that records when it has been read to its end.
    struct Watched {
        #[pin]
        inner: axum::body::Body,
        ended: Arc<AtomicBool>,
    }
}

impl axum::body::HttpBody for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = std::task::ready!(this.inner.as_mut().poll_frame(cx));
        if frame.is_none() || this.inner.is_end_stream() {
            this.ended.store(true, Ordering::Release);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The request id header: kept from a proxy that set it, made here
/// otherwise, and copied to the answer.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST: Current;
}

/// A request's id: the one a proxy in front set, or a random (v4) UUID
/// formatted on the stack.
enum Id {
    Ours([u8; 36]),
    Given(HeaderValue),
}

impl Id {
    fn of<B>(request: &Request<B>) -> Self {
        match request.headers().get(REQUEST_ID) {
            Some(given) => Self::Given(given.clone()),
            None => {
                let mut buf = [0u8; 36];
                uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
                Self::Ours(buf)
            }
        }
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Ours(buf) => std::str::from_utf8(buf).unwrap_or("-"),
            Self::Given(value) => value.to_str().unwrap_or("-"),
        }
    }

    fn header_value(&self) -> Option<HeaderValue> {
        match self {
            Self::Ours(buf) => HeaderValue::from_bytes(buf).ok(),
            Self::Given(value) => Some(value.clone()),
        }
    }
}

/// What a log line written while serving a request says about it.
struct Current {
    method: Method,
    uri: Uri,
    id: Id,
    /// Whether the debug-level `request` span is open around the request
    /// (then lines are already written inside it).
    spanned: bool,
}

/// The span to write a warning or error of the request being served in:
/// `request{method=.. path=.. request_id=..}`, as every line of a request
/// had when the span was made for every request. Made only for such lines:
/// at the default level (info) the per-request span is off, and making it
/// cost as much as the rest of a discovery request. Outside a request, or
/// when the debug span is already open, a disabled span.
///
/// ```ignore
/// let _span = request_span().entered();
/// tracing::error!(error = %e, "request failed");
/// ```
pub fn request_span() -> tracing::Span {
    REQUEST
        .try_with(Current::span)
        .unwrap_or_else(|_| tracing::Span::none())
}

impl Current {
    fn span(&self) -> tracing::Span {
        if self.spanned {
            return tracing::Span::none();
        }
        tracing::info_span!("request", method = %self.method, path = %self.uri.path(), request_id = %self.id.as_str())
    }
}

/// The id of the request being served (`-` outside one), as its answer's
/// `x-request-id` header carries it.
pub fn request_id() -> String {
    REQUEST
        .try_with(|r| r.id.as_str().to_owned())
        .unwrap_or_else(|_| "-".to_owned())
}

/// The request's id, its context for [`request_span`] and [`request_id`]
/// while its future runs, and the `request` span at debug level (every line
/// of every request carries it when the log level is debug). The answer
/// gets the id in `x-request-id` unless it set its own; a 5xx answer is
/// logged as an error, like tower-http's trace layer did.
///
/// One layer where tower-http's request-id layers and its trace layer were
/// three: the id is made on the stack and never put into the request's
/// headers or extensions, and no span is made at the default level.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContextLayer;

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;

    fn layer(&self, inner: S) -> RequestContext<S> {
        RequestContext { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestContext<S> {
    inner: S,
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for RequestContext<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = RequestContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let id = Id::of(&request);
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            request_id = %id.as_str(),
        );
        let current = Current {
            method: request.method().clone(),
            uri: request.uri().clone(),
            id,
            spanned: !span.is_disabled(),
        };
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        RequestContextFuture {
            inner: REQUEST.scope(current, inner),
            span,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct RequestContextFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<Current, F>,
        span: tracing::Span,
    }
}

impl<F, ResB, E> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<Response<ResB>, E>>,
{
    type Output = Result<Response<ResB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let _entered = this.span.enter();
        let mut answer = std::task::ready!(this.inner.as_mut().poll(cx));
        let (Ok(response), Some(current)) = (&mut answer, this.inner.take_value()) else {
            return Poll::Ready(answer);
        };
        if response.status().is_server_error() && response.extensions().get::<Busy>().is_none() {
            let _span = current.span().entered();
            tracing::error!(status = response.status().as_u16(), "response failed");
        }
        if !response.headers().contains_key(REQUEST_ID)
            && let Some(id) = current.id.header_value()
        {
            response.headers_mut().insert(REQUEST_ID, id);
        }
        Poll::Ready(answer)
    }
}

/// Marks a refusal because the password hashing queue was full: expected
/// under a flood and nothing failed, so no "response failed" error line
/// (an attacker would otherwise write one per request).
#[derive(Debug, Clone, Copy)]
pub struct Busy;

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::{Arc, Mutex};

    use tower::ServiceExt;

    use super::*;

    /// What the log formatter wrote.
    #[derive(Clone, Default)]
    struct Written(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Written {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Written {
        type Writer = Written;

        fn make_writer(&'a self) -> Written {
            self.clone()
        }
    }

    /// At the default level (info), the request span is off, yet an error
    /// of a request is written with its method, path and request id.
    #[tokio::test]
    async fn an_error_of_a_request_is_logged_with_its_id_at_info() {
        let written = Written::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(written.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let failing = RequestContextLayer.layer(tower::service_fn(|_: Request<()>| async {
            tracing::info!("an ordinary line");
            let _span = request_span().entered();
            tracing::error!("the store broke");
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            Ok::<_, Infallible>(response)
        }));
        let request = Request::builder()
            .uri("/token?x=1")
            .header(REQUEST_ID, "id-42")
            .body(())
            .unwrap();
        failing.oneshot(request).await.unwrap();
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let line = |says: &str| {
            text.lines()
                .find(|l| l.contains(says))
                .unwrap_or_else(|| panic!("no line with {says:?} in:\n{text}"))
                .to_owned()
        };
        for says in ["the store broke", "response failed"] {
            let l = line(says);
            assert!(
                l.contains("request{method=POST path=/token request_id=id-42}")
                    || l.contains("request{method=GET path=/token request_id=id-42}"),
                "{l}"
            );
        }
        assert!(!line("an ordinary line").contains("request{"), "{text}");
        // Outside a request: no span.
        assert!(request_span().is_disabled());
    }

    #[tokio::test]
    async fn a_slow_answer_is_cut_with_408_and_a_quick_one_is_not() {
        let slow = TimeoutLayer(Duration::from_millis(50)).layer(tower::service_fn(
            |_: Request<()>| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, Infallible>(Response::new(String::from("late")))
            },
        ));
        let answer = slow.oneshot(Request::new(())).await.unwrap();
        assert_eq!(answer.status(), StatusCode::REQUEST_TIMEOUT);
        let quick = TimeoutLayer(Duration::from_millis(50)).layer(tower::service_fn(
            |_: Request<()>| async { Ok::<_, Infallible>(Response::new(String::from("on time"))) },
        ));
        let answer = quick.oneshot(Request::new(())).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(answer.body(), "on time");
    }

    /// Each answer carries its request's id: a new UUID each time, or the
    /// one a proxy in front set; an id the handler set itself stays. The
    /// handler reads the same id as the answer carries (the reference a
    /// themed 500 page quotes).
    #[tokio::test]
    async fn request_ids_are_uuids_and_differ_and_a_proxys_is_kept() {
        // Read after an await, as the themed error page does.
        let echo = RequestContextLayer.layer(tower::service_fn(|_: Request<()>| async {
            tokio::task::yield_now().await;
            Ok::<_, Infallible>(Response::new(request_id()))
        }));
        let id_of =
            |answer: &Response<String>| answer.headers()[REQUEST_ID].to_str().unwrap().to_owned();
        let a = echo.clone().oneshot(Request::new(())).await.unwrap();
        let b = echo.clone().oneshot(Request::new(())).await.unwrap();
        assert!(uuid::Uuid::parse_str(&id_of(&a)).is_ok(), "{}", id_of(&a));
        assert_ne!(id_of(&a), id_of(&b));
        assert_eq!(a.body(), &id_of(&a));
        let given = Request::builder()
            .header(REQUEST_ID, "from-the-proxy")
            .body(())
            .unwrap();
        let c = echo.clone().oneshot(given).await.unwrap();
        assert_eq!(id_of(&c), "from-the-proxy");
        assert_eq!(c.body(), "from-the-proxy");
        let own = RequestContextLayer.layer(tower::service_fn(|_: Request<()>| async {
            let mut response = Response::new(());
            response
                .headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_static("the-handlers"));
            Ok::<_, Infallible>(response)
        }));
        let d = own.oneshot(Request::new(())).await.unwrap();
        assert_eq!(d.headers()[REQUEST_ID], "the-handlers");
        assert_eq!(request_id(), "-");
    }
}
