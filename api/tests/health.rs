//! `/healthz`, `/readyz` and `/metrics`: liveness, a readable warehouse, and Prometheus text
//! with request counts by route and status, SQL durations and each table's last sync or build.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let (_tmp, app) = app("").await;
    for _ in 0..3 {
        let (status, _, body) = call(&app, "GET", "/healthz", None, None).await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, b"ok".as_slice()));
    }
    let (status, _, body) = call(&app, "GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["status"], "ready");
    // Every canonical table (the fixture writes them all) and every built-in model.
    let models = dealhouse_warehouse::models::load_models(None).expect("models").len();
    let canonical = dealhouse_warehouse::schema::canonical_tables().len();
    assert_eq!(v["tables"], serde_json::json!(canonical + models));

    assert_eq!(scalar(&app, ANALYST, "select count(*) from branches").await, "3");
    let (status, _) = sql(&app, Some(ANALYST), "drop table deals").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let _ = call(&app, "GET", "/api/v1/tables", None, None).await;

    let (status, headers, body) = call(&app, "GET", "/metrics", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap_or("").starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(body).expect("utf-8");
    for line in [
        "dealhouse_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 3",
        "dealhouse_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"} 1",
        "dealhouse_http_requests_total{route=\"/api/v1/sql\",method=\"POST\",status=\"200\"} 1",
        "dealhouse_http_requests_total{route=\"/api/v1/sql\",method=\"POST\",status=\"400\"} 1",
        "dealhouse_http_requests_total{route=\"/api/v1/tables\",method=\"GET\",status=\"401\"} 1",
        "dealhouse_http_request_duration_seconds_count{route=\"/healthz\",method=\"GET\",status=\"200\"} 3",
        "dealhouse_http_request_duration_seconds_bucket{route=\"/healthz\",method=\"GET\",status=\"200\",le=\"+Inf\"} 3",
        "dealhouse_sql_query_duration_seconds_count{outcome=\"ok\"} 1",
        "dealhouse_sql_query_duration_seconds_count{outcome=\"refused\"} 1",
        "dealhouse_sql_queries_running 0",
        "dealhouse_warehouse_readable 1",
        // The fixture wrote 7 deals and 3 branches; models are written by `build`.
        "dealhouse_table_rows{table=\"deals\"} 7",
        "dealhouse_table_rows{table=\"branches\"} 3",
        "# TYPE dealhouse_http_request_duration_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
    }
    let commit = |table: &str, operation: &str, source: &str| {
        format!(
            "dealhouse_table_last_commit_timestamp_seconds{{table=\"{table}\",operation=\"{operation}\",source=\"{source}\"}} "
        )
    };
    for prefix in [commit("deals", "sync", "fixture"), commit("fct_deal", "build", "fct_deal")] {
        let line = text.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no `{prefix}`:\n{text}"));
        let seconds: f64 = line[prefix.len()..].parse().expect("a timestamp");
        let now = chrono::Utc::now().timestamp() as f64;
        // Written by this test binary's fixture, minutes ago at most.
        assert!(seconds > now - 3600.0 && seconds <= now + 1.0, "{line}");
    }
}
