//! The dashboards' own routes: their definitions (`GET /api/v1/dashboards`, `/dashboards/{id}`,
//! from the `dashboards` crate) and the few answers the generic endpoints do not give: the kanban
//! cards (`/board`), time in stage with medians (`/stage-time`), the intake migration (`/intake-migration`)
//! and one deal's card (`/deal-card`). They are documented in the same route table as the
//! dashboard-data endpoints and read through the same [`Session`] extractor, so any branch
//! scoping applied there applies here too.

use axum::Json;
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::get;
use dealhouse_warehouse::datafusion::common::ScalarValue;
use serde_json::{Value, json};

use crate::ApiError;
use crate::endpoints::{JSON, Route, Session};
use crate::openapi::schema as s;
use crate::query::{Args, BRANCH, Columns, FROM, HOLDING, Kind, LIMIT, MANAGER, OFFSET, Param, Sql, TO, where_all};

const LIST: &str = "/api/v1/dashboards";
const ONE: &str = "/api/v1/dashboards/{id}";
const BOARD: &str = "/api/v1/board";
const STAGE_TIME: &str = "/api/v1/stage-time";
const INTAKE: &str = "/api/v1/intake-migration";
const DEAL_CARD: &str = "/api/v1/deal-card";

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

fn intake_params() -> Vec<Param> {
    vec![FROM, TO, HOLDING, BRANCH, LIMIT, OFFSET]
}

fn deal_card_params() -> Vec<Param> {
    vec![Param::new("deal", Kind::List, "Canonical deal id (`crm:123`); one.").required()]
}

/// The routes of this module, documented and registered from one table like the endpoints'.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: LIST,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "The dashboards, in menu order",
            description: "Id, order, title and description (ru and en) of every dashboard defined in \
                dashboards/definitions/*.toml (compiled in).",
            params: Vec::new,
            response: list_schema,
            handler: Some(|| get(list)),
        },
        Route {
            method: "get",
            path: ONE,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "One dashboard's definition",
            description: "The definition file as JSON: panels with their chart type, query (a /api/v1/metrics \
                query or a named endpoint with fixed parameters, the period and the shared filters it takes), \
                fields and drill-down. 404 for an unknown id.",
            params: Vec::new,
            response: || json!({ "type": "object", "description": "See dashboards/src/definition.rs." }),
            handler: Some(|| get(one)),
        },
        Route {
            method: "get",
            path: BOARD,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "Kanban cards: the largest open deals of each stage",
            description: "Open deals (fct_deal), at most `per_stage` per stage by amount, with client, manager, \
                the time they entered their current stage and whole days in it at the reference time (the \
                latest deals.updated_at, as mart_stalled_deals), and whether they are stalled. `from`/`to` \
                select the deals by creation month. The column headers' money comes from /api/v1/pipeline.",
            params: board_params,
            response: board_schema,
            handler: Some(|| get(board)),
        },
        Route {
            method: "get",
            path: STAGE_TIME,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "Time deals spend in each open stage: median, mean, 90th percentile",
            description: "Completed stays in open stages (fct_stage_transition), by the local month the deal left \
                the stage (`from`/`to`) and the deal's holding, branch and manager. Days = hours / 24. The median \
                is over the stays themselves (mart_time_in_stage's medians do not add up across its grain).",
            params: common,
            response: stage_time_schema,
            handler: Some(|| get(stage_time)),
        },
        Route {
            method: "get",
            path: INTAKE,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "Intake migration: legacy requests, switch-off progress, orphans",
            description: "From intake_requests and branches.crm_switch_date, by the local month a request came in \
                (the branch's time zone; `from`/`to`). A request is unified when the system that recorded it also \
                holds the deals (the CRM), legacy otherwise. `summary`: branches selected and switched (switch \
                date on or before the end of `to`, else the reference day), legacy requests, those that came in \
                on or after their branch's switch date, orphans. `monthly`: legacy requests per branch and \
                month. `monthly_total`: per month, legacy and unified requests, deals created in the CRM and \
                branches switched by the month's end. `branches`: per branch. `rows` (paged): the orphans, \
                oldest first: requests neither rejected nor linked to an existing deal.",
            params: intake_params,
            response: intake_schema,
            handler: Some(|| get(intake)),
        },
        Route {
            method: "get",
            path: DEAL_CARD,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "One deal with its stage history and activities",
            description: "The deal as /api/v1/deals gives it plus its branch's time zone, its stays in each stage \
                (fct_stage_transition) and its latest 100 activities. `deal` is null when there is no such deal \
                (or it is not visible to the caller).",
            params: deal_card_params,
            response: deal_card_schema,
            handler: Some(|| get(deal_card)),
        },
    ]
}

