//! The intake migration (`/api/v1/intake-migration`): legacy intake requests, each branch's
//! switch-off to the CRM, and the orphaned requests, for the dashboards.

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::ApiError;
use crate::query::{Args, BRANCH, Columns, FROM, HOLDING, LIMIT, OFFSET, Param, Session, Sql, TO, where_all};
use crate::route::{JSON, Route, schema as s};

const INTAKE: &str = "/api/v1/intake-migration";

fn intake_params() -> Vec<Param> {
    vec![FROM, TO, HOLDING, BRANCH, LIMIT, OFFSET]
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route {
        method: "get",
        path: INTAKE,
        served_at: None,
        tag: "dashboards",
        content_type: JSON,
        request_body: None,
        summary: "Intake migration: legacy requests, switch-off progress, orphans",
        description: "From mart_intake_request and branches.crm_switch_date, by the local month a request came in \
                (the branch's time zone; `from`/`to`). A request is unified when the system that recorded it also \
                holds the deals (the CRM), legacy otherwise. `summary`: branches selected and switched (switch \
                date on or before the end of `to`, else the reference day), legacy requests, those that came in \
                on or after their branch's switch date, orphans. `monthly`: legacy requests per branch and \
                month. `monthly_total`: per month, legacy and unified requests, deals created in the CRM and \
                branches switched by the month's end. `branches`: per branch. `rows` (paged): the orphans, \
                oldest first: requests neither rejected nor linked to an existing deal.",
        params: intake_params,
        response: intake_schema,
        handler: || get(intake),
    }]
}

async fn intake(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(INTAKE, q, &intake_params())?;
    let page = args.page()?;
    let mut sql = Sql::default();
    // Every part reads the same selection of requests and branches; the filters bind once.
    let branch_conds = args
        .filters(&mut sql, &Columns { holding: Some("holding_id"), branch: Some("branch_id"), ..Columns::default() })?;
    let request_conds = args.filters(
        &mut sql,
        &Columns { month: Some("month"), holding: Some("holding_id"), branch: Some("branch_id"), manager: None },
    )?;
    let deal_conds = args.filters(
        &mut sql,
        &Columns {
            month: Some("created_month"),
            holding: Some("holding_id"),
            branch: Some("branch_id"),
            manager: None,
        },
    )?;
    let month_conds = args.filters(&mut sql, &Columns { month: Some("month"), ..Columns::default() })?;
    // The day switch-off is judged at: the end of the period, else the data's reference day.
    let as_of = match args.month("to")? {
        Some(to) => {
            let next = to.checked_add_months(chrono::Months::new(1)).unwrap_or(to);
            format!("select cast({} - interval '1 day' as date) as day", sql.date(next))
        }
        None => "select cast(reference_time as date) as day from stg_reference_time".to_string(),
    };
    let ctes = format!(
        "with b as (select branch_id, holding_id, name, time_zone, crm_switch_date from branches {bf}),
        crm as (select distinct source_system from deals),
        r as (select * from mart_intake_request {rf}),
        legacy as (select * from r where not unified),
        asof as ({as_of})",
        bf = where_all(&branch_conds),
        rf = where_all(&request_conds),
    );
    let summary = sql
        .rows(
            &session,
            &format!(
                "{ctes}
                select bs.branches_total, bs.branches_switched, rs.legacy_requests, rs.unified_requests,
                    rs.legacy_after_switch, rs.orphans
                from (
                    select count(*) as branches_total,
                        coalesce(sum(case when b.crm_switch_date <= asof.day then 1 else 0 end), 0) as branches_switched
                    from b cross join asof
                ) bs
                cross join (
                    select coalesce(sum(case when unified then 0 else 1 end), 0) as legacy_requests,
                        coalesce(sum(case when unified then 1 else 0 end), 0) as unified_requests,
                        coalesce(sum(case when not unified and after_switch then 1 else 0 end), 0)
                            as legacy_after_switch,
                        coalesce(sum(case when orphan then 1 else 0 end), 0) as orphans
                    from r
                ) rs"
            ),
        )
        .await?;
    let monthly = sql
        .rows(
            &session,
            &format!(
                "{ctes}
                select month, branch_id, count(*) as legacy_requests
                from legacy group by month, branch_id order by month, branch_id"
            ),
        )
        .await?;
    let monthly_total = sql
        .rows(
            &session,
            &format!(
                "{ctes},
                months as (select month from dim_month {mf}),
                req as (
                    select month, sum(case when unified then 0 else 1 end) as legacy_requests,
                        sum(case when unified then 1 else 0 end) as unified_requests
                    from r group by month
                ),
                switched as (
                    select m.month, count(b.branch_id) as switched_branches
                    from months m
                    left join b on b.crm_switch_date < cast(m.month + interval '1 month' as date)
                    group by m.month
                ),
                crm_deals as (
                    select created_month as month, count(*) as crm_deals
                    from fct_deal join crm using (source_system) where true {df}
                    group by created_month
                )
                select m.month, coalesce(req.legacy_requests, 0) as legacy_requests,
                    coalesce(req.unified_requests, 0) as unified_requests,
                    coalesce(crm_deals.crm_deals, 0) as crm_deals,
                    coalesce(switched.switched_branches, 0) as switched_branches
                from months m
                left join req on req.month = m.month
                left join crm_deals on crm_deals.month = m.month
                left join switched on switched.month = m.month
                order by m.month",
                mf = where_all(&month_conds),
                df = deal_conds.iter().map(|c| format!(" and {c}")).collect::<String>(),
            ),
        )
        .await?;
    let branches = sql
        .rows(
            &session,
            &format!(
                "{ctes},
                per as (
                    select branch_id, count(*) as legacy_requests,
                        sum(case when after_switch then 1 else 0 end) as legacy_after_switch,
                        sum(case when orphan then 1 else 0 end) as orphans, max(created_at) as last_legacy_at
                    from legacy group by branch_id
                )
                select b.branch_id, b.name, b.holding_id, b.time_zone, b.crm_switch_date,
                    coalesce(b.crm_switch_date <= asof.day, false) as switched,
                    coalesce(per.legacy_requests, 0) as legacy_requests,
                    coalesce(per.legacy_after_switch, 0) as legacy_after_switch,
                    coalesce(per.orphans, 0) as orphans, per.last_legacy_at
                from b cross join asof left join per on per.branch_id = b.branch_id
                order by b.crm_switch_date nulls last, b.name, b.branch_id"
            ),
        )
        .await?;
    let (total, rows) = sql
        .page(
            &session,
            &format!(
                "{ctes}
                select request_id, branch_id, time_zone, department, subject, status, created_at, age_days
                from r
                where orphan
                order by created_at, request_id"
            ),
            page,
        )
        .await?;
    Ok(Json(json!({
        "summary": summary.into_iter().next().unwrap_or(Value::Null),
        "monthly": monthly,
        "monthly_total": monthly_total,
        "branches": branches,
        "total": total,
        "limit": page.limit,
        "offset": page.offset,
        "rows": rows,
    })))
}

