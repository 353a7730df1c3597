//! Team endpoints: each manager's day (the daily report) and plan vs fact.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{
    Args, BRANCH, Columns, FROM, HOLDING, Kind, LIMIT, MANAGER, OFFSET, Param, Session, Sql, TO, paged, where_all,
};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, ErrorCode};

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
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("cast(date_trunc('month', d.local_date) as date)"),
        holding: Some("d.holding_id"),
        branch: Some("d.branch_id"),
        manager: Some("d.manager_id"),
    };
    let mut conds = args.filters(&mut sql, &cols)?;
    if let Some(day) = args.date("day")? {
        conds.push(format!("d.local_date = {}", sql.date(day)));
    }
    let filter = where_all(&conds);
    let text = format!(
        "select d.local_date, d.holding_id, d.branch_id, d.manager_id, m.name as manager_name, d.calls, d.meetings,
            d.proposals_sent, d.contracts_signed, d.deals_won, d.deals_lost, d.won_amount
        from mart_manager_daily d
        left join managers m on m.manager_id = d.manager_id
        {filter}
        order by d.local_date desc, d.branch_id, d.manager_id"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    let totals = sql
        .rows(
            &session,
            &format!(
                "select sum(calls) as calls, sum(meetings) as meetings, sum(proposals_sent) as proposals_sent,
                    sum(contracts_signed) as contracts_signed, sum(deals_won) as deals_won, sum(deals_lost) as deals_lost,
                    sum(won_amount) as won_amount
                from mart_manager_daily d {filter}"
            ),
        )
        .await?;
    paged(total, &args, rows, json!({ "totals": totals.into_iter().next().unwrap_or(Value::Null) }))
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
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("p.month"),
        holding: Some("b.holding_id"),
        branch: Some("p.branch_id"),
        manager: Some("p.manager_id"),
    };
    let mut conds = args.filters(&mut sql, &cols)?;
    conds.extend(sql.text_in("p.metric", args.list("metric")));
    let filter = where_all(&conds);
    let from = "from mart_plan_fact p left join branches b on b.branch_id = p.branch_id";
    let level =
        "case when p.manager_id is not null then 'manager' when p.branch_id is not null then 'branch' else 'group' end";
    let text = format!(
        "select p.month, b.holding_id, p.branch_id, p.manager_id, m.name as manager_name, p.metric, {level} as level,
            p.plan, p.fact, cast(p.fact as double) / nullif(cast(p.plan as double), 0) as completion
        {from}
        left join managers m on m.manager_id = p.manager_id
        {filter}
        order by p.month, p.branch_id, p.manager_id, p.metric"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    let summary = sql
        .rows(
            &session,
            &format!(
                "select p.metric, {level} as level, count(*) as plans, sum(p.plan) as plan, sum(p.fact) as fact,
                    cast(sum(p.fact) as double) / nullif(cast(sum(p.plan) as double), 0) as completion
                {from} {filter}
                group by p.metric, {level}
                order by p.metric, level"
            ),
        )
        .await?;
    paged(total, &args, rows, json!({ "summary": summary }))
}

fn daily_schema() -> Value {
    let counts = [
        ("calls", "Done calls."),
        ("meetings", "Done meetings."),
        ("proposals_sent", "Proposals sent."),
        ("contracts_signed", "Contracts signed."),
        ("deals_won", "Deals won (by close time)."),
        ("deals_lost", "Deals lost (by close time)."),
    ];
    // mart_manager_daily's columns (types and docs from the model) and the manager's name.
    let mut row = crate::columns::of(
        "mart_manager_daily",
        &[
            "local_date",
            "holding_id",
            "branch_id",
            "manager_id",
            "calls",
            "meetings",
            "proposals_sent",
            "contracts_signed",
            "deals_won",
            "deals_lost",
            "won_amount",
        ],
    );
    row.push(("manager_name", s::nullable(s::text("Manager name."))));
    let mut totals: Vec<(&str, Value)> = counts.iter().map(|(n, d)| (*n, s::nullable(s::int(d)))).collect();
    totals.push(("won_amount", s::nullable(s::decimal("Amount of the deals won, RUB."))));
    s::page(s::obj(&row), &[("totals", s::obj(&totals))])
}

fn plan_fact_schema() -> Value {
    s::page(
        // mart_plan_fact's columns (types and docs from the model) and what is derived beside them.
        s::obj(&{
            let mut row =
                crate::columns::of("mart_plan_fact", &["month", "branch_id", "manager_id", "metric", "plan", "fact"]);
            row.extend([
                ("holding_id", s::nullable(s::text("Holding of the planned branch."))),
                ("manager_name", s::nullable(s::text("Manager name."))),
                ("level", s::text("manager, branch or group.")),
                ("completion", s::nullable(s::num("fact / plan."))),
            ]);
            row
        }),
        &[(
            "summary",
            s::array(s::obj(&[
                ("metric", s::text("Planned metric.")),
                ("level", s::text("manager, branch or group.")),
                ("plans", s::int("Plans summed.")),
                ("plan", s::nullable(s::decimal("Sum of the targets."))),
                ("fact", s::nullable(s::decimal("Sum of the facts."))),
                ("completion", s::nullable(s::num("fact / plan of the sums."))),
            ])),
        )],
    )
}
