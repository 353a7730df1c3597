//! `GET /api/v1/dimensions`: what the filter dropdowns offer (holdings, branches, managers, months,
//! pipelines, stages), narrowed by the holding and branch already chosen, the data's today, and the
//! reporting currency every money value is in (the UI loads this once at start).

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
            months with data (YYYY-MM, for from/to); pipelines with their deals, the main one (most deals) \
            first; stages in pipeline order; the data's today (`reference_date`: the day a month to date runs \
            through, `through` of /api/v1/metrics) and the last complete month before it. Complete lists, not \
            paged. `currency`: the reporting currency (ISO 4217, `[reporting] currency`) every money value of \
            the API is in.",
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
    let pipelines = queries::bind("dim_pipelines", &args)?.rows(&session).await?;
    let stages = queries::bind("dim_stages", &args)?.rows(&session).await?;
    let reference = queries::bind("dim_reference", &args)?.rows(&session).await?.into_iter().next();
    let field = |k: &str| reference.as_ref().and_then(|r| r.get(k).cloned()).unwrap_or(Value::Null);
    Ok(Json(json!({
        "holdings": holdings,
        "branches": branches,
        "managers": managers,
        "months": months,
        "pipelines": pipelines,
        "stages": stages,
        "reference_date": field("reference_date"),
        "last_complete_month": field("last_complete_month"),
        "currency": state.project().config.reporting.currency,
    })))
}

fn schema() -> Value {
    let rows = |query: &str| s::array(s::obj(&columns::of_query(query)));
    // The months are a plain list of the query's one column.
    let month = columns::of_query("dim_months").into_iter().map(|(_, v)| v).next().unwrap_or(Value::Null);
    // Single values from the one-row dim_reference (null without data).
    let column = |name: &str| {
        columns::of_query("dim_reference")
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| s::nullable(v))
            .unwrap_or(Value::Null)
    };
    s::obj(&[
        ("holdings", rows("dim_holdings")),
        ("branches", rows("dim_branches")),
        ("managers", rows("dim_managers")),
        ("months", s::array(month)),
        ("pipelines", rows("dim_pipelines")),
        ("stages", rows("dim_stages")),
        ("reference_date", column("reference_date")),
        ("last_complete_month", column("last_complete_month")),
        (
            "currency",
            s::text("The reporting currency (ISO 4217 code, `[reporting] currency`): every money value is in it."),
        ),
    ])
}