/// The same routes with their handlers left out: entries for the OpenAPI document, whose route
/// table must not register them a second time (`router` does).
pub fn documented() -> Vec<Route> {
    routes().into_iter().map(|r| Route { handler: None, ..r }).collect()
}

/// The routes of this module.
pub fn router() -> axum::Router<crate::AppState> {
    let mut router = axum::Router::new();
    for r in routes() {
        if let Some(handler) = r.handler {
            router = router.route(r.path, handler());
        }
    }
    router
}

fn definitions_or_500() -> Result<&'static [dealhouse_dashboards::Dashboard], ApiError> {
    dealhouse_dashboards::dashboards().map_err(|e| {
        tracing::error!(error = %e, "a dashboard definition is invalid");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    })
}

async fn list() -> Result<Json<Value>, ApiError> {
    let dashboards: Vec<Value> = definitions_or_500()?
        .iter()
        .map(|d| json!({ "id": d.id, "order": d.order, "title": d.title, "description": d.description }))
        .collect();
    Ok(Json(json!({ "dashboards": dashboards })))
}

async fn one(Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let all = definitions_or_500()?;
    let Some(d) = all.iter().find(|d| d.id == id) else {
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no dashboard `{}`; dashboards: {}", id.chars().take(60).collect::<String>(), ids.join(", ")),
        ));
    };
    Ok(Json(serde_json::to_value(d).unwrap_or(Value::Null)))
}

async fn board(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(BOARD, q, &board_params())?;
    let per_stage = args.integer("per_stage", 100)?.unwrap_or(DEFAULT_PER_STAGE);
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("d.created_month"),
        holding: Some("d.holding_id"),
        branch: Some("d.branch_id"),
        manager: Some("d.manager_id"),
    };
    let mut conds = args.filters(&mut sql, &cols)?;
    conds.push("d.status = 'open'".into());
    let filter = where_all(&conds);
    let limit = sql.bind(ScalarValue::Int64(Some(per_stage as i64)));
    let text = format!(
        "with cards as (
            select d.deal_id, t.title, d.client_id, c.name as client_name, d.holding_id, d.branch_id, d.time_zone,
                d.manager_id, m.name as manager_name, d.stage, d.stage_order, d.amount, d.commission, d.created_at,
                st.entered_at as entered_stage_at,
                cast(floor((to_unixtime(r.reference_time) - to_unixtime(st.entered_at)) / 86400.0) as bigint)
                    as days_in_stage,
                sd.deal_id is not null as stalled,
                sd.days_idle,
                row_number() over (partition by d.stage order by d.amount desc nulls last, d.deal_id) as rank_in_stage
            from fct_deal d
            join fct_stage_transition st on st.deal_id = d.deal_id and st.left_at is null
            cross join stg_reference_time r
            left join mart_stalled_deals sd on sd.deal_id = d.deal_id
            left join deals t on t.deal_id = d.deal_id
            left join clients c on c.client_id = d.client_id
            left join managers m on m.manager_id = d.manager_id
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
        month: Some("local_month(s.left_at, d.time_zone)"),
        holding: Some("d.holding_id"),
        branch: Some("d.branch_id"),
        manager: Some("d.manager_id"),
    };
    let mut conds = args.filters(&mut sql, &cols)?;
    conds.push("s.left_at is not null".into());
    conds.push("g.is_open".into());
    let filter = where_all(&conds);
    let text = format!(
        "with stays as (
            select s.stage, s.hours_in_stage
            from fct_stage_transition s
            join fct_deal d on d.deal_id = s.deal_id
            join dim_stage g on g.stage = s.stage
            {filter}
        ),
        a as (
            select stage, count(*) as stays, median(hours_in_stage) / 24.0 as median_days,
                avg(hours_in_stage) / 24.0 as mean_days,
                approx_percentile_cont(hours_in_stage, 0.9) / 24.0 as p90_days
            from stays
            group by stage
        )
        select g.stage, g.stage_order, coalesce(a.stays, 0) as stays, a.median_days, a.mean_days, a.p90_days
        from dim_stage g
        left join a on a.stage = g.stage
        where g.is_open
        order by g.stage_order"
    );
    let rows = sql.rows(&session, &text).await?;
    Ok(Json(json!({ "rows": rows })))
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
        &Columns {
            month: Some("local_month(r.created_at, coalesce(b.time_zone, 'UTC'))"),
            holding: Some("b.holding_id"),
            branch: Some("r.branch_id"),
            manager: None,
        },
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
        r as (
            select r.request_id, r.department, r.branch_id, r.subject, r.status, r.created_at,
                coalesce(b.time_zone, 'UTC') as time_zone,
                local_month(r.created_at, coalesce(b.time_zone, 'UTC')) as month,
                crm.source_system is not null as unified,
                b.crm_switch_date is not null
                    and local_date(r.created_at, coalesce(b.time_zone, 'UTC')) >= b.crm_switch_date as after_switch,
                r.status <> 'rejected' and linked.deal_id is null as orphan
            from intake_requests r
            left join branches b on b.branch_id = r.branch_id
            left join crm on crm.source_system = r.source_system
            left join (select distinct deal_id from deals) linked on linked.deal_id = r.deal_id
            {rf}
        ),
        legacy as (select * from r where not unified),
        ref as (select reference_time from stg_reference_time),
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
                select r.request_id, r.branch_id, r.time_zone, r.department, r.subject, r.status, r.created_at,
                    cast(floor((to_unixtime(ref.reference_time) - to_unixtime(r.created_at)) / 86400.0) as bigint)
                        as age_days
                from r cross join ref
                where r.orphan
                order by r.created_at, r.request_id"
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
                "select entry_seq, stage, entered_at, left_at, hours_in_stage / 24.0 as days_in_stage
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

