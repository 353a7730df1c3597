//! The Prometheus exposition (`GET /metrics`, text format 0.0.4, written by `prometheus-client`):
//! request counts and latency histograms by route and status, analyst SQL durations by outcome,
//! queries running, and each table's version, rows and last commit; and the middleware that
//! counts requests.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;
use prometheus_client::encoding::{EncodeLabelSet, prometheus_text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::auth::{Principal, Role};
use crate::route::{Route, schema};
use crate::{ApiError, AppState};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How long the per-table part of `/metrics` is reused: it opens every Delta table.
pub const TABLE_METRICS_TTL: Duration = Duration::from_secs(30);

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: "/metrics",
        served_at: None,
        tag: "ops",
        content_type: "text/plain",
        request_body: None,
        summary: "Prometheus metrics (admin token)",
        description: "Requests by route and status, latency histograms, SQL durations by outcome, running \
            queries, table versions, rows and last commits, in Prometheus text format.",
        params: Vec::new,
        response: || schema::text("Prometheus text exposition format."),
        handler: || get(exposition),
    }]
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabels {
    table: String,
    operation: String,
    source: String,
}

type Latency<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency() -> Histogram {
    Histogram::new(BUCKETS)
}

/// The server's in-process metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Latency<RequestLabels>,
    queries: Latency<QueryLabels>,
    running: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds: Latency<RequestLabels> = Family::new_with_constructor(latency as fn() -> Histogram);
        let queries: Latency<QueryLabels> = Family::new_with_constructor(latency as fn() -> Histogram);
        let running = Gauge::default();
        let mut registry = Registry::default();
        // The registry adds the final period of each help text (and `_total` to counters).
        registry.register(
            "dealhouse_http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "dealhouse_http_request_duration_seconds",
            "Time to answer HTTP requests",
            request_seconds.clone(),
        );
        registry.register(
            "dealhouse_sql_query_duration_seconds",
            "Analyst SQL from arrival to answer, by outcome",
            queries.clone(),
        );
        registry.register("dealhouse_sql_queries_running", "Analyst queries running now", running.clone());
        Self { registry, requests, request_seconds, queries, running }
    }
}

impl Metrics {
    /// Records one answered request. `route` is the matched route pattern, never the raw path
    /// (which would make one series per URL).
    pub fn request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let labels = RequestLabels { route: route.to_string(), method: method.to_string(), status };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// Records one analyst query: `ok`, `refused`, `failed`, `timeout`, `busy`.
    pub fn query(&self, outcome: &'static str, took: Duration) {
        self.queries.get_or_create(&QueryLabels { outcome: outcome.to_string() }).observe(took.as_secs_f64());
    }

    /// Adds `delta` to the number of queries running.
    pub fn queries_running(&self, delta: i64) {
        self.running.inc_by(delta);
    }

    /// The text exposition of the in-process metrics.
    pub fn render(&self) -> String {
        encode(&self.registry)
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_text::encode(&mut out, registry) {
        // Writing to a String fails only if an encoder does; the rest is still worth sending.
        tracing::error!(error = %e, "cannot encode metrics");
    }
    out
}

/// `GET /metrics` (admin): Prometheus text format.
async fn exposition(State(state): State<AppState>, principal: Principal) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin])?;
    let mut text = state.metrics().render();
    text.push_str(&table_metrics(&state).await);
    let mut response = text.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(prometheus_text::CONTENT_TYPE));
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
            let mut registry = Registry::default();
            registry.register(READABLE.0, READABLE.1, Gauge::<i64>::default());
            encode(&registry)
        }
    };
    *cache.lock().await = Some((Instant::now(), text.clone()));
    text
}

/// Name and help of the gauge saying whether the warehouse could be read (1) or not (0).
const READABLE: (&str, &str) = ("dealhouse_warehouse_readable", "Whether the warehouse could be read");

async fn read_table_metrics(state: &AppState) -> crate::Result<String> {
    let wh = state.warehouse();
    let versions = Family::<TableLabels, Gauge>::default();
    let rows = Family::<TableLabels, Gauge>::default();
    let commits = Family::<CommitLabels, Gauge<f64, AtomicU64>>::default();
    for name in wh.list_tables().await? {
        let table = TableLabels { table: name.clone() };
        if let Some(info) = wh.info(&name).await? {
            versions.get_or_create(&table).set(info.version);
            rows.get_or_create(&table).set(i64::try_from(info.rows).unwrap_or(i64::MAX));
        }
        let Some(delta) = wh.open(&name).await? else { continue };
        let last = delta.history(Some(1)).try_next().await.ok().flatten();
        if let Some(commit) = last
            && let Some(ms) = commit.timestamp
        {
            let meta = commit.info.get("dealhouse");
            let field = |k: &str| meta.and_then(|m| m.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
            let labels = CommitLabels { table: name.clone(), operation: field("operation"), source: field("source") };
            commits.get_or_create(&labels).set(ms as f64 / 1000.0);
        }
    }
    let readable = Gauge::<i64>::default();
    readable.set(1);
    let mut registry = Registry::default();
    registry.register(READABLE.0, READABLE.1, readable);
    registry.register("dealhouse_table_version", "Latest Delta version of each table", versions);
    registry.register("dealhouse_table_rows", "Rows in the latest version of each table", rows);
    registry.register(
        "dealhouse_table_last_commit_timestamp_seconds",
        "Time of each table's latest commit, with the sync or build that made it",
        commits,
    );
    Ok(encode(&registry))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.request("/a", "GET", 200, Duration::from_millis(3));
        m.request("/a", "GET", 200, Duration::from_millis(70));
        m.request("/a", "GET", 200, Duration::from_secs(60));
        m.request("/b\"c", "GET", 404, Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("dealhouse_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# HELP dealhouse_http_requests_total HTTP requests answered, by route, method and status.\n"
            )
        );
        let bucket = |le: &str| {
            format!(
                "dealhouse_http_request_duration_seconds_bucket{{route=\"/a\",method=\"GET\",status=\"200\",le=\"{le}\"}} "
            )
        };
        // 3 ms is in every bucket from 0.005; 70 ms from 0.1; 60 s only in +Inf.
        assert!(text.contains(&format!("{}1\n", bucket("0.005"))), "{text}");
        assert!(text.contains(&format!("{}1\n", bucket("0.05"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("0.1"))), "{text}");
        assert!(text.contains(&format!("{}2\n", bucket("30"))), "{text}");
        assert!(text.contains(&format!("{}3\n", bucket("+Inf"))), "{text}");
        // Label values are escaped.
        assert!(text.contains("route=\"/b\\\"c\""), "{text}");
    }
}
