//! Operational endpoints: `/healthz` (the process answers), `/readyz` (the warehouse can be
//! read), `/metrics` (Prometheus text: HTTP and SQL metrics plus each table's version, rows and
//! last commit), and the middleware that counts requests.

use std::fmt::Write;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::auth::{Principal, Role};
use crate::prometheus::escape;
use crate::{ApiError, AppState};

/// How long the per-table part of `/metrics` is reused: it opens every Delta table.
pub const TABLE_METRICS_TTL: Duration = Duration::from_secs(30);

/// `GET /healthz`: the process is up and answering.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the warehouse's tables can be listed and a query session opened over them.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let checked = async {
        let tables = state.warehouse().list_tables().await?;
        state.session_for(&Principal::local_admin()).await?;
        Ok::<_, crate::Error>(tables.len())
    }
    .await;
    match checked {
        Ok(n) => Json(json!({ "status": "ready", "tables": n })).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the warehouse cannot be read; see the server log",
            )
            .into_response()
        }
    }
}

/// `GET /metrics` (admin): Prometheus text format.
pub async fn metrics(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin])?;
    let mut text = state.metrics().render();
    text.push_str(&table_metrics(&state).await);
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    Ok(response)
}

/// Each table's version, rows and last commit (time, and the operation and source dealhouse
/// recorded in it: which sync or build wrote it last), cached for [`TABLE_METRICS_TTL`].
async fn table_metrics(state: &AppState) -> String {
    let cache = state.table_metrics_cache();
    {
        let cached = cache.lock().await;
        if let Some((at, text)) = cached.as_ref()
            && at.elapsed() < TABLE_METRICS_TTL
        {
            return text.clone();
        }
    }
    let text = match read_table_metrics(state).await {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read table metrics");
            "# HELP dealhouse_warehouse_readable Whether the warehouse could be read.\n\
             # TYPE dealhouse_warehouse_readable gauge\ndealhouse_warehouse_readable 0\n"
                .to_string()
        }
    };
    *cache.lock().await = Some((Instant::now(), text.clone()));
    text
}

async fn read_table_metrics(state: &AppState) -> crate::Result<String> {
    let wh = state.warehouse();
    let (mut versions, mut rows, mut commits) = (String::new(), String::new(), String::new());
    for name in wh.list_tables().await? {
        let table = escape(&name);
        if let Some(info) = wh.info(&name).await? {
            let _ = writeln!(versions, "dealhouse_table_version{{table=\"{table}\"}} {}", info.version);
            let _ = writeln!(rows, "dealhouse_table_rows{{table=\"{table}\"}} {}", info.rows);
        }
        let Some(delta) = wh.open(&name).await? else { continue };
        let last = delta.history(Some(1)).try_next().await.ok().flatten();
        if let Some(commit) = last
            && let Some(ms) = commit.timestamp
        {
            let meta = commit.info.get("dealhouse");
            let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
            let _ = writeln!(
                commits,
                "dealhouse_table_last_commit_timestamp_seconds{{table=\"{table}\",operation=\"{}\",source=\"{}\"}} {}",
                escape(&field("operation")),
                escape(&field("source")),
                ms as f64 / 1000.0
            );
        }
    }
    Ok(format!(
        "# HELP dealhouse_warehouse_readable Whether the warehouse could be read.\n\
         # TYPE dealhouse_warehouse_readable gauge\ndealhouse_warehouse_readable 1\n\
         # HELP dealhouse_table_version Latest Delta version of each table.\n# TYPE dealhouse_table_version gauge\n{versions}\
         # HELP dealhouse_table_rows Rows in the latest version of each table.\n# TYPE dealhouse_table_rows gauge\n{rows}\
         # HELP dealhouse_table_last_commit_timestamp_seconds Time of each table's latest commit, with the sync or build that made it.\n\
         # TYPE dealhouse_table_last_commit_timestamp_seconds gauge\n{commits}"
    ))
}

/// Counts every request by its route pattern, method and status.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    state.metrics().request(&route, &method, response.status().as_u16(), started.elapsed());
    response
}
