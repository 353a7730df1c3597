//! The HTTP server: dashboards, read-only SQL for analysts, health and metrics. Only this crate
//! speaks HTTP/JSON for serving; it reads through `warehouse` and serves `dashboards`' assets.
//!
//! Every data endpoint takes a [`Principal`] (the bearer token's role and branch scope) and
//! reads through [`AppState::session_for`], which gives a scoped principal a session where
//! every table is already filtered to its branches.

mod auth;
mod error;
mod health;
mod intake;
mod prometheus;
mod sql;

// Dashboard data: the metrics semantic layer, the dashboard endpoints and the OpenAPI document.
// Their routes are added in one block in `router`.
mod endpoints;
mod metrics;
mod openapi;
mod query;
mod semantic;

// ---- Dashboards (helper `dash`): the dashboard definitions and the routes only the UI needs
// (kanban cards, time in stage, intake migration, a deal's card), in dashboards.rs. Documented
// through openapi::all_routes; registered by the `.merge(dashboards::router())` below.
mod dashboards;
// ---- end of the dashboards block

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dealhouse_warehouse::scope::Scope;
use dealhouse_warehouse::session::{QuerySession, served_runtime};
use dealhouse_warehouse::sql_guard::SqlLimits;
use dealhouse_warehouse::{Project, Warehouse};
use tokio::sync::{Mutex, RwLock};

pub use auth::{Principal, Role};
pub use error::{ApiError, Error, Result};
pub use sql::{ARROW_STREAM, QueryLimits, TRUNCATED_HEADER};

/// How long a query session (the set of table snapshots) is reused before re-reading the tables.
const SESSION_TTL: Duration = Duration::from_secs(30);

/// Largest request body: an SQL text is capped at 64 KiB, the rest is JSON framing.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Shared server state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    project: Arc<Project>,
    warehouse: Warehouse,
    tokens: auth::Tokens,
    /// The unscoped session and when it was opened (the scoped ones are derived from it).
    session: RwLock<(Instant, QuerySession)>,
    /// Scoped sessions by scope, with the opening time of the session they were derived from.
    scoped: Mutex<HashMap<Scope, (Instant, QuerySession)>>,
    runtime: Arc<dealhouse_warehouse::datafusion::execution::runtime_env::RuntimeEnv>,
    sql_runtime: sql::SqlRuntime,
    limits: QueryLimits,
    metrics: Arc<prometheus::Metrics>,
    table_metrics: Mutex<Option<(Instant, String)>>,
}

