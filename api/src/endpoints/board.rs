//! The kanban board's cards (`/api/v1/board`: the largest open deals of each stage) and time in
//! stage with medians (`/api/v1/stage-time`), for the dashboards.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use dealhouse_warehouse::datafusion::common::ScalarValue;
use serde_json::{Value, json};

use crate::ApiError;
use crate::query::{Args, BRANCH, Columns, FROM, HOLDING, Kind, MANAGER, Param, Session, Sql, TO, where_all};
use crate::route::{JSON, Route, schema as s};

const BOARD: &str = "/api/v1/board";
const STAGE_TIME: &str = "/api/v1/stage-time";

/// Cards per kanban column unless `per_stage` says otherwise.
const DEFAULT_PER_STAGE: usize = 12;

fn common() -> Vec<Param> {
    vec![FROM, TO, HOLDING, BRANCH, MANAGER]
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
    let args = Args::parse(BOARD, q, &board_params())?;
    let per_stage = args.integer("per_stage", 100)?.unwrap_or(DEFAULT_PER_STAGE);
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("b.created_month"),
        holding: Some("b.holding_id"),
        branch: Some("b.branch_id"),
        manager: Some("b.manager_id"),
    };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    let limit = sql.bind(ScalarValue::Int64(Some(per_stage as i64)));
    // The cards come from mart_deal_board; names are looked up in the caller's scoped tables.
    let text = format!(
        "with cards as (
            select b.deal_id, t.title, b.client_id, c.name as client_name, b.holding_id, b.branch_id, b.time_zone,
                b.manager_id, m.name as manager_name, b.stage, b.stage_order, b.amount, b.commission, b.created_at,
                b.entered_stage_at, b.days_in_stage, b.stalled, b.days_idle,
                row_number() over (partition by b.stage order by b.amount desc nulls last, b.deal_id) as rank_in_stage
            from mart_deal_board b
            left join deals t on t.deal_id = b.deal_id
            left join clients c on c.client_id = b.client_id
            left join managers m on m.manager_id = b.manager_id
            {filter}
        )
        select * from cards where rank_in_stage <= {limit} order by stage_order, rank_in_stage"
    );
    let rows = sql.rows(&session, &text).await?;
    Ok(Json(json!({ "per_stage": per_stage, "rows": rows })))
}

async fn stage_time(
    Session(session): Session,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(STAGE_TIME, q, &common())?;
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("left_month"),
        holding: Some("holding_id"),
        branch: Some("branch_id"),
        manager: Some("manager_id"),
    };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    // Every open stage appears, with no stays where nothing matched. From whole seconds, with
    // aggregates whose result does not depend on the order the rows arrive in (an average of
    // floats, or a t-digest, does), so the same data always give the same answer. The 90th
    // percentile is percentile_cont's, interpolated in exact tenths of a second as
    // mart_time_in_stage does (DataFusion's own cuts the weight to millionths).
    let text = format!(
        "with ranked as (
            select stage, seconds_in_stage,
                row_number() over (partition by stage order by seconds_in_stage) as position,
                count(*) over (partition by stage) as stays_in_stage
            from mart_stage_stay {filter}
        ),
        a as (
            select stage, count(*) as stays,
                median(cast(seconds_in_stage as double)) / 86400 as median_days,
                cast(sum(seconds_in_stage) as double) / (count(*) * 86400) as mean_days,
                max(case when position = 9 * (stays_in_stage - 1) / 10 + 1 then seconds_in_stage end) as p90_below,
                max(case when position = 9 * (stays_in_stage - 1) / 10 + 2 then seconds_in_stage end) as p90_above,
                max(9 * (stays_in_stage - 1) % 10) as p90_tenths
            from ranked
            group by stage
        )
        select g.stage, g.stage_order, coalesce(a.stays, 0) as stays, a.median_days, a.mean_days,
            cast(10 * a.p90_below + (coalesce(a.p90_above, a.p90_below) - a.p90_below) * a.p90_tenths as double)
                / 864000 as p90_days
        from dim_stage g
        left join a on a.stage = g.stage
        where g.is_open
        order by g.stage_order"
    );
    let rows = sql.rows(&session, &text).await?;
    Ok(Json(json!({ "rows": rows })))
}

/// The cards: mart_deal_board's columns (types and docs from the model), the names looked up
/// beside them and the rank.
fn board_schema() -> Value {
    let mut row = crate::columns::of(
        "mart_deal_board",
        &[
            "deal_id",
            "client_id",
            "holding_id",
            "branch_id",
            "time_zone",
            "manager_id",
            "stage",
            "stage_order",
            "amount",
            "commission",
            "created_at",
            "entered_stage_at",
            "days_in_stage",
            "stalled",
            "days_idle",
        ],
    );
    row.extend([
        ("title", s::nullable(s::text("Title."))),
        ("client_name", s::nullable(s::text("Client name."))),
        ("manager_name", s::nullable(s::text("Manager name."))),
        ("rank_in_stage", s::int("1 = the stage's largest amount.")),
    ]);
    s::obj(&[("per_stage", s::int("Cards per stage at most.")), ("rows", s::array(s::obj(&row)))])
}

fn stage_time_schema() -> Value {
    s::obj(&[(
        "rows",
        s::array(s::obj(&[
            ("stage", s::text("Open stage.")),
            ("stage_order", s::int("Its position.")),
            ("stays", s::int("Completed stays.")),
            ("median_days", s::nullable(s::num("Median days of a stay."))),
            ("mean_days", s::nullable(s::num("Mean days of a stay."))),
            ("p90_days", s::nullable(s::num("90th percentile of days (interpolated)."))),
        ])),
    )])
}
