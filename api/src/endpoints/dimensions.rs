//! `GET /api/v1/dimensions`: what the filter dropdowns offer (holdings, branches, managers, months,
//! stages), narrowed by the holding and branch already chosen.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, Columns, HOLDING, Param, Session, Sql, where_all};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns};

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
            months with data (YYYY-MM, for from/to); stages in pipeline order. Complete lists, not paged.",
        params,
        response: schema,
        handler: || get(dimensions),
    }]
}

async fn dimensions(
    Session(session): Session,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(DIMENSIONS, q, &params())?;
    let holdings =
        Sql::default().rows(&session, "select holding_id, name from holdings order by name, holding_id").await?;

    let mut bsql = Sql::default();
    let bfilter = where_all(&args.filters(&mut bsql, &Columns { holding: Some("holding_id"), ..Columns::default() })?);
    let branches = bsql
        .rows(
            &session,
            &format!(
                "select branch_id, name, holding_id, city, time_zone from branches {bfilter} order by name, branch_id"
            ),
        )
        .await?;

    let mut msql = Sql::default();
    let mcols = Columns { holding: Some("b.holding_id"), branch: Some("m.branch_id"), ..Columns::default() };
    let mfilter = where_all(&args.filters(&mut msql, &mcols)?);
    let managers = msql
        .rows(
            &session,
            &format!(
                "select m.manager_id, m.name, m.branch_id, b.holding_id, m.active
                from managers m
                left join branches b on b.branch_id = m.branch_id
                {mfilter}
                order by m.name, m.manager_id"
            ),
        )
        .await?;

    let months: Vec<Value> = Sql::default()
        .rows(&session, "select to_char(month, '%Y-%m') as month from dim_month order by month")
        .await?
        .into_iter()
        .filter_map(|r| r.get("month").cloned())
        .collect();
    let stages =
        Sql::default().rows(&session, "select stage, stage_order, is_open from dim_stage order by stage_order").await?;
    Ok(Json(json!({
        "holdings": holdings,
        "branches": branches,
        "managers": managers,
        "months": months,
        "stages": stages,
    })))
}

fn schema() -> Value {
    s::obj(&[
        // The canonical tables' columns, types and docs from schema.rs.
        ("holdings", s::array(s::obj(&columns::of("holdings", &["holding_id", "name"])))),
        (
            "branches",
            s::array(s::obj(&columns::of("branches", &["branch_id", "name", "holding_id", "city", "time_zone"]))),
        ),
        (
            "managers",
            s::array(s::obj(&{
                let mut row = columns::of("managers", &["manager_id", "name", "branch_id", "active"]);
                row.push(("holding_id", s::nullable(s::text("Holding of the branch."))));
                row
            })),
        ),
        ("months", s::array(s::text("A month with data, YYYY-MM."))),
        (
            "stages",
            s::array(s::obj(&[
                ("stage", s::text("Stage.")),
                ("stage_order", s::int("Position.")),
                ("is_open", s::boolean("Whether deals are worked in it.")),
            ])),
        ),
    ])
}