impl AppState {
    /// State over a project's warehouse: its tokens and `[server]` query limits.
    pub async fn new(project: Arc<Project>, warehouse: Warehouse) -> Result<Self> {
        let tokens = auth::Tokens::load(&project)?;
        let server = &project.config.server;
        let limits = QueryLimits {
            timeout: Duration::from_secs(server.query_timeout_seconds),
            max_rows: server.max_result_rows,
            max_bytes: usize::try_from(server.max_result_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
            max_concurrent: server.max_concurrent_queries,
            guard: SqlLimits::default(),
        };
        let memory = usize::try_from(server.query_memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX);
        let runtime = served_runtime(memory)?;
        let session = QuerySession::open_served(&warehouse, runtime.clone()).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                project,
                warehouse,
                tokens,
                session: RwLock::new((Instant::now(), session)),
                scoped: Mutex::new(HashMap::new()),
                runtime,
                sql_runtime: sql::SqlRuntime::new(limits.max_concurrent)?,
                limits,
                metrics: Arc::new(prometheus::Metrics::default()),
                table_metrics: Mutex::new(None),
            }),
        })
    }

    /// The session `principal` may query: every table for admin and analyst; for a branch or
    /// holding token only the tables it may read, each filtered to its branches inside the plan.
    /// Every data endpoint must read through this.
    pub async fn session_for(&self, principal: &Principal) -> Result<QuerySession> {
        let (opened, base) = self.base_session().await?;
        let Some(scope) = principal.scope.as_deref() else { return Ok(base) };
        {
            let cache = self.inner.scoped.lock().await;
            if let Some((from, s)) = cache.get(scope)
                && *from == opened
            {
                return Ok(s.clone());
            }
        }
        let scoped = base.scoped(scope).await?;
        let mut cache = self.inner.scoped.lock().await;
        cache.retain(|_, (from, _)| *from == opened);
        cache.insert(scope.clone(), (opened, scoped.clone()));
        Ok(scoped)
    }

    /// The unscoped session (every table, every branch).
    #[deprecated(note = "unscoped: take a `Principal` and use `session_for(&principal)`")]
    pub async fn session(&self) -> Result<QuerySession> {
        Ok(self.base_session().await?.1)
    }

    /// The unscoped session no older than [`SESSION_TTL`], and when it was opened.
    async fn base_session(&self) -> Result<(Instant, QuerySession)> {
        {
            let guard = self.inner.session.read().await;
            if guard.0.elapsed() < SESSION_TTL {
                return Ok((guard.0, guard.1.clone()));
            }
        }
        let mut guard = self.inner.session.write().await;
        // Another request may have refreshed it while this one waited for the lock.
        if guard.0.elapsed() >= SESSION_TTL {
            let fresh = QuerySession::open_served(&self.inner.warehouse, self.inner.runtime.clone()).await?;
            *guard = (Instant::now(), fresh);
        }
        Ok((guard.0, guard.1.clone()))
    }

    /// The warehouse.
    pub fn warehouse(&self) -> &Warehouse {
        &self.inner.warehouse
    }

    /// The configured tokens.
    pub(crate) fn tokens(&self) -> &auth::Tokens {
        &self.inner.tokens
    }

    /// Limits on analyst queries.
    pub fn query_limits(&self) -> QueryLimits {
        self.inner.limits
    }

    pub(crate) fn sql_runtime(&self) -> &sql::SqlRuntime {
        &self.inner.sql_runtime
    }

    pub(crate) fn metrics(&self) -> &prometheus::Metrics {
        &self.inner.metrics
    }

    pub(crate) fn metrics_arc(&self) -> Arc<prometheus::Metrics> {
        self.inner.metrics.clone()
    }

    pub(crate) fn table_metrics_cache(&self) -> &Mutex<Option<(Instant, String)>> {
        &self.inner.table_metrics
    }

    /// Whether the server runs without tokens (everyone is the local admin).
    pub fn is_open(&self) -> bool {
        self.inner.tokens.is_open()
    }
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/api/v1/tables", get(sql::tables))
        .route("/api/v1/sql", post(sql::query))
        .route("/api/v1/intake/{source}", post(intake::intake))
        // Dashboard data: /api/v1/metrics, /funnel, /pipeline, ..., /dimensions and
        // /api/v1/openapi.json, registered from the documented route table (endpoints.rs).
        .merge(endpoints::router())
        // Dashboards: /api/v1/dashboards[/{id}], /board, /stage-time, /intake-migration, /deal-card.
        .merge(dashboards::router())
        .fallback(not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), health::track))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route `{}`", request.uri().path()))
}

async fn index() -> Response {
    asset(Path(String::new())).await
}

async fn asset(Path(path): Path<String>) -> Response {
    match dealhouse_dashboards::asset(&path) {
        Some(a) => ([(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type))], a.bytes).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no asset `{path}`")).into_response(),
    }
}

/// Binds `bind` and serves until Ctrl-C. Without tokens the server is open to whoever can
/// connect, so it then refuses any address but loopback.
pub async fn serve(project: Arc<Project>, warehouse: Warehouse, bind: &str) -> Result<()> {
    let addr: SocketAddr =
        bind.parse().map_err(|e| Error::Config(format!("bind address `{bind}` is not HOST:PORT ({e})")))?;
    let state = AppState::new(project, warehouse).await?;
    if state.is_open() && !addr.ip().is_loopback() {
        return Err(Error::Config(format!(
            "refusing to serve on {addr} without API tokens: anyone who can reach it could read every branch. \
             Add [tokens.<name>] with a sha256 and a role (see README, \"API tokens\"), or bind 127.0.0.1"
        )));
    }
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(format!(
            "cannot listen on {addr}: {e}; is another server running there? pick another with --bind"
        ))
    })?;
    let local = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
    eprintln!("Serving dashboards on http://{local}/  (Ctrl-C to stop)");
    if state.is_open() {
        // After the address line, which scripts and tests read first.
        tracing::warn!("no API tokens configured: open local mode, every request is treated as admin (loopback only)");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Config(format!("server stopped: {e}")))
}
