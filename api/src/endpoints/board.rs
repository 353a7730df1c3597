//! The kanban board's cards (`/api/v1/board`: the largest open deals of each stage) and time in
//! stage with medians (`/api/v1/stage-time`), for the dashboards.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, FROM, HOLDING, Kind, MANAGER, PIPELINE, Param, Session, TO};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns, queries};

const BOARD: &str = "/api/v1/board";
const STAGE_TIME: &str = "/api/v1/stage-time";

/// Cards per kanban column unless `per_stage` says otherwise.
const DEFAULT_PER_STAGE: usize = 12;

fn common() -> Vec<Param> {
    vec![FROM, TO, PIPELINE, HOLDING, BRANCH, MANAGER]
}

fn board_params() -> Vec<Param> {
    let mut p = common();
    p.push(Param::new(
        "per_stage",
        Kind::Integer(100),
        "Cards per stage, largest amount first (default 12, at most 100).",
    ));
    p
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: BOARD,
            served_at: None,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "Kanban cards: the largest open deals of each stage",
            description: "Open deals (mart_deal_board), at most `per_stage` per stage by amount, with client, manager, \
                the time they entered their current stage and whole days in it at the reference time (the \
                latest deals.updated_at, as mart_stalled_deals), and whether they are stalled. `from`/`to` \
                select the deals by creation month. The column headers' money comes from /api/v1/pipeline.",
            params: board_params,
            response: board_schema,
            handler: || get(board),
        },
        Route {
            method: "get",
            path: STAGE_TIME,
            served_at: None,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "Time deals spend in each open stage: median, mean, 90th percentile",
            description: "Completed stays in open stages (mart_stage_stay), by the local month the deal left \
                the stage (`from`/`to`) and the deal's holding, branch and manager, from each stay's whole seconds \
                (days = seconds / 86400). The median and the 90th percentile (interpolated) are over the stays \
                themselves (mart_time_in_stage's do not add up across its grain).",
            params: common,
            response: stage_time_schema,
            handler: || get(stage_time),
        },
    ]
}

async fn board(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let mut args = Args::parse(BOARD, q, &board_params())?;
    args.or_default("per_stage", DEFAULT_PER_STAGE.to_string());
    let per_stage = args.integer("per_stage", 100)?.unwrap_or(DEFAULT_PER_STAGE);
    let rows = queries::bind("board", &args)?.rows(&session).await?;
    Ok(Json(json!({ "per_stage": per_stage, "rows": rows })))
}

async fn stage_time(
    Session(session): Session,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(STAGE_TIME, q, &common())?;
    let rows = queries::bind("stage_time", &args)?.rows(&session).await?;
    Ok(Json(json!({ "rows": rows })))
}

fn board_schema() -> Value {
    s::obj(&[
        ("per_stage", s::int("Cards per stage at most.")),
        ("rows", s::array(s::obj(&columns::of_query("board")))),
    ])
}

fn stage_time_schema() -> Value {
    s::obj(&[("rows", s::array(s::obj(&columns::of_query("stage_time"))))])
}
