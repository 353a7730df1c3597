//! `POST /api/v1/intake/{source}`: records pushed by the self-service portal and CRM webhooks.
//! The answer comes only after the records are committed (durable); see `ingest::push`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use dealhouse_ingest::push::{self, Accepted, Refused};
use serde_json::json;

use crate::auth::{Principal, Role};
use crate::route::{JSON, Route, schema};
use crate::{ApiError, AppState, ErrorCode};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "post",
        path: "/api/v1/intake/{source}",
        served_at: None,
        tag: "intake",
        content_type: JSON,
        request_body: Some(|| {
            json!({
                "description": "One JSON object, an array of objects, or JSON Lines; keys are the canonical \
                    column names of the push source's table (`source_id` required); at most 10000 records."
            })
        }),
        summary: "Push records to a `kind = \"push\"` source",
        description: "The records are committed to the source's table before the answer; a replayed \
            `source_id` replaces the stored record. Rows that do not map go to `quarantine`. 400 `bad_body` \
            when the body is not JSON objects (nothing stored), 404 `unknown_source`.",
        params: Vec::new,
        response: || {
            schema::obj(&[
                ("table", schema::text("Canonical table written.")),
                ("received", schema::int("Records received.")),
                ("inserted", schema::int("Records new to the table.")),
                ("updated", schema::int("Records that replaced a stored version.")),
                ("quarantined", schema::int("Records quarantined with their reason.")),
            ])
        },
        handler: || post(intake),
    }]
}

/// Stores the pushed records; 200 with the counts, 400 for a body that is not JSON objects
/// (nothing stored), 404 for a source that is not a push source.
async fn intake(
    State(state): State<AppState>,
    principal: Principal,
    Path(source): Path<String>,
    body: Bytes,
) -> Result<Json<Accepted>, ApiError> {
    // Writers are the portal and CRM webhooks: give them an admin token of their own.
    principal.require(&[Role::Admin])?;
    match push::accept(state.project().clone(), state.warehouse(), &source, &body).await {
        Ok(accepted) => {
            tracing::info!(source, received = accepted.received, inserted = accepted.inserted, "intake");
            Ok(Json(accepted))
        }
        Err(Refused::UnknownSource(m)) => Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::UnknownSource, m)),
        Err(Refused::BadBody(m)) => Err(ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadBody, m)),
        Err(Refused::Failed(e)) => {
            tracing::error!(source, error = %e, "intake failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::IntakeFailed,
                "the records could not be stored; nothing was acknowledged, retry later (see the server log)",
            ))
        }
    }
}
