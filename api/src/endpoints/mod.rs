//! The dashboard-data endpoints (`/api/v1/funnel`, `/pipeline`, ..., `/metrics`): one route table
//! that both registers the handlers and documents them (`openapi.rs`), and the one place every
//! handler gets its query session from ([`Session`]).

mod clients;
mod dimensions;
mod sales;
mod team;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{MethodRouter, get};
use dealhouse_warehouse::session::QuerySession;
use serde_json::Value;

use crate::query::Param;
use crate::{ApiError, AppState};

/// The query session a handler reads through. Every endpoint of this module takes it as an
/// extractor, so this impl is the single place to scope sessions to the caller (e.g. to the
/// principal's branches) when authentication is wired in.
pub struct Session(pub QuerySession);

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The caller's token decides what the session holds: a branch-scoped principal gets
        // tables already filtered to its branches.
        let principal = crate::auth::Principal::from_request_parts(parts, state).await?;
        Ok(Session(state.session_for(&principal).await?))
    }
}

/// One documented route. The same entry registers the handler and writes its OpenAPI operation.
pub struct Route {
    /// HTTP method, lowercase as OpenAPI spells it.
    pub method: &'static str,
    /// Path in axum's and OpenAPI's `{param}` syntax.
    pub path: &'static str,
    /// Grouping tag in the document.
    pub tag: &'static str,
    /// Media type of the 200 answer.
    pub content_type: &'static str,
    /// JSON schema of the request body, for routes that take one.
    pub request_body: Option<fn() -> Value>,
    /// One line.
    pub summary: &'static str,
    /// What it answers and how its numbers are defined.
    pub description: &'static str,
    /// Query parameters.
    pub params: fn() -> Vec<Param>,
    /// JSON schema of the 200 answer.
    pub response: fn() -> Value,
    /// The handler; None for routes registered elsewhere (documented here only).
    pub handler: Option<fn() -> MethodRouter<AppState>>,
}

/// Media type of the JSON answers.
pub const JSON: &str = "application/json";

/// Every dashboard-data route.
pub fn routes() -> Vec<Route> {
    let mut out = vec![
        Route {
            method: "get",
            path: crate::metrics::PATH,
            tag: "metrics",
            content_type: JSON,
            request_body: None,
            summary: "Measures from the semantic layer at a requested grain",
            description: "Measures (GET /api/v1/metrics/catalog lists them with their definitions) grouped by `by` \
                dimensions and filtered by `from`/`to` and any dimension. Ratios are computed from summed parts at \
                the requested grain. Measures of different tables are joined on the requested dimensions; a \
                measure whose table lacks one is refused with 400. Counts are integers, money exact decimal \
                strings, ratios/hours/days numbers; rows are ordered by the dimensions.",
            params: crate::metrics::params,
            response: crate::metrics::response_schema,
            handler: Some(|| get(crate::metrics::handler)),
        },
        Route {
            method: "get",
            path: "/api/v1/metrics/catalog",
            tag: "metrics",
            content_type: JSON,
            request_body: None,
            summary: "The semantic layer's definitions",
            description: "Dimensions, tables (with the SQL they read) and measures (unit, description, how they \
                aggregate), as compiled in from api/metrics.toml.",
            params: Vec::new,
            response: crate::metrics::catalog_schema,
            handler: Some(|| get(crate::metrics::catalog_handler)),
        },
    ];
    out.extend(sales::routes());
    out.extend(clients::routes());
    out.extend(team::routes());
    out.extend(dimensions::routes());
    out
}

/// The dashboard-data routes and the OpenAPI document, registered from the documented table
/// (`openapi::all_routes`), so nothing is served undocumented.
pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for r in crate::openapi::all_routes() {
        if let Some(handler) = r.handler {
            router = router.route(r.path, handler());
        }
    }
    router
}
