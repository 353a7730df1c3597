//! One deal's card (`/api/v1/deal-card`): the deal, its stays in each stage and its latest
//! activities, for the dashboards' drill-down.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, Kind, Param, Session, Sql};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns};

const DEAL_CARD: &str = "/api/v1/deal-card";

fn deal_card_params() -> Vec<Param> {
    vec![Param::new("deal", Kind::List, "Canonical deal id (`crm:123`); one.").required()]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: DEAL_CARD,
        served_at: None,
        tag: "dashboards",
        content_type: JSON,
        request_body: None,
        summary: "One deal with its stage history and activities",
        description: "The deal as /api/v1/deals gives it plus its branch's time zone, its stays in each stage \
                (fct_stage_transition) and its latest 100 activities. `deal` is null when there is no such deal \
                (or it is not visible to the caller).",
        params: deal_card_params,
        response: deal_card_schema,
        handler: || get(deal_card),
    }]
}

async fn deal_card(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(DEAL_CARD, q, &deal_card_params())?;
    let id = args.list("deal").first().cloned().unwrap_or_default();
    let mut sql = Sql::default();
    let p = sql.text(&id);
    let deal = sql
        .rows(
            &session,
            &format!(
                "select d.deal_id, d.source_system, d.source_id, t.title, d.client_id, c.name as client_name,
                    d.holding_id, d.branch_id, d.time_zone, d.manager_id, m.name as manager_name, d.pipeline, d.stage,
                    d.status, d.last_open_stage, d.amount, d.commission, d.created_at, d.closed_at, d.lost_reason
                from fct_deal d
                left join deals t on t.deal_id = d.deal_id
                left join clients c on c.client_id = d.client_id
                left join managers m on m.manager_id = d.manager_id
                where d.deal_id = {p}"
            ),
        )
        .await?
        .into_iter()
        .next();
    let Some(deal) = deal else {
        return Ok(Json(json!({ "deal": null, "stages": [], "activities": [] })));
    };
    let stages = sql
        .rows(
            &session,
            &format!(
                "select entry_seq, stage, entered_at, left_at, seconds_in_stage / 86400.0 as days_in_stage
                from fct_stage_transition where deal_id = {p} order by entry_seq"
            ),
        )
        .await?;
    let activities = sql
        .rows(
            &session,
            &format!(
                "select a.activity_type, a.direction, a.at, a.done, a.result, a.manager_id, m.name as manager_name
                from activities a left join managers m on m.manager_id = a.manager_id
                where a.deal_id = {p} order by a.at desc limit 100"
            ),
        )
        .await?;
    Ok(Json(json!({ "deal": deal, "stages": stages, "activities": activities })))
}

fn deal_card_schema() -> Value {
    s::obj(&[
        (
            "deal",
            s::nullable(
                json!({ "type": "object", "description": "The deal (as /api/v1/deals rows, plus time_zone)." }),
            ),
        ),
        (
            "stages",
            s::array(s::obj(&{
                let mut row = columns::of("fct_stage_transition", &["entry_seq", "stage", "entered_at", "left_at"]);
                row.push(("days_in_stage", s::nullable(s::num("Days the stay lasted."))));
                row
            })),
        ),
        (
            "activities",
            s::array(s::obj(&{
                let mut row =
                    columns::of("activities", &["activity_type", "direction", "at", "done", "result", "manager_id"]);
                row.push(("manager_name", s::nullable(s::text("Manager name."))));
                row
            })),
        ),
    ])
}
