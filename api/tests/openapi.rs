//! `openapi.json` as a reviewed snapshot (`snapshots/openapi__openapi.json.snap`): a changed
//! route, parameter or response schema shows as a diff to accept or reject (`cargo insta review`,
//! or `INSTA_UPDATE=always` and a look at `git diff`). The crate version is filtered out.
//! That the answers conform to the document is checked in dashboard_data.rs.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_snapshot() {
    let (_tmp, app) = app("").await;
    let (status, _, body) = call(&app, "GET", "/api/v1/openapi.json", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let doc: Value = serde_json::from_slice(&body).expect("openapi.json is JSON");
    insta::with_settings!({ filters => vec![(r#""version": "\d+\.\d+\.\d+[^"]*""#, r#""version": "[version]""#)] }, {
        insta::assert_json_snapshot!("openapi.json", doc);
    });
}
