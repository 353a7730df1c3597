//! Every built-in model materialised through `models::run` into a Delta warehouse filled with
//! `Warehouse::upsert`, then every data test run with `models::run_tests`: the Delta path
//! (timestamp and decimal types, empty results, schema changes) works end to end.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, TimeUnit};
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::models;
use dealhouse_warehouse::schema::{
    Activity, Branch, CanonicalRow, Client, Deal, DealStageChange, Holding, Manager, Money, Plan,
};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{CommitMeta, Warehouse};

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).single().expect("valid test instant")
}

fn money(s: &str) -> Option<Money> {
    Some(s.parse().expect("valid test amount"))
}

fn deal(
    id: &str,
    manager: &str,
    stage: &str,
    status: &str,
    amount: &str,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) -> Deal {
    Deal {
        deal_id: format!("crm:{id}"),
        title: None,
        client_id: Some("crm:c1".into()),
        manager_id: Some(manager.into()),
        branch_id: None,
        pipeline: "0".into(),
        stage: stage.into(),
        source_stage: stage.to_uppercase(),
        status: status.into(),
        lost_reason: None,
        amount: money(amount),
        commission: money("100.50"),
        created_at: created,
        updated_at: updated,
        closed_at: None,
        deleted: false,
        currency: Some("RUB".into()),
        source_system: "crm".into(),
        source_id: id.into(),
    }
}

fn change(id: u32, deal: &str, from: Option<&str>, to: &str, when: DateTime<Utc>) -> DealStageChange {
    DealStageChange {
        deal_id: format!("crm:{deal}"),
        from_stage: from.map(Into::into),
        to_stage: to.into(),
        changed_at: when,
        changed_by: None,
        source_system: "crm".into(),
        source_id: id.to_string(),
    }
}

fn activity(id: &str, deal: &str, manager: Option<&str>, kind: &str, when: DateTime<Utc>) -> Activity {
    Activity {
        activity_id: id.into(),
        deal_id: Some(format!("crm:{deal}")),
        client_id: None,
        manager_id: manager.map(Into::into),
        activity_type: kind.into(),
        direction: None,
        at: when,
        due_at: None,
        done: true,
        result: None,
        source_system: "crm".into(),
        source_id: id.into(),
    }
}

async fn upsert<R: CanonicalRow>(wh: &Warehouse, rows: &[R]) {
    let batch = R::to_batch(rows).expect("test rows fit the canonical schema");
    let meta = CommitMeta { operation: "test".into(), source: "test".into(), cursor: None };
    wh.upsert(&R::table_def(), vec![batch], &meta).await.expect("upsert");
}

