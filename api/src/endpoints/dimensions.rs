//! `GET /api/v1/dimensions`: what the filter dropdowns offer (holdings, branches, managers, months,
//! stages), narrowed by the holding and branch already chosen.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use super::{JSON, Route, Session};
use crate::ApiError;
use crate::openapi::schema as s;
use crate::query::{Args, BRANCH, Columns, HOLDING, Param, Sql, where_all};

const DIMENSIONS: &str = "/api/v1/dimensions";

fn params() -> Vec<Param> {
    vec![HOLDING, BRANCH]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: DIMENSIONS,
        tag: "dimensions",
        content_type: JSON,
        request_body: None,
        summary: "Values for the filter dropdowns",
        description: "Holdings; branches (narrowed by `holding`); managers (narrowed by `holding` and `branch`); \
            months with data (YYYY-MM, for from/to); stages in pipeline order. Complete lists, not paged.",
        params,
        response: schema,
        handler: Some(|| get(dimensions)),
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
        ("holdings", s::array(s::obj(&[("holding_id", s::text("Id.")), ("name", s::text("Name."))]))),
        (
            "branches",
            s::array(s::obj(&[
                ("branch_id", s::text("Id.")),
                ("name", s::text("Name.")),
                ("holding_id", s::text("Holding.")),
                ("city", s::text("City.")),
                ("time_zone", s::text("IANA time zone.")),
            ])),
        ),
        (
            "managers",
            s::array(s::obj(&[
                ("manager_id", s::text("Id.")),
                ("name", s::text("Full name.")),
                ("branch_id", s::nullable(s::text("Branch."))),
                ("holding_id", s::nullable(s::text("Holding of the branch."))),
                ("active", s::boolean("Whether the account is active upstream.")),
            ])),
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
