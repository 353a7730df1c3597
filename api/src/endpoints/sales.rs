//! Deal endpoints: the funnel, the pipeline kanban, stalled deals, the branch leaderboard and the
//! deal drill-down behind any of their numbers.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, FROM, HOLDING, Kind, LIMIT, MANAGER, OFFSET, PIPELINE, Param, Session, TO, paged};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns, queries};

const FUNNEL: &str = "/api/v1/funnel";
const OPEN_PIPELINE: &str = "/api/v1/pipeline";
const STALLED: &str = "/api/v1/stalled";
const LEADERBOARD: &str = "/api/v1/leaderboard";
const DEALS: &str = "/api/v1/deals";

const COMMON: [Param; 7] = [FROM, TO, HOLDING, BRANCH, MANAGER, LIMIT, OFFSET];
const MAIN_PATH: &[&str] = &["new", "contact", "proposal", "negotiation", "contract", "won"];
const STAGE: Param = Param::new("stage", Kind::List, "Current stages, comma-separated (new .. contract, won, lost).");

fn common() -> Vec<Param> {
    COMMON.to_vec()
}

/// The endpoints over stages: a pipeline is its own process, so they take one (or several).
fn by_pipeline() -> Vec<Param> {
    let mut p = common();
    p.push(PIPELINE);
    p
}

fn stalled_params() -> Vec<Param> {
    let mut p = by_pipeline();
    p.push(STAGE);
    p
}

fn deals_params() -> Vec<Param> {
    let mut p = by_pipeline();
    p.extend([
        STAGE,
        Param::new("status", Kind::List, "Statuses: open, won, lost."),
        Param::new(
            "last_open_stage",
            Kind::List,
            "The last open stage (for lost deals: the stage they were lost from).",
        ),
        Param::new(
            "reached",
            Kind::Enum(MAIN_PATH),
            "Deals whose furthest main-path stage is this one or later (the funnel's deals_reached).",
        ),
        Param::new("created_month", Kind::Month, "Deals created in this local month, YYYY-MM."),
        Param::new("closed_month", Kind::Month, "Deals closed (won or lost) in this local month, YYYY-MM."),
        Param::new(
            "period",
            Kind::Enum(&["created", "closed"]),
            "Which month from/to compare with: created (default) or closed.",
        ),
        Param::new("client", Kind::List, "Client ids."),
        Param::new(
            "sort",
            Kind::Enum(&["created_at", "closed_at", "amount", "commission"]),
            "Sort column (default created_at).",
        ),
        Param::new("order", Kind::Enum(&["asc", "desc"]), "Sort order (default desc; nulls last)."),
    ]);
    p
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: FUNNEL,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Stage funnel of the deals created in the period",
            description: "Per main-path stage (new .. won): deals that reached it (a skipped stage counts as reached) \
                and that went further, by creation cohort so late conversions count; step_conversion = advanced / \
                reached, conversion_from_previous = reached / reached of the previous stage, conversion_from_start = \
                reached / reached of new. From mart_funnel_monthly; `from`/`to` select the creation months.",
            params: by_pipeline,
            response: funnel_schema,
            handler: || get(funnel),
        },
        Route {
            method: "get",
            path: OPEN_PIPELINE,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Open pipeline per stage (kanban) with the weighted forecast",
            description: "Every open stage with its open deals, amount, commission and amount weighted by the stage's \
                historical win rate (as mart_pipeline_now), plus totals. `from`/`to` select the deals by creation month.",
            params: by_pipeline,
            response: pipeline_schema,
            handler: || get(pipeline),
        },
        Route {
            method: "get",
            path: STALLED,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Stalled deals, largest first",
            description: "Open deals idle (no call, meeting, email or stage change) past their stage's SLA at the \
                reference time, from mart_stalled_deals, ordered by amount descending. `from`/`to` select the deals by \
                creation month.",
            params: stalled_params,
            response: stalled_schema,
            handler: || get(stalled),
        },
        Route {
            method: "get",
            path: LEADERBOARD,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Branches ranked by won amount, with win rate and a monthly sparkline",
            description: "Branches by the amount of deals won in the period (close month), with commission, won and \
                lost deals, win rate = won / (won + lost), and `series`: won amount and deals per month of the period. \
                Without a manager filter every branch appears, with zeros when it closed nothing.",
            params: common,
            response: leaderboard_schema,
            handler: || get(leaderboard),
        },
        Route {
            method: "get",
            path: DEALS,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "The deals behind any aggregate (drill-down)",
            description: "Deals from fct_deal with the common filters (from/to compare with the creation month, or the \
                close month with period=closed) and stage, status, last open stage, stage reached, creation or close \
                month and client; `total` and `total_amount` cover every matching deal.",
            params: deals_params,
            response: deals_schema,
            handler: || get(deals),
        },
    ]
}

