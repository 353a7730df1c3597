//! Errors: one enum for the crate, the stable API error codes ([`ErrorCode`], also the OpenAPI
//! `Error` schema's `code` enum), and the JSON body every HTTP error has (a stable code and a
//! message safe to show; internal detail goes to the log).

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dealhouse_warehouse::sql_guard::RefusalCode;
use serde::Serialize;

/// Errors of the api crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Server setup (bind address, listener).
    #[error("{0}")]
    Config(String),
    /// A compiled-in query file (`api/queries`) is malformed: a mistake the unit tests catch.
    #[error("{origin}: {message}")]
    QueryFile {
        /// `api/queries/x.sql` or `...:line`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A report could not be computed, rendered or written (`dealhouse export`): which report,
    /// which section when one is at fault, and what to do.
    #[error("report `{report}`{}: {message}", section.as_deref().map(|s| format!(", section `{s}`")).unwrap_or_default())]
    Report {
        /// The report id.
        report: String,
        /// The section at fault, if one is.
        section: Option<String>,
        /// What is wrong and the fix.
        message: String,
    },
    /// An alert could not be evaluated or its state recorded: which alert, and what to do.
    #[error("alert `{alert}`: {message}")]
    Alert {
        /// The `[alerts.NAME]`.
        alert: String,
        /// What is wrong and the fix.
        message: String,
    },
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

/// The stable, machine-readable code of every API error (the `code` of the JSON body). The wire
/// spelling is the variant in snake_case; the OpenAPI `Error` schema lists them from [`ErrorCode::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A malformed request the more specific codes do not cover (e.g. a body that is not the JSON asked for).
    BadRequest,
    /// A query parameter the route does not document.
    UnknownParameter,
    /// A query parameter with a malformed or out-of-range value.
    BadParameter,
    /// A required query parameter is missing or empty.
    MissingParameter,
    /// A measure the semantic layer does not define.
    UnknownMeasure,
    /// A dimension the semantic layer does not define.
    UnknownDimension,
    /// A measure cannot be grouped or filtered by a requested dimension.
    IncompatibleDimensions,
    /// A measure needs a dimension that was not requested.
    DimensionRequired,
    /// A measure cannot be grouped or filtered by a dimension.
    DimensionExcluded,
    /// SQL that does not parse or plan, or is not read-only.
    BadSql,
    /// SQL text over the size limit.
    SqlTooLarge,
    /// SQL nested or chained past the guard's limits.
    SqlTooComplex,
    /// SQL calling a table function or unbounded generator.
    FunctionNotAllowed,
    /// A query failed while running.
    QueryFailed,
    /// A query needs more memory than the server allows.
    MemoryLimit,
    /// A query ran past the time limit.
    QueryTimeout,
    /// Every query slot is taken.
    Busy,
    /// An unknown answer format.
    BadFormat,
    /// The request body is over the size limit.
    BodyTooLarge,
    /// A pushed body that is not JSON objects.
    BadBody,
    /// A push to a source that is not a push source.
    UnknownSource,
    /// Pushed records could not be stored.
    IntakeFailed,
    /// No bearer token, or a malformed Authorization header.
    Unauthorized,
    /// A token that matches none configured.
    InvalidToken,
    /// A token past its expiry.
    TokenExpired,
    /// The token's role may not use the route.
    Forbidden,
    /// No such route, asset or dashboard.
    NotFound,
    /// The route exists, not with this method.
    MethodNotAllowed,
    /// The body's media type is not accepted.
    UnsupportedMediaType,
    /// The warehouse cannot be read (readiness).
    NotReady,
    /// Anything else; the detail is in the server log.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the OpenAPI document lists them.
    pub const ALL: [ErrorCode; 31] = [
        ErrorCode::BadRequest,
        ErrorCode::UnknownParameter,
        ErrorCode::BadParameter,
        ErrorCode::MissingParameter,
        ErrorCode::UnknownMeasure,
        ErrorCode::UnknownDimension,
        ErrorCode::IncompatibleDimensions,
        ErrorCode::DimensionRequired,
        ErrorCode::DimensionExcluded,
        ErrorCode::BadSql,
        ErrorCode::SqlTooLarge,
        ErrorCode::SqlTooComplex,
        ErrorCode::FunctionNotAllowed,
        ErrorCode::QueryFailed,
        ErrorCode::MemoryLimit,
        ErrorCode::QueryTimeout,
        ErrorCode::Busy,
        ErrorCode::BadFormat,
        ErrorCode::BodyTooLarge,
        ErrorCode::BadBody,
        ErrorCode::UnknownSource,
        ErrorCode::IntakeFailed,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotReady,
        ErrorCode::Internal,
    ];

    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnknownParameter => "unknown_parameter",
            ErrorCode::BadParameter => "bad_parameter",
            ErrorCode::MissingParameter => "missing_parameter",
            ErrorCode::UnknownMeasure => "unknown_measure",
            ErrorCode::UnknownDimension => "unknown_dimension",
            ErrorCode::IncompatibleDimensions => "incompatible_dimensions",
            ErrorCode::DimensionRequired => "dimension_required",
            ErrorCode::DimensionExcluded => "dimension_excluded",
            ErrorCode::BadSql => "bad_sql",
            ErrorCode::SqlTooLarge => "sql_too_large",
            ErrorCode::SqlTooComplex => "sql_too_complex",
            ErrorCode::FunctionNotAllowed => "function_not_allowed",
            ErrorCode::QueryFailed => "query_failed",
            ErrorCode::MemoryLimit => "memory_limit",
            ErrorCode::QueryTimeout => "query_timeout",
            ErrorCode::Busy => "busy",
            ErrorCode::BadFormat => "bad_format",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::BadBody => "bad_body",
            ErrorCode::UnknownSource => "unknown_source",
            ErrorCode::IntakeFailed => "intake_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Internal => "internal",
        }
    }

    /// The code of a refusal by `dealhouse_warehouse::sql_guard`.
    fn of_refusal(code: RefusalCode) -> Self {
        match code {
            RefusalCode::SqlTooLarge => ErrorCode::SqlTooLarge,
            RefusalCode::SqlTooComplex => ErrorCode::SqlTooComplex,
            RefusalCode::FunctionNotAllowed => ErrorCode::FunctionNotAllowed,
            RefusalCode::BadSql => ErrorCode::BadSql,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An HTTP error: status, stable code, message.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    status: StatusCode,
    #[serde(skip)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, headers: vec![], code, message: message.into() }
    }

    /// A 500 whose detail is already in the log: the body says only where to look.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal error; see the server log")
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
            e if e.is_bad_sql() => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadSql, e.to_string()),
            dealhouse_warehouse::Error::Refused { code, message } => {
                let code = ErrorCode::of_refusal(code);
                let status = if code == ErrorCode::SqlTooLarge {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                };
                ApiError::new(status, code, message)
            }
            dealhouse_warehouse::Error::DataFusion(e) => datafusion_error(e),
            other => {
                tracing::error!(error = %other, "internal error");
                ApiError::internal()
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
                ApiError::internal()
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
            ErrorCode::MemoryLimit,
            format!("the query needs more memory than the server allows ({m}); aggregate more or select fewer rows"),
        ),
        E::Plan(_) | E::SQL(..) | E::SchemaError(..) | E::NotImplemented(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadSql, e.to_string())
        }
        _ => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::QueryFailed, e.to_string()),
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
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire spelling is serde's and `as_str`'s alike, for every code, and no code repeats.
    #[test]
    fn codes_serialize_as_their_wire_strings() {
        let mut seen = std::collections::BTreeSet::new();
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), serde_json::json!(code.as_str()));
            assert!(seen.insert(code.as_str()), "{code} twice");
        }
    }
}
