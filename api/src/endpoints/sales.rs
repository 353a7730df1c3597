//! Deal endpoints: the funnel, the pipeline kanban, stalled deals, the branch leaderboard and the
//! deal drill-down behind any of their numbers.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use serde_json::{Value, json};

use crate::query::{
    Args, BRANCH, Columns, FROM, HOLDING, Kind, LIMIT, MANAGER, OFFSET, Param, Session, Sql, TO, catalog_source, paged,
    where_all,
};
use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, columns};

const FUNNEL: &str = "/api/v1/funnel";
const PIPELINE: &str = "/api/v1/pipeline";
const STALLED: &str = "/api/v1/stalled";
const LEADERBOARD: &str = "/api/v1/leaderboard";
const DEALS: &str = "/api/v1/deals";

const COMMON: [Param; 7] = [FROM, TO, HOLDING, BRANCH, MANAGER, LIMIT, OFFSET];
const MAIN_PATH: &[&str] = &["new", "contact", "proposal", "negotiation", "contract", "won"];
const STAGE: Param = Param::new("stage", Kind::List, "Current stages, comma-separated (new .. contract, won, lost).");

fn common() -> Vec<Param> {
    COMMON.to_vec()
}

fn stalled_params() -> Vec<Param> {
    let mut p = common();
    p.push(STAGE);
    p
}

fn deals_params() -> Vec<Param> {
    let mut p = common();
    p.extend([
        STAGE,
        Param::new("status", Kind::List, "Statuses: open, won, lost."),
        Param::new(
            "last_open_stage",
            Kind::List,
            "The last open stage (for lost deals: the stage they were lost from).",
        ),
        Param::new(
            "reached",
            Kind::Enum(MAIN_PATH),
            "Deals whose furthest main-path stage is this one or later (the funnel's deals_reached).",
        ),
        Param::new("created_month", Kind::Month, "Deals created in this local month, YYYY-MM."),
        Param::new("closed_month", Kind::Month, "Deals closed (won or lost) in this local month, YYYY-MM."),
        Param::new(
            "period",
            Kind::Enum(&["created", "closed"]),
            "Which month from/to compare with: created (default) or closed.",
        ),
        Param::new("client", Kind::List, "Client ids."),
        Param::new(
            "sort",
            Kind::Enum(&["created_at", "closed_at", "amount", "commission"]),
            "Sort column (default created_at).",
        ),
        Param::new("order", Kind::Enum(&["asc", "desc"]), "Sort order (default desc; nulls last)."),
    ]);
    p
}

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: FUNNEL,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Stage funnel of the deals created in the period",
            description: "Per main-path stage (new .. won): deals that reached it (a skipped stage counts as reached) \
                and that went further, by creation cohort so late conversions count; step_conversion = advanced / \
                reached, conversion_from_previous = reached / reached of the previous stage, conversion_from_start = \
                reached / reached of new. From mart_funnel_monthly; `from`/`to` select the creation months.",
            params: common,
            response: funnel_schema,
            handler: || get(funnel),
        },
        Route {
            method: "get",
            path: PIPELINE,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Open pipeline per stage (kanban) with the weighted forecast",
            description: "Every open stage with its open deals, amount, commission and amount weighted by the stage's \
                historical win rate (as mart_pipeline_now), plus totals. `from`/`to` select the deals by creation month.",
            params: common,
            response: pipeline_schema,
            handler: || get(pipeline),
        },
        Route {
            method: "get",
            path: STALLED,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Stalled deals, largest first",
            description: "Open deals idle (no call, meeting, email or stage change) past their stage's SLA at the \
                reference time, from mart_stalled_deals, ordered by amount descending. `from`/`to` select the deals by \
                creation month.",
            params: stalled_params,
            response: stalled_schema,
            handler: || get(stalled),
        },
        Route {
            method: "get",
            path: LEADERBOARD,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "Branches ranked by won amount, with win rate and a monthly sparkline",
            description: "Branches by the amount of deals won in the period (close month), with commission, won and \
                lost deals, win rate = won / (won + lost), and `series`: won amount and deals per month of the period. \
                Without a manager filter every branch appears, with zeros when it closed nothing.",
            params: common,
            response: leaderboard_schema,
            handler: || get(leaderboard),
        },
        Route {
            method: "get",
            path: DEALS,
            served_at: None,
            tag: "sales",
            content_type: JSON,
            request_body: None,
            summary: "The deals behind any aggregate (drill-down)",
            description: "Deals from fct_deal with the common filters (from/to compare with the creation month, or the \
                close month with period=closed) and stage, status, last open stage, stage reached, creation or close \
                month and client; `total` and `total_amount` cover every matching deal.",
            params: deals_params,
            response: deals_schema,
            handler: || get(deals),
        },
    ]
}