async fn funnel(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(FUNNEL, q, &by_pipeline())?;
    let (total, rows) = queries::bind("funnel", &args)?.page(&session, args.page()?).await?;
    paged(total, &args, rows, json!({}))
}

async fn pipeline(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(OPEN_PIPELINE, q, &by_pipeline())?;
    let (total, rows) = queries::bind("pipeline", &args)?.page(&session, args.page()?).await?;
    let totals = queries::bind("pipeline_totals", &args)?.first(&session).await?;
    paged(total, &args, rows, json!({ "totals": totals }))
}

async fn stalled(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(STALLED, q, &stalled_params())?;
    let (total, rows) = queries::bind("stalled", &args)?.page(&session, args.page()?).await?;
    let sums = queries::bind("stalled_total", &args)?.first(&session).await?;
    paged(total, &args, rows, json!({ "total_amount": sums["total_amount"] }))
}

async fn leaderboard(
    Session(session): Session,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(LEADERBOARD, q, &common())?;
    let (total, mut rows) = queries::bind("leaderboard", &args)?.page(&session, args.page()?).await?;

    // The sparkline: every month of the period, zeros where a branch closed nothing.
    let months: Vec<String> = queries::bind("leaderboard_months", &args)?
        .rows(&session)
        .await?
        .into_iter()
        .filter_map(|r| r.get("month").and_then(Value::as_str).map(str::to_string))
        .collect();
    let points = queries::bind("leaderboard_series", &args)?.rows(&session).await?;
    let mut by_branch: BTreeMap<(Option<String>, String), (Value, Value)> = BTreeMap::new();
    for p in points {
        let branch = p.get("branch_id").and_then(Value::as_str).map(str::to_string);
        let month = p.get("month").and_then(Value::as_str).unwrap_or_default().to_string();
        by_branch.insert((branch, month), (p["won_amount"].clone(), p["deals_won"].clone()));
    }
    for row in &mut rows {
        let branch = row.get("branch_id").and_then(Value::as_str).map(str::to_string);
        let series: Vec<Value> = months
            .iter()
            .map(|m| {
                let (amount, deals) =
                    by_branch.get(&(branch.clone(), m.clone())).cloned().unwrap_or((json!("0.00"), json!(0)));
                json!({ "month": m, "won_amount": amount, "deals_won": deals })
            })
            .collect();
        if let Some(o) = row.as_object_mut() {
            o.insert("series".into(), Value::Array(series));
        }
    }
    paged(total, &args, rows, json!({ "months": months }))
}

async fn deals(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(DEALS, q, &deals_params())?;
    let (total, rows) = queries::bind("deals", &args)?.page(&session, args.page()?).await?;
    let sums = queries::bind("deals_total", &args)?.first(&session).await?;
    paged(total, &args, rows, json!({ "total_amount": sums["total_amount"] }))
}

/// The schema of a query file's one column (a total beside a page).
fn column_of(query: &str, column: &str) -> Value {
    columns::of_query(query)
        .into_iter()
        .find(|(c, _)| c == column)
        .map(|(_, v)| v)
        .unwrap_or_else(|| json!({ "description": format!("{} {query}.{column}", columns::UNKNOWN) }))
}

fn funnel_schema() -> Value {
    s::page(s::obj(&columns::of_query("funnel")), &[])
}

fn pipeline_schema() -> Value {
    s::page(s::obj(&columns::of_query("pipeline")), &[("totals", s::obj(&columns::of_query("pipeline_totals")))])
}

fn stalled_schema() -> Value {
    s::page(s::obj(&columns::of_query("stalled")), &[("total_amount", column_of("stalled_total", "total_amount"))])
}

fn leaderboard_schema() -> Value {
    // Each branch's series holds every month of the period: the series query's columns but the
    // branch, which the row already names.
    let mut point = columns::of_query("leaderboard_series");
    point.retain(|(c, _)| c != "branch_id");
    let mut row = columns::of_query("leaderboard");
    row.push(("series".into(), s::array(s::obj(&point))));
    s::page(s::obj(&row), &[("months", s::array(s::date("The period's months, in order (the series' x axis).")))])
}

fn deals_schema() -> Value {
    s::page(s::obj(&columns::of_query("deals")), &[("total_amount", column_of("deals_total", "total_amount"))])
}
