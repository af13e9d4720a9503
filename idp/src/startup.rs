//! Building and running the server: [`Application::build`] binds the listener
//! (port 0 allowed) and exposes its address, so tests start the real thing.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;

use crate::clock::{SharedClock, SystemClock};
use crate::config::Config;
use crate::credentials::PasswordHasher;
use crate::credentials::policy::PasswordPolicy;
use crate::ephemeral::{Ephemeral, MemoryStore, RedisStore};
use crate::store;
use crate::web::theme::Themes;
use crate::web::{self, AppState, metrics};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Store(#[from] store::Error),
    #[error("redis: {0}")]
    Ephemeral(#[from] crate::ephemeral::Error),
    /// The message names the configuration key (`redis.sentinel...`).
    #[error("{0}")]
    Sentinel(String),
    #[error("password hashing: {0}")]
    Hasher(#[from] crate::credentials::HashError),
    #[error("{0}")]
    Theme(#[from] crate::web::theme::ThemeError),
    #[error("{0}")]
    Mail(#[from] crate::mail::SetupError),
    #[error("{0}")]
    Keys(#[from] crate::tokens::keys::KeyError),
    #[error("{0}")]
    Console(#[from] crate::admin_console::ConsoleError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
    #[error("migration hook client: {0}")]
    HookClient(reqwest::Error),
}

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    router: Router,
    /// The admin API's own listener (`admin.listen`), never the public one.
    admin_listener: TcpListener,
    admin_address: SocketAddr,
    admin_router: Router,
    state: AppState,
    mailer: crate::mail::Mailer,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartError> {
        Self::build_with(config, Arc::new(SystemClock), None).await
    }

    /// As [`Application::build`], with the clock given (tests move time) and,
    /// optionally, a listener bound beforehand (so a test knows its issuer URL
    /// before the configuration is final).
    pub async fn build_with(
        config: Config,
        clock: SharedClock,
        listener: Option<std::net::TcpListener>,
    ) -> Result<Self, StartError> {
        let state = connect(config, clock).await?;
        let mailer =
            crate::mail::Mailer::from_config(&state.config.mail, &state.config.server.issuer)?;
        let addr = state.config.server.listen;
        let bind_error = |source| StartError::Bind { addr, source };
        let listener = match listener {
            Some(l) => {
                l.set_nonblocking(true).map_err(bind_error)?;
                TcpListener::from_std(l).map_err(bind_error)?
            }
            None => TcpListener::bind(addr).await.map_err(bind_error)?,
        };
        let address = listener.local_addr().map_err(bind_error)?;
        let admin_addr = state.config.admin.listen;
        let admin_bind_error = |source| StartError::Bind {
            addr: admin_addr,
            source,
        };
        let admin_listener = TcpListener::bind(admin_addr)
            .await
            .map_err(admin_bind_error)?;
        let admin_address = admin_listener.local_addr().map_err(admin_bind_error)?;
        let router = router(state.clone());
        let console = crate::admin_console::mount(&state, address, admin_address).await?;
        let admin_router = admin_router(state.clone(), console);
        Ok(Self {
            listener,
            address,
            router,
            admin_listener,
            admin_address,
            admin_router,
            state,
            mailer,
        })
    }

    /// The address actually bound (with port 0, the one the OS chose).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin listener's address (with port 0, the one the OS chose).
    pub fn admin_address(&self) -> SocketAddr {
        self.admin_address
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> Result<(), StartError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        tracing::info!(
            address = %self.address,
            admin_address = %self.admin_address,
            issuer = %self.state.config.server.issuer,
            durable = self.state.store.backend(),
            "listening"
        );
        // The mail worker lives as long as the server: it is stopped when
        // serving ends, or when this future is dropped.
        let worker_stop = tokio_util::sync::CancellationToken::new();
        let _worker_guard = worker_stop.clone().drop_guard();
        let worker = crate::mail::spawn_worker(
            self.state.mail.clone(),
            self.mailer,
            &self.state.config.mail,
            worker_stop.clone(),
        );
        let keys_task = self.state.keys.spawn_maintenance(worker_stop.clone());
        let retention_task = crate::retention::spawn(self.state.clone(), worker_stop.clone());
        learn_legacy_floor(&self.state);
        // One stop for both listeners: each drains its requests in flight.
        let serving = tokio_util::sync::CancellationToken::new();
        let stopper = serving.clone();
        let stop_task = tokio::spawn(async move {
            stop.await;
            stopper.cancel();
        });
        let public = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(serving.clone().cancelled_owned())
        .into_future();
        let admin = axum::serve(
            self.admin_listener,
            self.admin_router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(serving.clone().cancelled_owned())
        .into_future();
        let (public, admin) = tokio::join!(
            ending_both(public, serving.clone()),
            ending_both(admin, serving.clone())
        );
        stop_task.abort();
        let served = public.and(admin).map_err(StartError::Serve);
        worker_stop.cancel();
        if let Err(e) = worker.await {
            tracing::warn!(error = %e, "mail worker ended abnormally");
        }
        if let Err(e) = keys_task.await {
            tracing::warn!(error = %e, "signing key maintenance ended abnormally");
        }
        if let Err(e) = retention_task.await {
            tracing::warn!(error = %e, "retention job ended abnormally");
        }
        served
    }
}

/// How many stored legacy hashes the hasher's floor is learned from.
const LEGACY_SAMPLE: u32 = 1000;

/// Seeds the password hasher's legacy floor in the background (see
/// `credentials::hasher`): serving does not wait, and a failure only leaves
/// the floor to be learned from the legacy checks this node makes.
fn learn_legacy_floor(state: &AppState) {
    let (store, hasher) = (state.store.clone(), state.hasher.clone());
    tokio::spawn(async move {
        let own = hasher.own_prefix();
        let learned = match store.legacy_password_hashes(&own, LEGACY_SAMPLE).await {
            Ok(sample) => hasher.learn_floor(&sample).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match learned {
            Ok(floor) => tracing::info!(floor_ms = floor.as_millis(), "legacy password floor"),
            Err(e) => tracing::warn!(error = %e, "could not learn the legacy password floor"),
        }
    });
}

/// Runs one listener; when it ends (stopped, or failed), the other stops too.
async fn ending_both(
    serve: impl std::future::Future<Output = std::io::Result<()>>,
    both: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let served = serve.await;
    both.cancel();
    served
}

/// The store's view of `[redis.sentinel]` (validated by `Config::validate`).
fn sentinel_settings(
    config: &crate::config::SentinelConfig,
) -> Result<crate::ephemeral::SentinelSettings, StartError> {
    let sentinels = config.endpoints().ok_or_else(|| {
        StartError::Sentinel("redis.sentinel.addresses: each must be host:port".into())
    })?;
    Ok(crate::ephemeral::SentinelSettings {
        sentinels,
        service: config.service.clone(),
        sentinel_username: config.sentinel_username.clone(),
        sentinel_password: config
            .sentinel_password
            .as_ref()
            .map(|s| s.expose().to_owned()),
        username: config.username.clone(),
        password: config.password.as_ref().map(|s| s.expose().to_owned()),
        db: config.db,
        replica_ack_timeout: Duration::from_millis(config.replica_ack_timeout_ms),
    })
}

/// Opens both stores and builds the state; used by `serve` and by CLI commands.
pub async fn connect(config: Config, clock: SharedClock) -> Result<AppState, StartError> {
    let store = store::connect(&config.database).await?;
    // Before anything reads a table (the signing keys below).
    if config.database.migrate_on_start {
        store.migrate().await?;
    }
    let ephemeral = match (&config.redis.url, &config.redis.sentinel) {
        (Some(url), _) => Ephemeral::new(Arc::new(
            RedisStore::connect(url.expose(), config.redis.prefix.clone(), clock.clone()).await?,
        )),
        (None, Some(sentinel)) => {
            let settings = sentinel_settings(sentinel)?;
            let store =
                RedisStore::connect_sentinel(settings, config.redis.prefix.clone(), clock.clone())
                    .await
                    .map_err(|e| {
                        let (crate::ephemeral::Error::Unavailable(why)
                        | crate::ephemeral::Error::Decode(why)) = e;
                        StartError::Sentinel(format!(
                            "redis.sentinel.addresses: no sentinel named a reachable primary \
                             for service {:?} ({why})",
                            sentinel.service
                        ))
                    })?;
            Ephemeral::new(Arc::new(store))
        }
        (None, None) => Ephemeral::new(Arc::new(MemoryStore::new(clock.clone()))),
    };
    let hasher = PasswordHasher::new(&config.password_hashing)?;
    let themes = Themes::load(&config.themes.dir)?;
    let policy = Arc::new(PasswordPolicy::new(config.password_policy.clone()));
    let mail = crate::mail::MailQueue::new(store.clone(), clock.clone());
    let kek = crate::tokens::keys::encryption_key(&config.keys)?;
    let keys = crate::tokens::keys::SigningKeys::load(
        store.clone(),
        clock.clone(),
        &config.keys,
        kek.clone(),
    )
    .await?;
    let discovery = axum::body::Bytes::from(crate::oidc::discovery::document(&config));
    let clients = crate::store::client_cache::ClientCache::new(store.clone(), clock.clone());
    let users = crate::store::cache::TtlCache::new(
        clock.clone(),
        web::USER_CACHE_TTL,
        web::USER_CACHE_CAPACITY,
    );
    let verified_tokens = crate::oidc::bearer::verified_cache(clock.clone());
    let hook_client = crate::credentials::jit::hook_client(config.migration_hook.timeout_ms)
        .map_err(StartError::HookClient)?;
    let metrics = metrics::Metrics::new(&hasher.load());
    Ok(AppState::new(web::state::Shared {
        discovery,
        clients,
        users,
        verified_tokens,
        config: Arc::new(config),
        store,
        ephemeral,
        clock,
        hasher,
        policy,
        themes,
        mail,
        keys,
        kek,
        metrics,
        revocation_reload: Default::default(),
        hook_client,
    }))
}

fn router(state: AppState) -> Router {
    let routes = web::router()
        .merge(crate::account::router())
        .merge(crate::oidc::router())
        .merge(crate::mfa::router())
        .merge(crate::passkey::router())
        .fallback(web::not_found);
    let body_limit = state.config.server.body_limit_bytes;
    // Metrics and error pages go into the same stack as the plumbing: each
    // `Router::layer` boxes the service again, cloned per request.
    let own = ServiceBuilder::new()
        .layer(metrics::TrackLayer(state.metrics.clone()))
        .layer(web::ThemedErrorsLayer(state.clone()));
    plumbing(routes, state, None, body_limit, own)
}

/// The admin listener: the admin API, `/metrics` and, unless disabled, the
/// console (health endpoints stay public). `/metrics` is here, unauthenticated
/// like a scrape target, because per-route and per-status counts tell an
/// outsider what the deployment is doing; the admin address is not public.
fn admin_router(state: AppState, console: Option<Router>) -> Router {
    let hops = web::client_meta::ProxyHops(state.config.admin.trusted_proxy_hops);
    let configured = state.config.server.body_limit_bytes;
    let routes = crate::admin_api::router(configured)
        .route(web::paths::METRICS, axum::routing::get(web::metrics_page));
    // The console keeps the configured limit; the API holds its own routes
    // to it too, but for the import's batch.
    let console = console.map(|c| c.layer(RequestBodyLimitLayer::new(configured)));
    let body_limit = crate::admin_api::listener_body_limit(configured);
    plumbing(
        routes,
        state,
        console,
        body_limit,
        tower::layer::util::Identity::new(),
    )
    .layer(axum::Extension(hops))
}

/// What every listener wraps its routes in: request ids and tracing, security
/// headers, the timeout and the listener's body limit, then `inner` (the
/// listener's own layers), all in one `Router::layer`.
fn plumbing<L>(
    routes: Router<AppState>,
    state: AppState,
    extra: Option<Router>,
    body_limit: usize,
    inner: L,
) -> Router
where
    L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
    L::Service: tower::Service<
            Request<tower_http::body::Limited<axum::body::Body>>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    <L::Service as tower::Service<Request<tower_http::body::Limited<axum::body::Body>>>>::Future:
        Send + 'static,
{
    let timeout = Duration::from_secs(state.config.server.request_timeout_secs);
    let hsts = web::headers::Hsts(!state.config.server.dev_mode);
    let mut routes = routes.with_state(state);
    if let Some(extra) = extra {
        routes = routes.merge(extra);
    }
    routes.layer(
        ServiceBuilder::new()
            .layer(web::plumbing::RequestContextLayer)
            .map_response(move |response| web::headers::security_headers(hsts, response))
            .layer(web::plumbing::UnreadBodyLayer)
            .layer(web::plumbing::TimeoutLayer(timeout))
            .layer(RequestBodyLimitLayer::new(body_limit))
            .layer(inner),
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
