//! The intake migration audit over HTTP (`/api/v1/audit/intake`): the same document as
//! `dealhouse audit intake --format json`, computed in the caller's scope (a branch token sees
//! only its branches' requests, so only their findings).

use axum::Json;
use axum::extract::{Query, State};
use axum::routing::get;
use chrono::{DateTime, Utc};
use dealhouse_warehouse::as_of::TableAt;
use serde_json::{Value, json};

use crate::audit::{self, render};
use crate::error::ErrorCode;
use crate::query::{Args, Kind, Param, bad_request};
use crate::route::{JSON, Route, schema as s};
use crate::state::AppState;
use crate::{ApiError, Principal};

const AUDIT_INTAKE: &str = "/api/v1/audit/intake";

const VERSION: Param = Param::new(
    "version",
    Kind::Integer(i64::MAX as usize),
    "Delta version of intake_requests to read (default: the current one).",
);
const AS_OF: Param = Param::new(
    "as_of",
    Kind::Date,
    "Read the tables as they were at the end of this UTC day, YYYY-MM-DD (not with `version`).",
);

fn params() -> Vec<Param> {
    vec![VERSION, AS_OF]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: AUDIT_INTAKE,
        served_at: None,
        tag: "audit",
        content_type: JSON,
        request_body: None,
        summary: "Intake migration audit: matches, findings, volumes, lead times and verdicts per branch",
        description: "Legacy intake requests paired with the CRM's (by the kept reference, then by client INN, \
                department, date and subject similarity), every finding with the records it is about, per \
                branch and department the weekly volumes around the switch and lead times before and after \
                (geometric mean, 95% interval), and each switched branch's verdict with the rule that decided \
                it ([audit] in dealhouse.toml; README, \"Auditing the intake migration\"). Reads intake_requests \
                at `version` or `as_of` (default: the current version) and says which in `read`; the same \
                version gives the same document. A branch-scoped token sees only its branches.",
        params,
        response: schema,
        handler: || get(intake),
    }]
}

async fn intake(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(AUDIT_INTAKE, q, &params())?;
    let version = args.integer("version", i64::MAX as usize)?;
    let as_of = args.date("as_of")?;
    let at = match (version, as_of) {
        (Some(_), Some(_)) => {
            return Err(bad_request(ErrorCode::BadParameter, "give `version` or `as_of`, not both"));
        }
        (Some(v), None) => TableAt::Version(v as i64),
        (None, Some(day)) => {
            let end: Option<DateTime<Utc>> = day.succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
            match end {
                Some(t) => TableAt::Time(t - chrono::TimeDelta::microseconds(1)),
                None => return Err(bad_request(ErrorCode::BadParameter, "`as_of` is out of range")),
            }
        }
        (None, None) => TableAt::Latest,
    };
    let result = match audit::intake(state.project(), state.warehouse(), at, principal.scope.as_deref()).await {
        Ok(r) => r,
        Err(crate::Error::Warehouse(e @ dealhouse_warehouse::Error::NoVersionAt { .. })) => {
            return Err(bad_request(ErrorCode::BadParameter, e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let bytes = render::json(&result).map_err(|e| {
        tracing::error!(error = %e, "audit document does not render");
        ApiError::internal()
    })?;
    serde_json::from_slice(&bytes).map(Json).map_err(|e| {
        tracing::error!(error = %e, "audit document does not parse");
        ApiError::internal()
    })
}

fn schema() -> Value {
    // Each section's columns with the docs of the step file that computes it.
    let rows = |what: &str, step: &str| {
        let sql = audit::STEPS.iter().find(|(name, _)| *name == step).map_or("", |(_, sql)| sql);
        let columns: Vec<(String, Value)> = sql
            .lines()
            .filter_map(|l| l.strip_prefix("-- column "))
            .filter_map(|l| l.split_once(": "))
            .map(|(name, doc)| (name.to_string(), json!({ "description": doc })))
            .collect();
        let mut rows = s::array(s::obj(&columns));
        rows["description"] = Value::String(what.into());
        rows
    };
    s::obj(&[
        ("audit", s::text("`intake`.")),
        ("asked", s::text("What was asked: `latest version`, `version N` or `version at INSTANT`.")),
        (
            "read",
            s::array(s::obj(&[
                ("table", s::text("Table read.")),
                ("version", s::int("Its Delta version.")),
                ("committed_at", s::nullable(s::timestamp("When that version was committed (its commit record)."))),
            ])),
        ),
        ("settings", json!({ "type": "object", "description": "The [audit] values bound into the SQL, by name." })),
        ("branches", rows("Per switched branch, with its verdict and the rule that decided it.", "audit_branch")),
        (
            "findings",
            rows("One row per finding, naming its record (system, source_id) and the other.", "audit_finding"),
        ),
        ("matches", rows("Every accepted pair of a legacy and a CRM request.", "audit_match")),
        ("volume", rows("Requests per branch, department and week around the switch.", "audit_volume")),
        ("lead_times", rows("Lead time before and after the switch, with its 95% interval.", "audit_lead_time")),
        (
            "rules",
            s::array(s::obj(&[
                ("rule_no", s::int("Position, from 1.")),
                ("verdict", s::text("blocking or findings.")),
                ("finding", s::text("The finding kind it counts.")),
                ("at_least", s::int("How many findings make it fire.")),
            ])),
        ),
    ])
}
