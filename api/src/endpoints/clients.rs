//! Client-base endpoints: cohort retention, churn and inflow by month, lifecycle states. Each
//! client counts in one branch (see fct_client_month), so holding and branch figures are sums;
//! there is no manager filter (a client is served by several).

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{Args, BRANCH, FROM, HOLDING, Kind, LIMIT, OFFSET, Param, Session, TO, paged};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, ErrorCode, columns, queries};

const RETENTION: &str = "/api/v1/retention";
const CHURN: &str = "/api/v1/churn";
const LIFECYCLE: &str = "/api/v1/lifecycle";

const STATES: &[&str] = &["new", "active", "at_risk", "churned", "reactivated"];

fn period_org() -> Vec<Param> {
    vec![FROM, TO, HOLDING, BRANCH, LIMIT, OFFSET]
}

fn lifecycle_params() -> Vec<Param> {
    vec![
        HOLDING,
        BRANCH,
        Param::new("state", Kind::List, "Lifecycle states: new, active, at_risk, churned, reactivated."),
        LIMIT,
        OFFSET,
    ]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: RETENTION,
            served_at: None,
            tag: "clients",
            content_type: JSON,
            request_body: None,
            summary: "Cohort retention grid",
            description: "Clients grouped by the month of their first won deal (`from`/`to` select cohort months); for \
                each later month, how many of them won a deal that month. retention = retained / cohort clients, \
                summed over the selected holdings and branches first. From mart_cohort_retention.",
            params: period_org,
            response: retention_schema,
            handler: || get(retention),
        },
        Route {
            method: "get",
            path: CHURN,
            served_at: None,
            tag: "clients",
            content_type: JSON,
            request_body: None,
            summary: "Churn and inflow by month",
            description: "Per month: clients active at the start and end, new, churned and reactivated clients; \
                churn_rate = churned / active at start, inflow_rate = new / active at start, after summing over the \
                selected holdings and branches. `period` sums the months (rates as ratios of the sums). From mart_client_monthly.",
            params: period_org,
            response: churn_schema,
            handler: || get(churn),
        },
        Route {
            method: "get",
            path: LIFECYCLE,
            served_at: None,
            tag: "clients",
            content_type: JSON,
            request_body: None,
            summary: "Client lifecycle states and the clients in them",
            description: "Counts and lifetime amounts per state at the reference month (new, active, at_risk, \
                churned, reactivated; see mart_client_lifecycle), and the clients, largest lifetime commission first.",
            params: lifecycle_params,
            response: lifecycle_schema,
            handler: || get(lifecycle),
        },
    ]
}

async fn retention(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(RETENTION, q, &period_org())?;
    let (total, rows) = queries::bind("retention", &args)?.page(&session, args.page()?).await?;
    paged(total, &args, rows, json!({}))
}

async fn churn(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(CHURN, q, &period_org())?;
    let (total, rows) = queries::bind("churn", &args)?.page(&session, args.page()?).await?;
    let period = queries::bind("churn_period", &args)?.first(&session).await?;
    paged(total, &args, rows, json!({ "period": period }))
}

async fn lifecycle(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(LIFECYCLE, q, &lifecycle_params())?;
    for st in args.list("state") {
        if !STATES.contains(&st.as_str()) {
            return Err(crate::query::bad_request(
                ErrorCode::BadParameter,
                format!("`state` must be among {}; got `{st}`", STATES.join(", ")),
            ));
        }
    }
    let states = queries::bind("lifecycle_states", &args)?.rows(&session).await?;
    let (total, rows) = queries::bind("lifecycle", &args)?.page(&session, args.page()?).await?;
    paged(total, &args, rows, json!({ "states": states }))
}

fn retention_schema() -> Value {
    s::page(s::obj(&columns::of_query("retention")), &[])
}

fn churn_schema() -> Value {
    s::page(s::obj(&columns::of_query("churn")), &[("period", s::obj(&columns::of_query("churn_period")))])
}

fn lifecycle_schema() -> Value {
    s::page(
        s::obj(&columns::of_query("lifecycle")),
        &[("states", s::array(s::obj(&columns::of_query("lifecycle_states"))))],
    )
}
