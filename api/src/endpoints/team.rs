//! Team endpoints: each manager's day (the daily report) and plan vs fact.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, FROM, HOLDING, Kind, LIMIT, MANAGER, OFFSET, Param, Session, TO, paged};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, ErrorCode, columns, queries};

const DAILY: &str = "/api/v1/managers/daily";
const PLAN_FACT: &str = "/api/v1/plan-fact";

const METRICS: &[&str] = &["won_amount", "commission", "deals_won", "calls", "meetings", "new_clients"];

fn daily_params() -> Vec<Param> {
    vec![
        FROM,
        TO,
        HOLDING,
        BRANCH,
        MANAGER,
        Param::new("day", Kind::Date, "One local day, YYYY-MM-DD (the daily report)."),
        LIMIT,
        OFFSET,
    ]
}

fn plan_fact_params() -> Vec<Param> {
    vec![
        FROM,
        TO,
        HOLDING,
        BRANCH,
        MANAGER,
        Param::new(
            "metric",
            Kind::List,
            "Planned metrics: won_amount, commission, deals_won, calls, meetings, new_clients.",
        ),
        LIMIT,
        OFFSET,
    ]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: DAILY,
            served_at: None,
            tag: "team",
            content_type: JSON,
            request_body: None,
            summary: "Each manager's day: activity and deals won and lost",
            description: "Per local day (the branch's time zone) and manager: done calls and meetings, proposals \
                sent, contracts signed, deals won and lost by their close time, won amount; latest day first, with \
                totals over every matching row. From mart_manager_daily.",
            params: daily_params,
            response: daily_schema,
            handler: || get(daily),
        },
        Route {
            method: "get",
            path: PLAN_FACT,
            served_at: None,
            tag: "team",
            content_type: JSON,
            request_body: None,
            summary: "Plan vs fact",
            description: "Every plan (month, branch, manager, metric) with its fact and completion = fact / plan; \
                `summary` sums plan and fact per metric and level (manager, branch, group) over the matching plans. \
                From mart_plan_fact.",
            params: plan_fact_params,
            response: plan_fact_schema,
            handler: || get(plan_fact),
        },
    ]
}

async fn daily(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(DAILY, q, &daily_params())?;
    let (total, rows) = queries::bind("manager_days", &args)?.page(&session, args.page()?).await?;
    let totals = queries::bind("manager_days_totals", &args)?.first(&session).await?;
    paged(total, &args, rows, json!({ "totals": totals }))
}

async fn plan_fact(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(PLAN_FACT, q, &plan_fact_params())?;
    for m in args.list("metric") {
        if !METRICS.contains(&m.as_str()) {
            return Err(crate::query::bad_request(
                ErrorCode::BadParameter,
                format!("`metric` must be among {}; got `{m}`", METRICS.join(", ")),
            ));
        }
    }
    let (total, rows) = queries::bind("plan_fact", &args)?.page(&session, args.page()?).await?;
    let summary = queries::bind("plan_fact_summary", &args)?.rows(&session).await?;
    paged(total, &args, rows, json!({ "summary": summary }))
}

fn daily_schema() -> Value {
    s::page(
        s::obj(&columns::of_query("manager_days")),
        &[("totals", s::obj(&columns::of_query("manager_days_totals")))],
    )
}

fn plan_fact_schema() -> Value {
    s::page(
        s::obj(&columns::of_query("plan_fact")),
        &[("summary", s::array(s::obj(&columns::of_query("plan_fact_summary"))))],
    )
}
