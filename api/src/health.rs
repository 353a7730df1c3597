//! Liveness and readiness: `/healthz` (the process answers), `/readyz` (the warehouse can be
//! read). The Prometheus exposition is `prometheus.rs`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::auth::Principal;
use crate::route::{Route, schema};
use crate::{ApiError, AppState, ErrorCode};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: "/healthz",
            served_at: None,
            tag: "ops",
            content_type: "text/plain",
            request_body: None,
            summary: "Liveness",
            description: "Answers `ok` while the server runs.",
            params: Vec::new,
            response: || schema::text("`ok`."),
            handler: || get(healthz),
        },
        Route {
            method: "get",
            path: "/readyz",
            served_at: None,
            tag: "ops",
            content_type: "text/plain",
            request_body: None,
            summary: "Readiness",
            description: "200 when the warehouse can be read, else 503 JSON `not_ready`.",
            params: Vec::new,
            response: || schema::text("`ready`."),
            handler: || get(readyz),
        },
    ]
}

/// `GET /healthz`: the process is up and answering.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the warehouse's tables can be listed and a query session opened over them.
async fn readyz(State(state): State<AppState>) -> Response {
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
                ErrorCode::NotReady,
                "the warehouse cannot be read; see the server log",
            )
            .into_response()
        }
    }
}
