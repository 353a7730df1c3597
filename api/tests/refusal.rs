//! Hostile SQL: DDL, DML, COPY, SET, file and URL reads, huge expressions, unbounded generators,
//! cross joins of every table, oversize bodies. Each is answered with a 4xx and a JSON code, and
//! a parallel stream of ordinary queries keeps being answered correctly meanwhile; afterwards no
//! query is left running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sql_is_refused_while_normal_queries_keep_working() {
    let (_tmp, app) =
        app("query_timeout_seconds = 3\nquery_memory_mb = 64\nmax_concurrent_queries = 4\nmax_result_rows = 1000")
            .await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let normal = {
        let (app, stop, ok, bad) = (app.clone(), stop.clone(), ok.clone(), bad.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let (status, v) = sql(&app, Some(MSK), "select count(*) as n, sum(amount) as a from deals").await;
                // msk: 3 deals, 390.50 (fixture, by hand).
                if status == StatusCode::OK && v["rows"][0]["n"] == 3 && v["rows"][0]["a"] == "390.50" {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    bad.fetch_add(1, Ordering::Relaxed);
                    eprintln!("normal query failed: {status} {v}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let cases = hostile::hostile();
    assert!(cases.len() >= 30);
    for (query, codes) in &cases {
        let started = Instant::now();
        let (status, v) = sql(&app, Some(ANALYST), query).await;
        let shown: String = query.chars().take(80).collect();
        assert!(
            matches!(status.as_u16(), 400 | 408 | 413 | 422),
            "{shown}: status {status}, body {}",
            v.to_string().chars().take(300).collect::<String>()
        );
        let code = v["code"].as_str().unwrap_or("");
        assert!(codes.contains(&code), "{shown}: code `{code}` not in {codes:?}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{shown}: {v}");
        // Nothing runs past the 3 s limit (plus scheduling slack on two busy cores).
        assert!(started.elapsed() < Duration::from_secs(15), "{shown} took {:?}", started.elapsed());
    }

    // Bodies past the HTTP limit, broken JSON, unknown fields and formats: JSON errors too.
    let big = serde_json::json!({ "sql": format!("select '{}'", "x".repeat(300 * 1024)) }).to_string();
    let raw_cases: [(String, u16, &str); 5] = [
        (big, 413, "body_too_large"),
        (serde_json::json!({ "sql": format!("select '{}'", "x".repeat(70 * 1024)) }).to_string(), 413, "sql_too_large"),
        ("{\"sql\": ".into(), 400, "bad_request"),
        ("{\"query\": \"select 1\"}".into(), 422, "bad_request"),
        ("{\"sql\": \"select 1\", \"format\": \"xml\"}".into(), 400, "bad_format"),
    ];
    for (body, status, code) in raw_cases {
        let (got, _, bytes) = call(&app, "POST", "/api/v1/sql", Some(ANALYST), Some(body)).await;
        let v: Value = serde_json::from_slice(&bytes).expect("json error body");
        assert_eq!((got.as_u16(), v["code"].as_str()), (status, Some(code)), "{v}");
    }
    // Unknown routes and methods answer JSON as well.
    let (status, _, bytes) = call(&app, "GET", "/api/v1/nope", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).expect("json")["code"], "not_found");
    let (status, _, bytes) = call(&app, "GET", "/api/v1/sql", Some(ANALYST), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(serde_json::from_slice::<Value>(&bytes).expect("json")["code"], "method_not_allowed");

    stop.store(true, Ordering::Relaxed);
    normal.await.expect("normal stream");
    let (ok, bad) = (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed));
    assert_eq!(bad, 0, "ordinary queries failed while hostile ones ran");
    assert!(ok >= 10, "only {ok} ordinary queries were answered meanwhile");

    // The cancelled queries really stopped: none is left running.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, bytes) = call(&app, "GET", "/metrics", Some(ADMIN), None).await;
        let text = String::from_utf8_lossy(&bytes).to_string();
        if text.contains("dealhouse_sql_queries_running 0\n") {
            assert!(text.contains("dealhouse_sql_query_duration_seconds_count{outcome=\"refused\"}"), "{text}");
            break;
        }
        assert!(Instant::now() < deadline, "queries still running after their time limit:\n{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_capped_and_come_in_three_formats() {
    let (_tmp, app) = app("max_result_rows = 4").await;
    // 7 deals, 4 rows allowed.
    let (status, v) = sql(&app, Some(ADMIN), "select deal_id, amount from deals order by deal_id").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["truncated"], true);
    assert_eq!(v["rows"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["columns"], serde_json::json!(["deal_id", "amount"]));
    // Sorted ids: crm:d-msk-1 (100.00) comes first; decimals stay exact strings.
    assert_eq!(v["rows"][0]["deal_id"], "crm:d-msk-1");
    assert_eq!(v["rows"][0]["amount"], "100.00");
    let (_, v) = sql(&app, Some(ADMIN), "select deal_id from deals where branch_id = 'nsk'").await;
    assert_eq!(v["truncated"], false);

    // CSV by the format field, and by Accept.
    let body = serde_json::json!({ "sql": "select deal_id, amount from deals where branch_id = 'spb' order by deal_id", "format": "csv" });
    let (status, headers, bytes) = call(&app, "POST", "/api/v1/sql", Some(ADMIN), Some(body.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap_or("").starts_with("text/csv"));
    assert_eq!(String::from_utf8_lossy(&bytes), "deal_id,amount\ncrm:d-spb-1,1000.00\ncrm:d-spb-2,2000.00\n");
    assert_eq!(headers[dealhouse_api::TRUNCATED_HEADER], "false");

    let req = axum::http::Request::builder()
        .method("POST")
        .uri("/api/v1/sql")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .header("accept", dealhouse_api::ARROW_STREAM)
        .body(axum::body::Body::from(
            serde_json::json!({ "sql": "select sum(amount) as total from deals" }).to_string(),
        ))
        .expect("request");
    let response = tower::ServiceExt::oneshot(app.clone(), req).await.expect("answers");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let reader =
        dealhouse_warehouse::datafusion::arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .expect("an Arrow stream");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("batches");
    let column = batches[0].column(0);
    // Exact decimal: 10690.50 is 1069050 hundredths.
    let decimals = column
        .as_any()
        .downcast_ref::<dealhouse_warehouse::datafusion::arrow::array::Decimal128Array>()
        .expect("a decimal column");
    assert_eq!((decimals.value(0), decimals.scale()), (1_069_050, 2));
}
