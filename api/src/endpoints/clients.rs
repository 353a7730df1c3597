//! Client-base endpoints: cohort retention, churn and inflow by month, lifecycle states. Each
//! client counts in one branch (see fct_client_month), so holding and branch figures are sums;
//! there is no manager filter (a client is served by several).

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{
    Args, BRANCH, Columns, FROM, HOLDING, Kind, LIMIT, OFFSET, Param, Session, Sql, TO, paged, where_all,
};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, ErrorCode};

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
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("cohort_month"),
        holding: Some("holding_id"),
        branch: Some("branch_id"),
        ..Columns::default()
    };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    let text = format!(
        "select cohort_month, months_since, sum(cohort_clients) as cohort_clients,
            sum(retained_clients) as retained_clients,
            cast(sum(retained_clients) as double) / nullif(cast(sum(cohort_clients) as double), 0) as retention
        from mart_cohort_retention {filter}
        group by cohort_month, months_since
        order by cohort_month, months_since"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    paged(total, &args, rows, json!({}))
}

async fn churn(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(CHURN, q, &period_org())?;
    let mut sql = Sql::default();
    let cols =
        Columns { month: Some("month"), holding: Some("holding_id"), branch: Some("branch_id"), ..Columns::default() };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    let measures = "sum(new_clients) as new_clients, sum(churned_clients) as churned_clients,
            sum(reactivated_clients) as reactivated_clients,
            cast(sum(churned_clients) as double) / nullif(cast(sum(active_start) as double), 0) as churn_rate,
            cast(sum(new_clients) as double) / nullif(cast(sum(active_start) as double), 0) as inflow_rate";
    let text = format!(
        "select month, sum(active_start) as active_start, sum(active_end) as active_end, {measures}
        from mart_client_monthly {filter}
        group by month
        order by month"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    let period = sql.rows(&session, &format!("select {measures} from mart_client_monthly {filter}")).await?;
    paged(total, &args, rows, json!({ "period": period.into_iter().next().unwrap_or(Value::Null) }))
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
    let mut sql = Sql::default();
    let cols = Columns { holding: Some("l.holding_id"), branch: Some("l.branch_id"), ..Columns::default() };
    let org = args.filters(&mut sql, &cols)?;
    let states = sql
        .rows(
            &session,
            &format!(
                "select state, count(*) as clients, sum(lifetime_amount) as lifetime_amount,
                    sum(lifetime_commission) as lifetime_commission
                from mart_client_lifecycle l {}
                group by state
                order by state",
                where_all(&org)
            ),
        )
        .await?;
    let mut conds = org;
    conds.extend(sql.text_in("l.state", args.list("state")));
    let text = format!(
        "select l.client_id, c.name as client_name, l.branch_id, l.holding_id, l.state, l.first_won_at, l.last_won_at,
            l.first_won_month, l.last_won_month, l.won_deals, l.lifetime_amount, l.lifetime_commission
        from mart_client_lifecycle l
        left join clients c on c.client_id = l.client_id
        {}
        order by l.lifetime_commission desc nulls last, l.client_id",
        where_all(&conds)
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    paged(total, &args, rows, json!({ "states": states }))
}

fn retention_schema() -> Value {
    s::page(
        s::obj(&[
            ("cohort_month", s::date("Month of the cohort's first won deals (first day).")),
            ("months_since", s::int("Months after the cohort month (0 = the cohort month).")),
            ("cohort_clients", s::int("Clients in the cohort.")),
            ("retained_clients", s::int("Of them, those with a won deal in that month.")),
            ("retention", s::nullable(s::num("retained_clients / cohort_clients."))),
        ]),
        &[],
    )
}

fn churn_schema() -> Value {
    let flows = |extra: Vec<(&'static str, Value)>| {
        let mut f = extra;
        f.extend([
            ("new_clients", s::nullable(s::int("Clients whose first won deal is in the month."))),
            ("churned_clients", s::nullable(s::int("Active at the previous month's end, not at this one's."))),
            ("reactivated_clients", s::nullable(s::int("Won a deal after having churned."))),
            ("churn_rate", s::nullable(s::num("churned / active at start."))),
            ("inflow_rate", s::nullable(s::num("new / active at start."))),
        ]);
        s::obj(&f)
    };
    s::page(
        flows(vec![
            ("month", s::date("Month (first day).")),
            ("active_start", s::int("Clients active at the end of the previous month.")),
            ("active_end", s::int("Clients active at the end of the month.")),
        ]),
        &[("period", flows(vec![]))],
    )
}

fn lifecycle_schema() -> Value {
    s::page(
        // mart_client_lifecycle's columns (types and docs from the model) and the client's name.
        s::obj(&{
            let mut row = crate::columns::of(
                "mart_client_lifecycle",
                &[
                    "client_id",
                    "branch_id",
                    "holding_id",
                    "state",
                    "first_won_at",
                    "last_won_at",
                    "first_won_month",
                    "last_won_month",
                    "won_deals",
                    "lifetime_amount",
                    "lifetime_commission",
                ],
            );
            row.push(("client_name", s::nullable(s::text("Its name."))));
            row
        }),
        &[(
            "states",
            s::array(s::obj(&[
                ("state", s::text("Lifecycle state.")),
                ("clients", s::int("Clients in it.")),
                ("lifetime_amount", s::nullable(s::decimal("Their lifetime amount, RUB."))),
                ("lifetime_commission", s::nullable(s::decimal("Their lifetime commission, RUB."))),
            ])),
        )],
    )
}
