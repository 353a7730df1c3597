//! `GET /api/v1/alerts`: the occurrences of the alerts (open ones by default), read through the
//! caller's session, so a branch token sees only its branch's and alerts about no branch (a late
//! source, a failing data test) only unscoped principals see.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use dealhouse_warehouse::datafusion::prelude::{col, ident};
use serde_json::{Value, json};

use super::events::{ALERT_EVENTS_TABLE, COLUMNS};
use crate::ApiError;
use crate::query::{Args, Kind, Param, Session, batches_to_json};
use crate::route::{JSON, Route, schema as s};

const PATH: &str = "/api/v1/alerts";

const STATE: Param = Param::new(
    "state",
    Kind::Enum(&["open", "resolved", "all"]),
    "Which occurrences: `open` (default: not resolved), `resolved`, or `all`.",
);

fn params() -> Vec<Param> {
    vec![STATE]
}

/// The routes of this module.
pub(crate) fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: PATH,
        served_at: None,
        tag: "alerts",
        content_type: JSON,
        request_body: None,
        summary: "Alert occurrences: open, resolved or all",
        description: "The occurrences of the [alerts.*] rules of dealhouse.toml (evaluated after each build, by \
            `dealhouse alerts` and on their own schedule), newest first. An occurrence is a row a rule returned, \
            identified by the alert and its key; it is delivered once when it opens and resolved when the rule no \
            longer returns it. A branch or holding token sees only its branches' occurrences.",
        params,
        response: response_schema,
        handler: || get(alerts),
    }]
}

async fn alerts(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(PATH, q, &params())?;
    let state = args.one("state").unwrap_or("open").to_string();
    // No evaluation yet (or a scope that may not see the table): nothing is open.
    let Ok(df) = session.context().table(ALERT_EVENTS_TABLE).await else {
        return Ok(Json(json!({ "state": state, "total": 0, "rows": [] })));
    };
    let resolved = ident("resolved_at");
    let df = match state.as_str() {
        "open" => df.filter(resolved.is_null()),
        "resolved" => df.filter(resolved.is_not_null()),
        _ => Ok(df),
    }
    .and_then(|df| df.select(COLUMNS.iter().map(|(c, _)| ident(*c)).collect::<Vec<_>>()))
    .and_then(|df| {
        df.sort(vec![
            col("opened_at").sort(false, true),
            ident("alert").sort(true, true),
            ident("key").sort(true, true),
        ])
    })
    .map_err(dealhouse_warehouse::Error::from)?;
    let batches = df.collect().await.map_err(dealhouse_warehouse::Error::from)?;
    let rows = batches_to_json(&batches)?;
    Ok(Json(json!({ "state": state, "total": rows.len(), "rows": rows })))
}

fn response_schema() -> Value {
    let column = |name: &str, doc: &str| -> Value {
        match name {
            "opened_at" | "last_seen_at" => s::timestamp(doc),
            "resolved_at" | "delivered_at" => s::nullable(s::timestamp(doc)),
            "branch_id" => s::nullable(s::text(doc)),
            _ => s::text(doc),
        }
    };
    let row: Vec<(&str, Value)> = COLUMNS.iter().map(|(c, d)| (*c, column(c, d))).collect();
    s::obj(&[
        ("state", s::text("The state asked for: open, resolved or all.")),
        ("total", s::int("Occurrences listed.")),
        ("rows", s::array(s::obj(&row))),
    ])
}
