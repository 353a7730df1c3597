//! Errors: one enum for the crate, and the JSON body every HTTP error has (a stable code and a
//! message safe to show; internal detail goes to the log).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Errors of the api crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server setup (bind address, listener).
    #[error("{0}")]
    Config(String),
    /// The warehouse failed.
    #[error(transparent)]
    Warehouse(#[from] dealhouse_warehouse::Error),
}

/// Result with the api [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP error: status, stable code, message.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

impl From<dealhouse_warehouse::Error> for ApiError {
    fn from(e: dealhouse_warehouse::Error) -> Self {
        match e {
            dealhouse_warehouse::Error::Sql(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_sql", m),
            dealhouse_warehouse::Error::DataFusion(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, "query_failed", e.to_string())
            }
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
            }
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Warehouse(w) => w.into(),
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
            }
        }
    }
}
