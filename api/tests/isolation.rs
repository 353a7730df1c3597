//! Branch scoping inside the plan: a branch token (msk) and a holding token (h1 = msk + spb) run
//! joins, subqueries, UNION, CTEs, window functions, aggregates without GROUP BY,
//! information_schema, marts and the organisation tables, and never get a row or a total that
//! includes another branch: every figure equals the admin's query filtered by hand, and no
//! answer or error contains another branch's id (every fixture text carries its branch id).

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

fn texts(rows: &[Value], column: &str) -> BTreeSet<String> {
    rows.iter().map(|r| r[column].as_str().unwrap_or("null").to_string()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_token_sees_only_its_branch() {
    let (_tmp, app) = app("").await;

    // Totals by hand (fixture docs) and from the admin filtering to msk.
    let msk_totals = "3|390.50";
    let q = |s: &str| s.to_string();
    let checks: Vec<(String, String)> = vec![
        (
            q("select concat(count(*), '|', sum(amount)) from deals"),
            q("select concat(count(*), '|', sum(amount)) from deals where branch_id = 'msk'"),
        ),
        // Window over the whole table: the "whole" is the branch.
        (
            q("select distinct cast(sum(amount) over () as varchar) from deals"),
            q("select cast(sum(amount) as varchar) from deals where branch_id = 'msk'"),
        ),
        // Join of two scoped tables.
        (
            q("select count(*) from deals d join managers m on d.manager_id = m.manager_id"),
            q("select count(*) from deals d join managers m on d.manager_id = m.manager_id where d.branch_id = 'msk'"),
        ),
        // Subquery and a correlated one.
        (
            q("select count(*) from deals where deal_id in (select deal_id from deal_stage_changes)"),
            q("select count(*) from deals where branch_id = 'msk'"),
        ),
        (
            q(
                "select count(*) from deal_stage_changes c where exists (select 1 from deals d where d.deal_id = c.deal_id)",
            ),
            q(
                "select count(*) from deal_stage_changes c join deals d on d.deal_id = c.deal_id where d.branch_id = 'msk'",
            ),
        ),
        (
            q("select count(*) from deal_stage_changes"),
            q(
                "select count(*) from deal_stage_changes c join deals d on d.deal_id = c.deal_id where d.branch_id = 'msk'",
            ),
        ),
        // UNION over every table with a branch.
        (
            q(
                "select string_agg(b, ',') from (select branch_id as b from deals union select branch_id from managers union select branch_id from clients union select branch_id from branches union select branch_id from plans union select branch_id from intake_requests union select branch_id from fct_deal)",
            ),
            q("select 'msk'"),
        ),
        // CTE over a fact and a mart.
        (
            q("with w as (select * from mart_win_rate_monthly) select concat(sum(won_amount), '/', sum(won)) from w"),
            q("select concat(sum(won_amount), '/', sum(won)) from mart_win_rate_monthly where branch_id = 'msk'"),
        ),
        // Aggregates without GROUP BY (never answered from whole-table statistics).
        (
            q("select concat(count(*), min(branch_id), max(branch_id)) from fct_deal"),
            q("select concat(count(*), min(branch_id), max(branch_id)) from fct_deal where branch_id = 'msk'"),
        ),
        (
            q("select cast(sum(open_amount) as varchar) from mart_pipeline_now"),
            q("select cast(sum(open_amount) as varchar) from mart_pipeline_now where branch_id = 'msk'"),
        ),
        (q("select count(*) from activities"), q("select count(*) from stg_activity where branch_id = 'msk'")),
        (
            q("select count(*) from fct_stage_transition"),
            q("select count(*) from fct_stage_transition t join fct_deal d using (deal_id) where d.branch_id = 'msk'"),
        ),
        (q("select count(*) from mart_plan_fact"), q("select count(*) from mart_plan_fact where branch_id = 'msk'")),
        // Client figures: each client counts in one branch.
        (
            q("select concat(count(*), '/', min(branch_id), max(branch_id)) from fct_client_month"),
            q(
                "select concat(count(*), '/', min(branch_id), max(branch_id)) from fct_client_month where branch_id = 'msk'",
            ),
        ),
        (
            q("select concat(count(*), '/', sum(cohort_clients)) from mart_cohort_retention"),
            q("select concat(count(*), '/', sum(cohort_clients)) from mart_cohort_retention where branch_id = 'msk'"),
        ),
        (q("select string_agg(holding_id, ',') from holdings"), q("select 'h1'")),
    ];
    for (scoped, by_hand) in &checks {
        let mine = scalar(&app, MSK, scoped).await;
        let admin = scalar(&app, ADMIN, by_hand).await;
        assert_eq!(mine, admin, "{scoped}");
        assert!(!mine.contains("spb") && !mine.contains("nsk"), "{scoped}: {mine}");
    }
    assert_eq!(scalar(&app, MSK, &checks[0].0).await, msk_totals);
    // The admin really sees more: the comparisons above are not vacuous.
    assert_eq!(scalar(&app, ADMIN, &checks[0].0).await, "7|10690.50");
    assert_eq!(scalar(&app, ADMIN, "select count(distinct branch_id) from mart_win_rate_monthly").await, "3");

    // Tables with no way to scope are absent, from information_schema too.
    let visible = texts(
        &rows(&app, MSK, "select table_name from information_schema.tables where table_schema = 'public'").await,
        "table_name",
    );
    for hidden in ["quarantine"] {
        assert!(!visible.contains(hidden), "{hidden} visible: {visible:?}");
        for query in ["select * from {}", "describe {}", "show columns from {}"] {
            let (status, v) = sql(&app, Some(MSK), &query.replace("{}", hidden)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query} {hidden}: {v}");
            assert_eq!(v["code"], "bad_sql");
        }
        // The admin's session holds it: the refusals above are the scope's, not the statement's.
        let (status, v) = sql(&app, Some(ADMIN), &format!("describe {hidden}")).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    // Listing a visible table's columns is allowed, in both spellings.
    for query in ["describe deals", "DESC deals", "show columns from deals"] {
        let columns = texts(&rows(&app, MSK, query).await, "column_name");
        assert!(columns.contains("branch_id") && columns.contains("amount"), "{query}: {columns:?}");
    }
    for shown in [
        "deals",
        "branches",
        "managers",
        "fct_deal",
        "mart_win_rate_monthly",
        "dim_stage",
        "activities",
        "fct_client_month",
        "mart_client_lifecycle",
        "mart_cohort_retention",
    ] {
        assert!(visible.contains(shown), "{shown} missing: {visible:?}");
    }
    // The benchmark by design: the network's win rate per stage, the same for every token (group
    // counts, no branch's rows).
    let benchmark = "select string_agg(concat(stage, ':', won_deals, '/', closed_deals), ',' order by stage) from mart_stage_win_rate";
    assert_eq!(scalar(&app, MSK, benchmark).await, scalar(&app, ADMIN, benchmark).await);
    let hidden_columns =
        scalar(&app, MSK, "select count(*) from information_schema.columns where table_name in ('quarantine')").await;
    assert_eq!(hidden_columns, "0");
    let (_, _, body) = call(&app, "GET", "/api/v1/tables", Some(MSK), None).await;
    let listed: Value = serde_json::from_slice(&body).expect("json");
    let names: BTreeSet<String> =
        listed["tables"].as_array().expect("tables").iter().map(|t| t["name"].as_str().unwrap_or("").into()).collect();
    assert_eq!(names, visible, "/api/v1/tables lists what information_schema shows");
    let deals_row = listed["tables"].as_array().expect("tables").iter().find(|t| t["name"] == "deals").cloned();
    assert_eq!(deals_row.map(|t| t["rows"].clone()), Some(Value::from(3)), "row counts are the caller's");

    // Every visible table, whole, as CSV: no other branch's id anywhere.
    for table in &visible {
        let body = serde_json::json!({ "sql": format!("select * from \"{table}\""), "format": "csv" }).to_string();
        let (status, _, bytes) = call(&app, "POST", "/api/v1/sql", Some(MSK), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{table}");
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("spb") && !text.contains("nsk"), "{table} leaks: {text}");
    }
    // Organisation tables: its own branch, manager and the name of its holding.
    assert_eq!(texts(&rows(&app, MSK, "select branch_id from branches").await, "branch_id"), set(&["msk"]));
    assert_eq!(texts(&rows(&app, MSK, "select manager_id from managers").await, "manager_id"), set(&["crm:m-msk"]));

    // Errors carry only visible values: the failing expression never sees another branch's
    // rows, even when it would fail on them first.
    for failing in [
        "select cast(deal_id as int) from deals",
        "select * from deals where cast(branch_id as int) = 1",
        "select * from deals d join managers m on cast(m.name as int) = 1",
        "select * from deals where cast(title as int) > 0 order by deal_id",
    ] {
        let (status, v) = sql(&app, Some(MSK), failing).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{failing}: {v}");
        let m = v["message"].as_str().unwrap_or("");
        assert!(!m.contains("spb") && !m.contains("nsk"), "{failing}: {m}");
    }
    // A predicate that divides by zero on another branch's rows only: fine for msk, an error
    // for the admin (who sees them), so the scope filter runs before the caller's predicate.
    let divide = "select count(*) from deals where 1 / (case when branch_id = 'msk' then 1 else 0 end) = 1";
    assert_eq!(scalar(&app, MSK, divide).await, "3");
    assert_eq!(sql(&app, Some(ADMIN), divide).await.0, StatusCode::BAD_REQUEST);
    // The plan shows the barrier and no other branch.
    let plan = rows(&app, MSK, "explain select * from deals where amount > 0").await;
    let plan_text: String = plan.iter().map(|r| r["plan"].as_str().unwrap_or("").to_string()).collect();
    assert!(plan_text.contains("ScopeBarrierExec"), "{plan_text}");
    assert!(!plan_text.contains("spb") && !plan_text.contains("nsk"), "{plan_text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holding_token_sees_its_holdings_branches_and_client_figures() {
    let (_tmp, app) = app("").await;
    // h1 = msk + spb: 5 deals, 390.50 + 3000.00.
    assert_eq!(scalar(&app, H1, "select concat(count(*), '|', sum(amount)) from deals").await, "5|3390.50");
    assert_eq!(
        texts(&rows(&app, H1, "select distinct branch_id from fct_deal").await, "branch_id"),
        set(&["msk", "spb"])
    );
    // Client figures: h1 only, equal to the admin's h1 rows.
    let mine =
        scalar(&app, H1, "select concat(count(*), '/', min(holding_id), max(holding_id)) from fct_client_month").await;
    let admin = scalar(
        &app,
        ADMIN,
        "select concat(count(*), '/', min(holding_id), max(holding_id)) from fct_client_month where holding_id = 'h1'",
    )
    .await;
    assert_eq!(mine, admin);
    assert!(mine.ends_with("/h1h1"), "{mine}");
    assert_eq!(texts(&rows(&app, H1, "select holding_id from holdings").await, "holding_id"), set(&["h1"]));
    assert_eq!(sql(&app, Some(H1), "select * from quarantine").await.0, StatusCode::BAD_REQUEST);
}

/// Every GET endpoint of the OpenAPI document, called with the msk token, never answers with
/// another branch's id (fixture texts carry their branch id), while the admin's answers do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_a_branch_token_with_its_branch_only() {
    let (_tmp, app) = app("").await;
    let (_, _, body) = call(&app, "GET", "/api/v1/openapi.json", Some(ADMIN), None).await;
    let doc: Value = serde_json::from_slice(&body).expect("openapi json");
    let mut called = 0;
    let mut admin_sees_others = 0;
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        let Some(op) = ops.get("get") else { continue };
        if !path.starts_with("/api/v1/") || path.contains("{path}") {
            continue;
        }
        let required: Vec<String> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["required"] == true && p["in"] == "query")
                    .map(|p| format!("{}=win_rate", p["name"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default();
        let uri = format!("{}?{}", path.replace("{id}", "overview"), required.join("&"));
        let (status, _, body) = call(&app, "GET", &uri, Some(MSK), None).await;
        let text = String::from_utf8_lossy(&body).to_lowercase();
        assert!(status.is_success() || status.is_client_error(), "{uri}: {status} {text}");
        for other in ["spb", "nsk"] {
            assert!(!text.contains(other), "{uri} answered the msk token with `{other}`: {text}");
        }
        let (_, _, admin) = call(&app, "GET", &uri, Some(ADMIN), None).await;
        if String::from_utf8_lossy(&admin).to_lowercase().contains("spb") {
            admin_sees_others += 1;
        }
        called += 1;
    }
    assert!(called >= 15, "only {called} endpoints called");
    assert!(admin_sees_others >= 5, "the admin saw other branches in only {admin_sees_others} answers: vacuous");
}
