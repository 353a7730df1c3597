//! The dashboards' page and static assets (`/`, `/assets/{path}`), embedded in the binary by the
//! `dashboards` crate.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::route::{Route, schema};
use crate::{ApiError, ErrorCode};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: "/",
            served_at: None,
            tag: "dashboards",
            content_type: "text/html",
            request_body: None,
            summary: "The dashboards page",
            description: "The single-page dashboards UI (assets are embedded; works offline).",
            params: Vec::new,
            response: || schema::text("HTML."),
            handler: || get(index),
        },
        Route {
            method: "get",
            path: "/assets/{path}",
            served_at: Some("/assets/{*path}"),
            tag: "dashboards",
            content_type: "application/octet-stream",
            request_body: None,
            summary: "A dashboards asset",
            description: "A static file of the dashboards UI by its path (404 JSON error when there is none).",
            params: Vec::new,
            response: || json!({ "type": "string", "format": "binary" }),
            handler: || get(asset),
        },
    ]
}

async fn index() -> Response {
    asset(Path(String::new())).await
}

async fn asset(Path(path): Path<String>) -> Response {
    match dealhouse_dashboards::asset(&path) {
        Some(a) => ([(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type))], a.bytes).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no asset `{path}`")).into_response(),
    }
}