fn intake_schema() -> Value {
    s::obj(&[
        (
            "summary",
            s::obj(&[
                ("branches_total", s::int("Branches selected.")),
                ("branches_switched", s::int("Of them, switched to the CRM by the end of the period.")),
                ("legacy_requests", s::int("Requests recorded by legacy intake systems.")),
                ("unified_requests", s::int("Requests recorded by the CRM itself.")),
                ("legacy_after_switch", s::int("Legacy requests on or after their branch's switch date.")),
                ("orphans", s::int("Requests neither rejected nor linked to an existing deal.")),
            ]),
        ),
        (
            "monthly",
            s::array(s::obj(&[
                ("month", s::date("Local month (first day).")),
                ("branch_id", s::nullable(s::text("Branch."))),
                ("legacy_requests", s::int("Legacy requests.")),
            ])),
        ),
        (
            "monthly_total",
            s::array(s::obj(&[
                ("month", s::date("Month (first day).")),
                ("legacy_requests", s::int("Legacy requests.")),
                ("unified_requests", s::int("Requests recorded by the CRM.")),
                ("crm_deals", s::int("Deals created in the CRM.")),
                ("switched_branches", s::int("Branches switched by the month's end.")),
            ])),
        ),
        (
            "branches",
            s::array(s::obj(&{
                let mut row = crate::columns::of(
                    "branches",
                    &["branch_id", "name", "holding_id", "time_zone", "crm_switch_date"],
                );
                row.extend([
                    ("switched", s::boolean("Switched by the end of the period.")),
                    ("legacy_requests", s::int("Legacy requests.")),
                    ("legacy_after_switch", s::int("Of them, on or after the switch date.")),
                    ("orphans", s::int("Orphan legacy requests.")),
                    ("last_legacy_at", s::nullable(s::timestamp("The latest legacy request (UTC)."))),
                ]);
                row
            })),
        ),
        ("total", s::int("Orphans matching the filters.")),
        ("limit", s::int("Page size.")),
        ("offset", s::int("Rows skipped.")),
        (
            "rows",
            // mart_intake_request's columns, types and docs from the model.
            s::array(s::obj(&crate::columns::of(
                "mart_intake_request",
                &["request_id", "branch_id", "time_zone", "department", "subject", "status", "created_at", "age_days"],
            ))),
        ),
    ])
}