async fn funnel(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(FUNNEL, q, &common())?;
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("month"),
        holding: Some("holding_id"),
        branch: Some("branch_id"),
        manager: Some("manager_id"),
    };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    let text = format!(
        "with f as (
            select stage, sum(deals_reached) as deals_reached, sum(deals_advanced) as deals_advanced,
                sum(amount_reached) as amount_reached
            from mart_funnel_monthly {filter}
            group by stage
        ),
        st as (
            select s.stage, s.stage_order, coalesce(f.deals_reached, 0) as deals_reached,
                coalesce(f.deals_advanced, 0) as deals_advanced,
                coalesce(f.amount_reached, cast(0 as decimal(28, 2))) as amount_reached
            from dim_stage s
            left join f on f.stage = s.stage
            where s.stage_order between 1 and 6
        )
        select stage, stage_order, deals_reached, deals_advanced, amount_reached,
            cast(deals_advanced as double) / nullif(cast(deals_reached as double), 0) as step_conversion,
            cast(deals_reached as double)
                / nullif(cast(lag(deals_reached) over (order by stage_order) as double), 0) as conversion_from_previous,
            cast(deals_reached as double)
                / nullif(cast(first_value(deals_reached) over (order by stage_order) as double), 0) as conversion_from_start
        from st
        order by stage_order"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    paged(total, &args, rows, json!({}))
}

async fn pipeline(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(PIPELINE, q, &common())?;
    let open = catalog_source("open_deals")?;
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("created_month"),
        holding: Some("holding_id"),
        branch: Some("branch_id"),
        manager: Some("manager_id"),
    };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    let text = format!(
        "with o as {open},
        a as (
            select stage, count(*) as open_deals, sum(amount) as open_amount, sum(commission) as open_commission,
                sum(weighted_amount) as weighted_amount
            from o {filter}
            group by stage
        )
        select s.stage, s.stage_order, coalesce(a.open_deals, 0) as open_deals,
            coalesce(a.open_amount, cast(0 as decimal(28, 2))) as open_amount,
            coalesce(a.open_commission, cast(0 as decimal(28, 2))) as open_commission,
            a.weighted_amount,
            cast(w.won_deals as double) / nullif(cast(w.closed_deals as double), 0) as stage_win_rate
        from dim_stage s
        left join a on a.stage = s.stage
        left join mart_stage_win_rate w on w.stage = s.stage
        where s.is_open
        order by s.stage_order"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    let totals = sql
        .rows(
            &session,
            &format!(
                "select count(*) as open_deals, sum(amount) as open_amount, sum(commission) as open_commission,
                    sum(weighted_amount) as weighted_forecast
                from {open} o {filter}"
            ),
        )
        .await?;
    paged(total, &args, rows, json!({ "totals": totals.into_iter().next().unwrap_or(Value::Null) }))
}

async fn stalled(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(STALLED, q, &stalled_params())?;
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("d.created_month"),
        holding: Some("s.holding_id"),
        branch: Some("s.branch_id"),
        manager: Some("s.manager_id"),
    };
    let mut conds = args.filters(&mut sql, &cols)?;
    conds.extend(sql.text_in("s.stage", args.list("stage")));
    let filter = where_all(&conds);
    let from = "from mart_stalled_deals s join fct_deal d on d.deal_id = s.deal_id";
    let text = format!(
        "select s.deal_id, t.title, d.client_id, c.name as client_name, s.holding_id, s.branch_id, s.manager_id,
            m.name as manager_name, s.stage, s.entered_stage_at, s.last_activity_at, s.days_idle, s.sla_days,
            s.amount, s.commission, d.created_month, s.reference_time
        {from}
        left join deals t on t.deal_id = s.deal_id
        left join clients c on c.client_id = d.client_id
        left join managers m on m.manager_id = s.manager_id
        {filter}
        order by s.amount desc nulls last, s.deal_id"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    let sums = sql.rows(&session, &format!("select sum(s.amount) as total_amount {from} {filter}")).await?;
    let total_amount = sums.first().and_then(|r| r.get("total_amount")).cloned().unwrap_or(Value::Null);
    paged(total, &args, rows, json!({ "total_amount": total_amount }))
}

