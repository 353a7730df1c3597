//! Errors: one enum for the crate, and the JSON body every HTTP error has (a stable code and a
//! message safe to show; internal detail goes to the log).

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
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

impl From<dealhouse_warehouse::datafusion::error::DataFusionError> for Error {
    fn from(e: dealhouse_warehouse::datafusion::error::DataFusionError) -> Self {
        Error::Warehouse(e.into())
    }
}

/// Result with the api [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An HTTP error: status, stable code, message.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, headers: vec![], code, message: message.into() }
    }

    /// The same error with a response header (`WWW-Authenticate`, `Retry-After`).
    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<dealhouse_warehouse::Error> for ApiError {
    fn from(e: dealhouse_warehouse::Error) -> Self {
        match e {
            e if e.is_bad_sql() => ApiError::new(StatusCode::BAD_REQUEST, "bad_sql", e.to_string()),
            dealhouse_warehouse::Error::Refused { code, message } => {
                let status =
                    if code == "sql_too_large" { StatusCode::PAYLOAD_TOO_LARGE } else { StatusCode::BAD_REQUEST };
                ApiError::new(status, code, message)
            }
            dealhouse_warehouse::Error::DataFusion(e) => datafusion_error(e),
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

/// A query's DataFusion error: running out of the shared memory pool is its own code; planning
/// and execution errors are the caller's query (the message names only what the caller may see:
/// scoped tables filter below anything the query evaluates).
fn datafusion_error(e: dealhouse_warehouse::datafusion::error::DataFusionError) -> ApiError {
    use dealhouse_warehouse::datafusion::error::DataFusionError as E;
    match e.find_root() {
        E::ResourcesExhausted(m) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "memory_limit",
            format!("the query needs more memory than the server allows ({m}); aggregate more or select fewer rows"),
        ),
        E::Plan(_) | E::SQL(..) | E::SchemaError(..) | E::NotImplemented(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_sql", e.to_string())
        }
        _ => ApiError::new(StatusCode::BAD_REQUEST, "query_failed", e.to_string()),
    }
}

/// Gives every error response the JSON body `{code, message}`, also those made outside the
/// handlers (the body size limit, unknown methods, axum's extractor rejections).
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = match text {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut error = ApiError::new(status, code, message).into_response();
    for (name, value) in parts.headers.iter() {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            error.headers_mut().insert(name.clone(), value.clone());
        }
    }
    error
}