fn list_schema() -> Value {
    let label = || s::obj(&[("ru", s::text("Russian.")), ("en", s::text("English."))]);
    s::obj(&[(
        "dashboards",
        s::array(s::obj(&[
            ("id", s::text("Id (`#/<id>` in the UI).")),
            ("order", s::int("Menu position.")),
            ("title", label()),
            ("description", label()),
        ])),
    )])
}

fn board_schema() -> Value {
    s::obj(&[
        ("per_stage", s::int("Cards per stage at most.")),
        (
            "rows",
            s::array(s::obj(&[
                ("deal_id", s::text("The deal.")),
                ("title", s::nullable(s::text("Title."))),
                ("client_id", s::nullable(s::text("Client."))),
                ("client_name", s::nullable(s::text("Client name."))),
                ("holding_id", s::nullable(s::text("Holding."))),
                ("branch_id", s::nullable(s::text("Branch."))),
                ("time_zone", s::text("The branch's IANA time zone.")),
                ("manager_id", s::nullable(s::text("Manager."))),
                ("manager_name", s::nullable(s::text("Manager name."))),
                ("stage", s::text("Current stage.")),
                ("stage_order", s::int("Its position.")),
                ("amount", s::nullable(s::decimal("Amount, RUB."))),
                ("commission", s::nullable(s::decimal("Commission, RUB."))),
                ("created_at", s::timestamp("Created (UTC).")),
                ("entered_stage_at", s::timestamp("Entered the current stage (UTC).")),
                ("days_in_stage", s::nullable(s::int("Whole days in the stage at the reference time."))),
                ("stalled", s::boolean("Idle past the stage's SLA (mart_stalled_deals).")),
                ("days_idle", s::nullable(s::int("Days idle, for stalled deals."))),
                ("rank_in_stage", s::int("1 = the stage's largest amount.")),
            ])),
        ),
    ])
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
            ("p90_days", s::nullable(s::num("90th percentile of days (approximate)."))),
        ])),
    )])
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
            s::array(s::obj(&[
                ("branch_id", s::text("Branch.")),
                ("name", s::text("Name.")),
                ("holding_id", s::text("Holding.")),
                ("time_zone", s::text("IANA time zone.")),
                ("crm_switch_date", s::nullable(s::date("Day the branch's intake moved to the CRM."))),
                ("switched", s::boolean("Switched by the end of the period.")),
                ("legacy_requests", s::int("Legacy requests.")),
                ("legacy_after_switch", s::int("Of them, on or after the switch date.")),
                ("orphans", s::int("Orphan legacy requests.")),
                ("last_legacy_at", s::nullable(s::timestamp("The latest legacy request (UTC)."))),
            ])),
        ),
        ("total", s::int("Orphans matching the filters.")),
        ("limit", s::int("Page size.")),
        ("offset", s::int("Rows skipped.")),
        (
            "rows",
            s::array(s::obj(&[
                ("request_id", s::text("Request.")),
                ("branch_id", s::nullable(s::text("Branch."))),
                ("time_zone", s::text("The branch's IANA time zone.")),
                ("department", s::text("Department.")),
                ("subject", s::nullable(s::text("Subject."))),
                ("status", s::text("new, in_progress or done.")),
                ("created_at", s::timestamp("Received (UTC).")),
                ("age_days", s::nullable(s::int("Whole days since, at the reference time."))),
            ])),
        ),
    ])
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
            s::array(s::obj(&[
                ("entry_seq", s::int("1 for the first stay.")),
                ("stage", s::text("Stage.")),
                ("entered_at", s::timestamp("Entered (UTC).")),
                ("left_at", s::nullable(s::timestamp("Left (UTC); null for the current stay."))),
                ("days_in_stage", s::nullable(s::num("Days the stay lasted."))),
            ])),
        ),
        (
            "activities",
            s::array(s::obj(&[
                ("activity_type", s::text("call, meeting, email, proposal_sent, contract_signed or task.")),
                ("direction", s::nullable(s::text("incoming or outgoing."))),
                ("at", s::timestamp("When (UTC).")),
                ("done", s::boolean("Done.")),
                ("result", s::nullable(s::text("Outcome."))),
                ("manager_id", s::nullable(s::text("Manager."))),
                ("manager_name", s::nullable(s::text("Manager name."))),
            ])),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use dealhouse_dashboards::{Filter, Period};

    use super::*;
    use crate::metrics::MetricsQuery;

    /// The query parameters the browser sends for a panel, with sample shared-filter values.
    fn panel_params(q: &dealhouse_dashboards::Query) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = q.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !q.measures.is_empty() {
            out.push(("measures".into(), q.measures.join(",")));
            if !q.by.is_empty() {
                out.push(("by".into(), q.by.join(",")));
            }
        }
        if q.period != Period::None {
            out.push(("from".into(), "2025-01".into()));
            out.push(("to".into(), "2025-03".into()));
        }
        for f in &q.filters {
            let name = match f {
                Filter::Holding => "holding",
                Filter::Branch => "branch",
                Filter::Manager => "manager",
            };
            out.push((name.into(), "x".into()));
        }
        out
    }

    /// Every panel's query is one the API accepts: its endpoint exists, its parameters (fixed
    /// and the shared filters it declares) are documented for that endpoint, and a metrics query
    /// resolves against the semantic layer (measures, dimensions, required and excluded ones).
    #[test]
    fn every_panel_query_is_accepted_by_the_api() {
        let routes = crate::openapi::all_routes();
        let catalog = crate::semantic::catalog().unwrap();
        for d in dealhouse_dashboards::dashboards().unwrap() {
            for p in &d.panels {
                let at = format!("{}.toml panel `{}`", d.id, p.id);
                let pairs = panel_params(&p.query);
                match &p.query.endpoint {
                    Some(e) => {
                        let path = format!("/api/v1/{e}");
                        let route = routes
                            .iter()
                            .find(|r| r.path == path && r.method == "get")
                            .unwrap_or_else(|| panic!("{at}: no endpoint {path}"));
                        Args::parse(&path, pairs, &(route.params)()).unwrap_or_else(|e| panic!("{at}: {}", e.message));
                    }
                    None => {
                        let args = Args::parse(crate::metrics::PATH, pairs, &crate::metrics::params())
                            .unwrap_or_else(|e| panic!("{at}: {}", e.message));
                        MetricsQuery::resolve(catalog, &args).unwrap_or_else(|e| panic!("{at}: {}", e.message));
                    }
                }
            }
        }
    }

    #[test]
    fn the_routes_are_documented_once_and_registered_here() {
        let doc = crate::openapi::document();
        for r in routes() {
            assert!(doc["paths"][r.path]["get"].is_object(), "{} is not in the OpenAPI document", r.path);
        }
        assert!(documented().iter().all(|r| r.handler.is_none()));
    }
}