async fn leaderboard(
    Session(session): Session,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(LEADERBOARD, q, &common())?;
    let mut sql = Sql::default();
    let cols = Columns {
        month: Some("month"),
        holding: Some("holding_id"),
        branch: Some("branch_id"),
        manager: Some("manager_id"),
    };
    let filter = where_all(&args.filters(&mut sql, &cols)?);
    // Branches that closed nothing still rank (last), unless a manager filter narrows the board
    // to where those managers worked.
    let all_branches = if args.list("manager").is_empty() {
        let bcols = Columns { holding: Some("holding_id"), branch: Some("branch_id"), ..Columns::default() };
        format!(" union select branch_id from branches {}", where_all(&args.filters(&mut sql, &bcols)?))
    } else {
        String::new()
    };
    let text = format!(
        "with w as (
            select branch_id, sum(won) as deals_won, sum(lost) as deals_lost, sum(won_amount) as won_amount,
                sum(won_commission) as commission
            from mart_win_rate_monthly {filter}
            group by branch_id
        ),
        keys as (select branch_id from w{all_branches}),
        r as (
            select k.branch_id, b.name as branch_name, b.city, b.holding_id,
                coalesce(w.won_amount, cast(0 as decimal(28, 2))) as won_amount,
                coalesce(w.commission, cast(0 as decimal(28, 2))) as commission,
                coalesce(w.deals_won, 0) as deals_won,
                coalesce(w.deals_lost, 0) as deals_lost,
                cast(w.deals_won as double) / nullif(cast(w.deals_won + w.deals_lost as double), 0) as win_rate
            from keys k
            left join w on w.branch_id is not distinct from k.branch_id
            left join branches b on b.branch_id = k.branch_id
        )
        select rank() over (order by won_amount desc) as rank, r.*
        from r
        order by won_amount desc, branch_id"
    );
    let (total, mut rows) = sql.page(&session, &text, args.page()?).await?;

    // The sparkline: every month of the period, zeros where a branch closed nothing.
    let mut msql = Sql::default();
    let mcols = Columns { month: Some("month"), ..Columns::default() };
    let mfilter = where_all(&args.filters(&mut msql, &mcols)?);
    let months: Vec<String> = msql
        .rows(&session, &format!("select month from dim_month {mfilter} order by month"))
        .await?
        .into_iter()
        .filter_map(|r| r.get("month").and_then(Value::as_str).map(str::to_string))
        .collect();
    let mut ssql = Sql::default();
    let sfilter = where_all(&args.filters(&mut ssql, &cols)?);
    let points = ssql
        .rows(
            &session,
            &format!(
                "select branch_id, month, sum(won_amount) as won_amount, sum(won) as deals_won
                from mart_win_rate_monthly {sfilter}
                group by branch_id, month"
            ),
        )
        .await?;
    let mut by_branch: BTreeMap<(Option<String>, String), (Value, Value)> = BTreeMap::new();
    for p in points {
        let branch = p.get("branch_id").and_then(Value::as_str).map(str::to_string);
        let month = p.get("month").and_then(Value::as_str).unwrap_or_default().to_string();
        by_branch.insert((branch, month), (p["won_amount"].clone(), p["deals_won"].clone()));
    }
    for row in &mut rows {
        let branch = row.get("branch_id").and_then(Value::as_str).map(str::to_string);
        let series: Vec<Value> = months
            .iter()
            .map(|m| {
                let (amount, deals) =
                    by_branch.get(&(branch.clone(), m.clone())).cloned().unwrap_or((json!("0.00"), json!(0)));
                json!({ "month": m, "won_amount": amount, "deals_won": deals })
            })
            .collect();
        if let Some(o) = row.as_object_mut() {
            o.insert("series".into(), Value::Array(series));
        }
    }
    paged(total, &args, rows, json!({ "months": months }))
}

