//! The HTTP server: dashboards, read-only SQL for analysts, health and metrics. Only this crate
//! speaks HTTP/JSON for serving; it reads through `warehouse` and serves `dashboards`' assets.
//!
//! Every route is listed once in `routes.rs`, which registers it and documents it (the OpenAPI
//! document is rendered from the same list). Every data endpoint takes a [`Principal`] (the
//! bearer token's role and branch scope) and reads through [`AppState::session_for`], which
//! gives a scoped principal a session where every table is already filtered to its branches.

// Plumbing: state, callers, errors, the route table and its OpenAPI rendering.
mod auth;
mod error;
mod openapi;
mod route;
mod routes;
mod state;

// Shared by the data endpoints: parameters, bound SQL, paging, the session extractor, and the
// types and docs of the columns they read.
mod columns;
pub mod queries;
mod query;

// What the routes implement.
pub mod alerts;
mod assets;
pub mod audit;
mod dashboards;
pub mod delivery;
mod endpoints;
mod health;
mod intake;
mod measures;
mod pgwire;
mod prometheus;
pub mod reports;
mod semantic;
mod sql;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use dealhouse_warehouse::{Project, Warehouse};

pub use self::pgwire::PostgresServer;
pub use auth::{Principal, Role};
pub use error::{ApiError, Error, ErrorCode, Result};
pub use query::write_json_rows;
pub use sql::{ARROW_STREAM, QueryLimits, TRUNCATED_HEADER};
pub use state::AppState;

/// Largest request body: an SQL text is capped at 64 KiB, the rest is JSON framing.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The application's routes (every one from the route table) and their layers: the body
/// limit, JSON error bodies, request metrics.
pub fn router(state: AppState) -> Router {
    routes::router()
        .fallback(not_found)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn(error::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), prometheus::track))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no route `{}`", request.uri().path()))
}

/// Binds `bind` and serves until Ctrl-C, with the PostgreSQL protocol beside it on `[server]
/// postgres_bind` (unless that is ""). Without tokens the server is open to whoever can connect,
/// so it then refuses any address but loopback.
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
    let postgres = PostgresServer::bind(state.clone(), None).await?;
    eprintln!("Serving dashboards on http://{local}/  (Ctrl-C to stop)");
    if let Some(pg) = postgres {
        let at = pg.local_addr()?;
        let tls = if pg.has_tls() { "TLS available" } else { "no TLS" };
        eprintln!(
            "Serving PostgreSQL on {at} ({tls}): psql \"host={} port={} dbname=dealhouse user=<token name>\"",
            at.ip(),
            at.port()
        );
        tokio::spawn(pg.run());
    }
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
