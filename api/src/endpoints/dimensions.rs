//! `GET /api/v1/dimensions`: what the filter dropdowns offer (holdings, branches, managers, months,
//! stages), narrowed by the holding and branch already chosen, and the reporting currency every
//! money value is in (the UI loads this once at start).

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, HOLDING, Param, Session};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, AppState, columns, queries};

const DIMENSIONS: &str = "/api/v1/dimensions";

fn params() -> Vec<Param> {
    vec![HOLDING, BRANCH]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: DIMENSIONS,
        served_at: None,
        tag: "dimensions",
        content_type: JSON,
        request_body: None,
        summary: "Values for the filter dropdowns",
        description: "Holdings; branches (narrowed by `holding`); managers (narrowed by `holding` and `branch`); \
            months with data (YYYY-MM, for from/to); stages in pipeline order. Complete lists, not paged. \
            `currency`: the reporting currency (ISO 4217, `[reporting] currency`) every money value of the \
            API is in.",
        params,
        response: schema,
        handler: || get(dimensions),
    }]
}

async fn dimensions(
    State(state): State<AppState>,
    Session(session): Session,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(DIMENSIONS, q, &params())?;
    let holdings = queries::bind("dim_holdings", &args)?.rows(&session).await?;
    let branches = queries::bind("dim_branches", &args)?.rows(&session).await?;
    let managers = queries::bind("dim_managers", &args)?.rows(&session).await?;
    let months: Vec<Value> = queries::bind("dim_months", &args)?
        .rows(&session)
        .await?
        .into_iter()
        .filter_map(|r| r.get("month").cloned())
        .collect();
    let stages = queries::bind("dim_stages", &args)?.rows(&session).await?;
    Ok(Json(json!({
        "holdings": holdings,
        "branches": branches,
        "managers": managers,
        "months": months,
        "stages": stages,
        "currency": state.project().config.reporting.currency,
    })))
}

fn schema() -> Value {
    let rows = |query: &str| s::array(s::obj(&columns::of_query(query)));
    // The months are a plain list of the query's one column.
    let month = columns::of_query("dim_months").into_iter().map(|(_, v)| v).next().unwrap_or(Value::Null);
    s::obj(&[
        ("holdings", rows("dim_holdings")),
        ("branches", rows("dim_branches")),
        ("managers", rows("dim_managers")),
        ("months", s::array(month)),
        ("stages", rows("dim_stages")),
        (
            "currency",
            s::text("The reporting currency (ISO 4217 code, `[reporting] currency`): every money value is in it."),
        ),
    ])
}