async fn deals(Session(session): Session, Query(q): Query<Vec<(String, String)>>) -> Result<Json<Value>, ApiError> {
    let args = Args::parse(DEALS, q, &deals_params())?;
    let mut sql = Sql::default();
    let month = if args.one("period") == Some("closed") { "d.closed_month" } else { "d.created_month" };
    let cols = Columns {
        month: Some(month),
        holding: Some("d.holding_id"),
        branch: Some("d.branch_id"),
        manager: Some("d.manager_id"),
    };
    let mut conds = args.filters(&mut sql, &cols)?;
    conds.extend(sql.text_in("d.stage", args.list("stage")));
    conds.extend(sql.text_in("d.status", args.list("status")));
    conds.extend(sql.text_in("d.last_open_stage", args.list("last_open_stage")));
    conds.extend(sql.text_in("d.client_id", args.list("client")));
    if let Some(m) = args.month("created_month")? {
        conds.push(format!("d.created_month = {}", sql.date(m)));
    }
    if let Some(m) = args.month("closed_month")? {
        conds.push(format!("d.closed_month = {}", sql.date(m)));
    }
    if let Some(stage) = args.one("reached") {
        // `reached` was checked against MAIN_PATH, so it is one of those fixed words.
        let stage = MAIN_PATH.iter().find(|s| **s == stage).copied().unwrap_or("new");
        conds.push(format!("d.max_stage_order >= (select min(stage_order) from dim_stage where stage = '{stage}')"));
    }
    let filter = where_all(&conds);
    // Both come from enum parameters, so they are fixed words.
    let sort = match args.one("sort") {
        Some("closed_at") => "d.closed_at",
        Some("amount") => "d.amount",
        Some("commission") => "d.commission",
        _ => "d.created_at",
    };
    let order = if args.one("order") == Some("asc") { "asc" } else { "desc" };
    let text = format!(
        "select d.deal_id, d.source_system, d.source_id, t.title, d.client_id, c.name as client_name,
            d.holding_id, d.branch_id, d.manager_id, m.name as manager_name, d.pipeline, d.stage, d.status,
            d.last_open_stage, d.max_stage_order, d.amount, d.commission, d.created_at, d.closed_at,
            d.created_month, d.closed_month, d.lost_reason
        from fct_deal d
        left join deals t on t.deal_id = d.deal_id
        left join clients c on c.client_id = d.client_id
        left join managers m on m.manager_id = d.manager_id
        {filter}
        order by {sort} {order} nulls last, d.deal_id"
    );
    let (total, rows) = sql.page(&session, &text, args.page()?).await?;
    let sums = sql.rows(&session, &format!("select sum(d.amount) as total_amount from fct_deal d {filter}")).await?;
    let total_amount = sums.first().and_then(|r| r.get("total_amount")).cloned().unwrap_or(Value::Null);
    paged(total, &args, rows, json!({ "total_amount": total_amount }))
}

fn funnel_schema() -> Value {
    s::page(
        s::obj(&[
            ("stage", s::text("Main-path stage.")),
            ("stage_order", s::int("Its position, 1 (new) .. 6 (won).")),
            ("deals_reached", s::int("Deals created in the period whose furthest stage is this one or later.")),
            ("deals_advanced", s::int("Of them, deals that reached the next stage (0 for won).")),
            ("amount_reached", s::decimal("Amount of the deals that reached the stage, RUB.")),
            ("step_conversion", s::nullable(s::num("deals_advanced / deals_reached."))),
            ("conversion_from_previous", s::nullable(s::num("deals_reached / deals_reached of the previous stage."))),
            ("conversion_from_start", s::nullable(s::num("deals_reached / deals_reached of new."))),
        ]),
        &[],
    )
}