async fn one_value(session: &QuerySession, sql: &str) -> (DataType, String) {
    let batches = session.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap_or_else(|| panic!("{sql}: no rows"));
    (batch.column(0).data_type().clone(), array_value_to_string(batch.column(0), 0).expect("displayable"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_materialises_to_delta_and_passes_its_data_tests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = url::Url::from_directory_path(dir.path()).expect("absolute temp path");
    let wh = Warehouse::new(url, HashMap::new());

    let config = |id: &str| ("config".to_string(), id.to_string());
    let (ss, sid) = config("main");
    upsert(&wh, &[Holding { holding_id: "main".into(), name: "Group".into(), source_system: ss, source_id: sid }])
        .await;
    let branch = |id: &str, tz: &str| Branch {
        branch_id: id.into(),
        holding_id: "main".into(),
        name: id.into(),
        city: id.into(),
        time_zone: tz.into(),
        crm_switch_date: None,
        source_system: "config".into(),
        source_id: id.into(),
    };
    upsert(&wh, &[branch("msk", "Europe/Moscow"), branch("vvo", "Asia/Vladivostok")]).await;
    let manager = |id: &str, b: &str| Manager {
        manager_id: format!("crm:{id}"),
        branch_id: Some(b.into()),
        name: id.into(),
        active: true,
        source_system: "crm".into(),
        source_id: id.into(),
    };
    upsert(&wh, &[manager("1", "msk"), manager("2", "vvo")]).await;
    upsert(
        &wh,
        &[Client {
            client_id: "crm:c1".into(),
            name: "Philharmonic".into(),
            inn: None,
            kind: Some("venue".into()),
            branch_id: Some("msk".into()),
            created_at: None,
            source_system: "crm".into(),
            source_id: "c1".into(),
        }],
    )
    .await;
    let updated = at(2025, 3, 20, 12);
    let mut won = deal("10", "crm:1", "won", "won", "150000.25", at(2025, 1, 10, 9), at(2025, 2, 3, 9));
    // The CRM's editable CLOSEDATE disagrees with the final stage change (2025-02-01 08:00).
    won.closed_at = Some(at(2025, 2, 20, 0));
    let lost = deal("11", "crm:2", "lost", "lost", "5000.00", at(2025, 1, 12, 9), at(2025, 2, 1, 9));
    let open = deal("12", "crm:2", "proposal", "open", "70000.00", at(2025, 3, 1, 9), updated);
    upsert(&wh, &[won, lost, open]).await;
    upsert(
        &wh,
        &[
            change(1, "10", None, "new", at(2025, 1, 10, 9)),
            change(2, "10", Some("new"), "proposal", at(2025, 1, 15, 9)),
            change(3, "10", Some("proposal"), "won", at(2025, 2, 1, 8)),
            change(4, "11", None, "new", at(2025, 1, 12, 9)),
            change(5, "11", Some("new"), "lost", at(2025, 1, 31, 15)),
            change(6, "12", None, "proposal", at(2025, 3, 1, 9)),
        ],
    )
    .await;
    upsert(
        &wh,
        &[
            activity("crm:a1", "10", Some("crm:1"), "call", at(2025, 1, 11, 10)),
            activity("1c:77", "10", None, "contract_signed", at(2025, 1, 31, 22)),
            activity("crm:a2", "12", Some("crm:2"), "meeting", at(2025, 3, 2, 10)),
        ],
    )
    .await;
    upsert(
        &wh,
        &[Plan {
            month: NaiveDate::from_ymd_opt(2025, 2, 1).expect("valid month"),
            branch_id: Some("msk".into()),
            manager_id: Some("crm:1".into()),
            metric: "won_amount".into(),
            target: "100000.00".parse().expect("valid target"),
            source_system: "plans".into(),
            source_id: "1".into(),
        }],
    )
    .await;

    let all = models::load_models(None).expect("built-in models parse");
    let runs = models::run(&wh, &all, None, |_| {}).await.expect("build runs");
    let failed: Vec<String> =
        runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.name))).collect();
    assert!(failed.is_empty(), "models failed:\n{}", failed.join("\n"));
    assert_eq!(runs.len(), all.len(), "every model ran");

    let tests = models::run_tests(&wh, &all, None, &Default::default()).await.expect("data tests run");
    assert!(!tests.is_empty());
    let failing: Vec<String> = tests
        .iter()
        .filter(|t| t.result != Ok(0))
        .map(|t| format!("{}: {}: {:?}", t.model, t.test, t.result))
        .collect();
    assert!(failing.is_empty(), "data tests failed:\n{}", failing.join("\n"));

    let session = QuerySession::open(&wh).await.expect("session");
    let micros_utc = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    // Close time from the final stage change, not the CRM's CLOSEDATE; types survive Delta.
    let (t, v) = one_value(&session, "select closed_at from fct_deal where deal_id = 'crm:10'").await;
    assert_eq!((t, v.as_str()), (micros_utc, "2025-02-01T08:00:00Z"));
    let (t, v) = one_value(&session, "select amount from fct_deal where deal_id = 'crm:10'").await;
    assert_eq!((t, v.as_str()), (DataType::Decimal128(18, 2), "150000.25"));
    // Money sums stay decimal: 150000.25 won in February (Moscow), nothing else won.
    let (t, v) = one_value(&session, "select won_amount from mart_win_rate_monthly where won = 1").await;
    assert!(matches!(t, DataType::Decimal128(_, 2)), "won_amount is {t}");
    assert_eq!(v, "150000.25");
    // Plan 100000.00 vs fact 150000.25 for manager 1 in February.
    let (_, v) = one_value(&session, "select fact from mart_plan_fact").await;
    assert_eq!(v, "150000.25");
    // The 1C contract row (no manager, 2025-01-31 22:00 UTC = 02-01 01:00 Moscow) counts for
    // the deal's manager on the Moscow day.
    let (t, v) = one_value(
        &session,
        "select local_date from mart_manager_daily where contracts_signed = 1 and manager_id = 'crm:1'",
    )
    .await;
    assert_eq!((t, v.as_str()), (DataType::Date32, "2025-02-01"));
    // The open deal: last touch 2025-03-02 10:00, reference 2025-03-20 12:00 -> 18 whole days
    // idle, over the proposal SLA of 5.
    let (_, v) = one_value(&session, "select days_idle from mart_stalled_deals where deal_id = 'crm:12'").await;
    assert_eq!(v, "18");
}
