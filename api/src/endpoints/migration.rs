//! The intake migration (`/api/v1/intake-migration`): legacy intake requests, each branch's
//! switch-off to the CRM, and the orphaned requests, for the dashboards.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, FROM, HOLDING, LIMIT, OFFSET, Param, Session, TO};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns, queries};

const INTAKE: &str = "/api/v1/intake-migration";

fn intake_params() -> Vec<Param> {
    vec![FROM, TO, HOLDING, BRANCH, LIMIT, OFFSET]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: INTAKE,
        served_at: None,
        tag: "dashboards",
        content_type: JSON,
        request_body: None,
        summary: "Intake migration: legacy requests, switch-off progress, orphans",
        description: "From mart_intake_request and branches.crm_switch_date, by the local month a request came in \
                (the branch's time zone; `from`/`to`). A request is unified when the system that recorded it also \
                holds the deals (the CRM), legacy otherwise. `summary`: branches selected and switched (switch \
                date on or before the end of `to`, else the reference day), legacy requests, those that came in \
                on or after their branch's switch date, orphans. `monthly`: legacy requests per branch and \
                month. `monthly_total`: per month, legacy and unified requests, deals created in the CRM and \
                branches switched by the month's end. `branches`: per branch. `rows` (paged): the orphans, \
                oldest first: requests neither rejected nor linked to an existing deal.",
        params: intake_params,
        response: intake_schema,
        handler: || get(intake),
    }]
}

async fn intake(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(INTAKE, q, &intake_params())?;
    let page = args.page()?;
    let summary = queries::bind("intake_summary", &args)?.first(&session).await?;
    let monthly = queries::bind("intake_monthly", &args)?.rows(&session).await?;
    let monthly_total = queries::bind("intake_monthly_total", &args)?.rows(&session).await?;
    let branches = queries::bind("intake_branch_progress", &args)?.rows(&session).await?;
    let (total, rows) = queries::bind("intake_orphans", &args)?.page(&session, page).await?;
    Ok(Json(json!({
        "summary": summary,
        "monthly": monthly,
        "monthly_total": monthly_total,
        "branches": branches,
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "rows": rows,
    })))
}

fn intake_schema() -> Value {
    let rows = |query: &str| s::array(s::obj(&columns::of_query(query)));
    s::obj(&[
        ("summary", s::obj(&columns::of_query("intake_summary"))),
        ("monthly", rows("intake_monthly")),
        ("monthly_total", rows("intake_monthly_total")),
        ("branches", rows("intake_branch_progress")),
        ("total", s::int("Orphans matching the filters.")),
        ("limit", s::int("Page size.")),
        ("offset", s::int("Rows skipped.")),
        ("rows", rows("intake_orphans")),
    ])
}