fn pipeline_schema() -> Value {
    s::page(
        s::obj(&[
            ("stage", s::text("Open stage.")),
            ("stage_order", s::int("Its position.")),
            ("open_deals", s::int("Open deals in the stage.")),
            ("open_amount", s::decimal("Their amount, RUB.")),
            ("open_commission", s::decimal("Their commission, RUB.")),
            ("weighted_amount", s::nullable(s::decimal("Amount weighted by the stage's historical win rate, RUB."))),
            ("stage_win_rate", s::nullable(s::num("Won / closed of the deals that reached the stage."))),
        ]),
        &[(
            "totals",
            s::obj(&[
                ("open_deals", s::int("Open deals.")),
                ("open_amount", s::nullable(s::decimal("Their amount, RUB."))),
                ("open_commission", s::nullable(s::decimal("Their commission, RUB."))),
                ("weighted_forecast", s::nullable(s::decimal("Sum of the weighted amounts, RUB."))),
            ]),
        )],
    )
}

/// mart_stalled_deals' columns and the deal's client and creation month (types and docs from the
/// models), with the names looked up beside them.
fn stalled_row() -> Vec<(&'static str, Value)> {
    let mut row = columns::of(
        "mart_stalled_deals",
        &[
            "deal_id",
            "holding_id",
            "branch_id",
            "manager_id",
            "stage",
            "entered_stage_at",
            "last_activity_at",
            "days_idle",
            "sla_days",
            "amount",
            "commission",
            "reference_time",
        ],
    );
    row.extend(columns::of("fct_deal", &["client_id", "created_month"]));
    row.extend(names(&["title", "client_name", "manager_name"]));
    row
}

/// The names endpoints look up beside a table's ids, as the caller's scope shows them.
fn names(which: &[&'static str]) -> Vec<(&'static str, Value)> {
    which
        .iter()
        .map(|n| {
            let description = match *n {
                "title" => "The deal's title.",
                "client_name" => "Client name.",
                _ => "Manager name.",
            };
            (*n, s::nullable(s::text(description)))
        })
        .collect()
}

fn stalled_schema() -> Value {
    s::page(
        s::obj(&stalled_row()),
        &[("total_amount", s::nullable(s::decimal("Amount of every matching stalled deal, RUB.")))],
    )
}

fn leaderboard_schema() -> Value {
    s::page(
        s::obj(&[
            ("rank", s::int("1 = largest won amount; ties share a rank.")),
            ("branch_id", s::nullable(s::text("Branch (null: deals without a branch)."))),
            ("branch_name", s::nullable(s::text("Branch name."))),
            ("city", s::nullable(s::text("City."))),
            ("holding_id", s::nullable(s::text("Holding."))),
            ("won_amount", s::decimal("Amount won in the period, RUB.")),
            ("commission", s::decimal("Commission of the deals won, RUB.")),
            ("deals_won", s::int("Deals won.")),
            ("deals_lost", s::int("Deals lost.")),
            ("win_rate", s::nullable(s::num("Won / (won + lost)."))),
            (
                "series",
                s::array(s::obj(&[
                    ("month", s::date("Month (first day).")),
                    ("won_amount", s::decimal("Won that month, RUB.")),
                    ("deals_won", s::int("Deals won that month.")),
                ])),
            ),
        ]),
        &[("months", s::array(s::date("The period's months, in order (the series' x axis).")))],
    )
}

fn deals_schema() -> Value {
    s::page(
        // fct_deal's columns (types and docs from the model) and the names beside them.
        s::obj(&{
            let mut row = columns::of(
                "fct_deal",
                &[
                    "deal_id",
                    "source_system",
                    "source_id",
                    "client_id",
                    "holding_id",
                    "branch_id",
                    "manager_id",
                    "pipeline",
                    "stage",
                    "status",
                    "last_open_stage",
                    "max_stage_order",
                    "amount",
                    "commission",
                    "created_at",
                    "closed_at",
                    "created_month",
                    "closed_month",
                    "lost_reason",
                ],
            );
            row.extend(names(&["title", "client_name", "manager_name"]));
            row
        }),
        &[("total_amount", s::nullable(s::decimal("Amount of every matching deal, RUB.")))],
    )
}
