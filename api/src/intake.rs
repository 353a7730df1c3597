//! `POST /api/v1/intake/{source}`: records pushed by the self-service portal and CRM webhooks.
//! The answer comes only after the records are committed (durable); see `ingest::push`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use dealhouse_ingest::push::{self, Accepted, Refused};

use crate::auth::{Principal, Role};
use crate::{ApiError, AppState};

/// Stores the pushed records; 200 with the counts, 400 for a body that is not JSON objects
/// (nothing stored), 404 for a source that is not a push source.
pub async fn intake(
    State(state): State<AppState>,
    principal: Principal,
    Path(source): Path<String>,
    body: Bytes,
) -> Result<Json<Accepted>, ApiError> {
    // Writers are the portal and CRM webhooks: give them an admin token of their own.
    principal.require(&[Role::Admin])?;
    match push::accept(state.inner.project.clone(), &state.inner.warehouse, &source, &body).await {
        Ok(accepted) => {
            tracing::info!(source, received = accepted.received, inserted = accepted.inserted, "intake");
            Ok(Json(accepted))
        }
        Err(Refused::UnknownSource(m)) => Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_source", m)),
        Err(Refused::BadBody(m)) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_body", m)),
        Err(Refused::Failed(e)) => {
            tracing::error!(source, error = %e, "intake failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "intake_failed",
                "the records could not be stored; nothing was acknowledged, retry later (see the server log)",
            ))
        }
    }
}
