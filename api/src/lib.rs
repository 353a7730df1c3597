//! The HTTP server: dashboards, read-only SQL for analysts, health. Only this crate speaks
//! HTTP/JSON for serving; it reads through `warehouse` and serves `dashboards`' assets.

mod error;
mod sql;

// Dashboard data (helper `apimetrics`): the metrics semantic layer, the dashboard endpoints and
// the OpenAPI document. Their routes are added in one block in `router`.
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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse};
use tokio::sync::RwLock;

pub use error::{ApiError, Error, Result};

/// How long a query session (the set of table snapshots) is reused before re-reading the tables.
const SESSION_TTL: Duration = Duration::from_secs(30);

/// Shared server state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    #[allow(dead_code)]
    project: Arc<Project>,
    warehouse: Warehouse,
    session: RwLock<(Instant, QuerySession)>,
}

impl AppState {
    /// State over a project's warehouse.
    pub async fn new(project: Arc<Project>, warehouse: Warehouse) -> Result<Self> {
        let session = QuerySession::open(&warehouse).await?;
        Ok(Self { inner: Arc::new(Inner { project, warehouse, session: RwLock::new((Instant::now(), session)) }) })
    }

    /// A query session no older than [`SESSION_TTL`].
    pub async fn session(&self) -> Result<QuerySession> {
        {
            let guard = self.inner.session.read().await;
            if guard.0.elapsed() < SESSION_TTL {
                return Ok(guard.1.clone());
            }
        }
        let fresh = QuerySession::open(&self.inner.warehouse).await?;
        *self.inner.session.write().await = (Instant::now(), fresh.clone());
        Ok(fresh)
    }
}

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/v1/tables", get(sql::tables))
        .route("/api/v1/sql", post(sql::query))
        // Dashboard data: /api/v1/metrics, /funnel, /pipeline, ..., /dimensions and
        // /api/v1/openapi.json, registered from the documented route table (endpoints.rs).
        .merge(endpoints::router())
        // Dashboards (helper `dash`): /api/v1/dashboards[/{id}], /board, /stage-time, /intake, /deal-card.
        .merge(dashboards::router())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(256 * 1024))
        .with_state(state)
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

/// Binds `bind` and serves until Ctrl-C.
pub async fn serve(project: Arc<Project>, warehouse: Warehouse, bind: &str) -> Result<()> {
    let addr: SocketAddr =
        bind.parse().map_err(|e| Error::Config(format!("bind address `{bind}` is not HOST:PORT ({e})")))?;
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        Error::Config(format!(
            "cannot listen on {addr}: {e}; is another server running there? pick another with --bind"
        ))
    })?;
    let state = AppState::new(project, warehouse).await?;
    let local = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
    eprintln!("Serving dashboards on http://{local}/  (Ctrl-C to stop)");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::Config(format!("server stopped: {e}")))
}
