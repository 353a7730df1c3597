//! One deal's card (`/api/v1/deal-card`): the deal, its stays in each stage and its latest
//! activities, for the dashboards' drill-down.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, Kind, Param, Session};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns, queries};

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
    let deal = queries::bind("deal_card", &args)?.first(&session).await?;
    if deal.is_null() {
        return Ok(Json(json!({ "deal": null, "stages": [], "activities": [] })));
    }
    let stages = queries::bind("deal_card_stages", &args)?.rows(&session).await?;
    let activities = queries::bind("deal_card_activities", &args)?.rows(&session).await?;
    Ok(Json(json!({ "deal": deal, "stages": stages, "activities": activities })))
}

fn deal_card_schema() -> Value {
    let rows = |query: &str| s::array(s::obj(&columns::of_query(query)));
    s::obj(&[
        ("deal", s::nullable(s::obj(&columns::of_query("deal_card")))),
        ("stages", rows("deal_card_stages")),
        ("activities", rows("deal_card_activities")),
    ])
}
