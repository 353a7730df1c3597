//! Push intake (`POST /api/v1/intake/{source}`): records arrive as one object, an array or JSON
//! Lines; they are in the table when the answer comes; a replay does not duplicate; bad records
//! go to quarantine with their reason; a broken body stores nothing; only admin tokens write.

mod common;

use axum::http::StatusCode;
use common::*;
use dealhouse_warehouse::session::QuerySession;
use serde_json::Value;

const PUSH: &str =
    "\n[sources.portal]\nkind = \"push\"\ntable = \"intake_requests\"\ntime_zone = \"Asia/Vladivostok\"\n";

async fn count(wh: &dealhouse_warehouse::Warehouse, sql: &str) -> String {
    let session = QuerySession::open(wh).await.expect("session");
    let batches = session.query(sql).await.expect("query");
    dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0)
        .expect("displayable")
}

async fn push(app: &axum::Router, token: &str, body: &str) -> (StatusCode, Value) {
    let (status, _, bytes) = call(app, "POST", "/api/v1/intake/portal", Some(token), Some(body.to_string())).await;
    (status, serde_json::from_slice(&bytes).expect("json answer"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_records_are_stored_before_the_answer_and_replays_do_not_duplicate() {
    let (_tmp, project, wh) = project(&(tokens_toml("") + PUSH));
    let state = dealhouse_api::AppState::new(project, wh.clone()).await.expect("state");
    let app = dealhouse_api::router(state);

    // JSON Lines: two good records (one in local Vladivostok time)
    // and one with an unknown department.
    let lines = concat!(
        r#"{"source_id": "r1", "department": "self_service", "branch_id": "msk", "created_at": "2026-11-20 09:30:00", "status": "new", "subject": "Концерт"}"#,
        "\n",
        r#"{"source_id": "r2", "department": "marketing", "created_at": "2026-11-20T01:00:00Z", "status": "done"}"#,
        "\n",
        r#"{"source_id": "r3", "department": "sales", "created_at": "2026-11-20T01:00:00Z", "status": "new"}"#,
        "\n"
    );
    let (status, v) = push(&app, ADMIN, lines).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let reasons = {
        let session = QuerySession::open(&wh).await.expect("session");
        let b = session.query("select string_agg(reason, ' / ') from quarantine").await.expect("query");
        dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string(b[0].column(0), 0).unwrap()
    };
    assert_eq!(
        (v["received"].as_u64(), v["inserted"].as_u64(), v["quarantined"].as_u64()),
        (Some(3), Some(2), Some(1)),
        "{reasons}"
    );
    // Durable when answered: a fresh session sees the rows. 09:30 in Vladivostok (UTC+10) is
    // 23:30 UTC the day before.
    assert_eq!(count(&wh, "select count(*) from intake_requests where source_system = 'portal'").await, "2");
    assert_eq!(
        count(&wh, "select cast(created_at as varchar) || '|' || status || '|' || request_id from intake_requests where source_id = 'r1'").await,
        "2026-11-19T23:30:00Z|new|portal:r1"
    );
    let reason = count(&wh, "select reason from quarantine where source_system = 'portal'").await;
    assert!(reason.contains("department") && reason.contains("sales"), "{reason}");

    // The same records again (a webhook retry), as one array: nothing new; r2 changed status.
    let replay = r#"[{"source_id": "r1", "department": "self_service", "branch_id": "msk", "created_at": "2026-11-20 09:30:00", "status": "new", "subject": "Концерт"},
                     {"source_id": "r2", "department": "marketing", "created_at": "2026-11-20T01:00:00Z", "status": "rejected"}]"#;
    let (status, v) = push(&app, ADMIN, replay).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["inserted"].as_u64(), v["updated"].as_u64()), (Some(0), Some(1)));
    assert_eq!(count(&wh, "select count(*) from intake_requests where source_system = 'portal'").await, "2");
    assert_eq!(count(&wh, "select status from intake_requests where source_id = 'r2'").await, "rejected");

    // A broken body stores nothing and says where it broke.
    let (status, v) =
        push(&app, ADMIN, "{\"source_id\": \"r9\", \"department\": \"marketing\",\n \"created_at\": ").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "bad_body");
    assert!(v["message"].as_str().unwrap().contains("line 2"), "{v}");
    let (status, v) = push(&app, ADMIN, "[1, 2]").await;
    assert_eq!((status, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_body")));
    assert_eq!(count(&wh, "select count(*) from intake_requests where source_system = 'portal'").await, "2");

    // Only admin tokens write; an unknown source is a 404 naming the push sources.
    let (status, _) = push(&app, MSK, lines).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, body) = call(&app, "POST", "/api/v1/intake/crm", Some(ADMIN), Some(lines.into())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert!(v["message"].as_str().unwrap().contains("portal"), "{v}");
}
