//! Incremental model builds: after upstream changes (a deal moves on, a new deal, a deal deleted
//! upstream) the incremental models rebuild only the changed deals, and every model table is then
//! identical to what `--full-refresh` gives. A change to an input the models cannot key (a
//! manager moving branch) rebuilds them whole.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::models::{self, BuildOptions, Materialized, ModelRun};
use dealhouse_warehouse::schema::{Branch, CanonicalRow, Deal, DealStageChange, Holding, Manager, Money};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{CommitMeta, Warehouse};

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).single().expect("valid test instant")
}

fn deal(id: &str, manager: &str, stage: &str, status: &str, amount: &str, created: u32) -> Deal {
    Deal {
        deal_id: format!("crm:{id}"),
        title: None,
        client_id: None,
        manager_id: Some(manager.into()),
        branch_id: None,
        pipeline: "0".into(),
        stage: stage.into(),
        source_stage: stage.to_uppercase(),
        status: status.into(),
        lost_reason: None,
        amount: Some(amount.parse::<Money>().expect("valid amount")),
        commission: None,
        created_at: at(created, 9),
        updated_at: at(created, 10),
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

fn manager(id: &str, branch: &str) -> Manager {
    Manager {
        manager_id: format!("crm:{id}"),
        branch_id: Some(branch.into()),
        name: id.into(),
        active: true,
        source_system: "crm".into(),
        source_id: id.into(),
    }
}

async fn upsert<R: CanonicalRow>(wh: &Warehouse, rows: &[R]) {
    let batch = R::to_batch(rows).expect("test rows fit the canonical schema");
    let meta = CommitMeta { operation: "test".into(), source: "test".into(), cursor: None };
    wh.upsert(&R::table_def(), vec![batch], &meta).await.expect("upsert");
}

/// Every model table as sorted rows of text.
async fn snapshot(wh: &Warehouse, all: &BTreeMap<String, models::Model>) -> BTreeMap<String, Vec<String>> {
    let session = QuerySession::open(wh).await.expect("session");
    let mut out = BTreeMap::new();
    for name in all.keys() {
        let batches = session.query(&format!("select * from {name}")).await.expect("model table readable");
        let mut rows = vec![];
        for b in &batches {
            for r in 0..b.num_rows() {
                let cells: Vec<String> =
                    b.columns().iter().map(|c| array_value_to_string(c, r).expect("displayable")).collect();
                rows.push(cells.join("|"));
            }
        }
        rows.sort();
        out.insert(name.clone(), rows);
    }
    out
}

async fn build(wh: &Warehouse, all: &BTreeMap<String, models::Model>, full_refresh: bool) -> HashMap<String, ModelRun> {
    let runs = models::run_with(wh, all, None, BuildOptions { full_refresh, ..Default::default() }, |_| {})
        .await
        .expect("build runs");
    let failed: Vec<String> =
        runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.name))).collect();
    assert!(failed.is_empty(), "models failed:\n{}", failed.join("\n"));
    runs.into_iter().map(|r| (r.name.clone(), r)).collect()
}

/// An empty warehouse in `dir` with holding `h`.
async fn warehouse_with_holding(dir: &tempfile::TempDir) -> Warehouse {
    let url = url::Url::from_directory_path(dir.path()).expect("absolute temp path");
    let wh = Warehouse::new(url, HashMap::new());
    upsert(
        &wh,
        &[Holding { holding_id: "h".into(), name: "H".into(), source_system: "config".into(), source_id: "h".into() }],
    )
    .await;
    wh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_build_equals_full_refresh() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wh = warehouse_with_holding(&dir).await;
    let branch = |id: &str, tz: &str| Branch {
        branch_id: id.into(),
        holding_id: "h".into(),
        name: id.into(),
        city: id.into(),
        time_zone: tz.into(),
        crm_switch_date: None,
        source_system: "config".into(),
        source_id: id.into(),
    };
    upsert(&wh, &[branch("msk", "Europe/Moscow"), branch("vvo", "Asia/Vladivostok")]).await;
    upsert(&wh, &[manager("1", "msk"), manager("2", "vvo")]).await;
    // Enough deals that the upsert's MERGE leaves most files alone.
    let mut deals = vec![];
    let mut changes = vec![];
    for i in 1..=40u32 {
        let m = if i % 2 == 0 { "crm:1" } else { "crm:2" };
        deals.push(deal(&i.to_string(), m, "proposal", "open", &format!("{i}000.50"), 1 + i % 10));
        changes.push(change(2 * i, &i.to_string(), None, "new", at(1 + i % 10, 9)));
        changes.push(change(2 * i + 1, &i.to_string(), Some("new"), "proposal", at(2 + i % 10, 9)));
    }
    upsert(&wh, &deals).await;
    upsert(&wh, &changes).await;

    let all = models::load_models(None).expect("built-in models parse");
    let incremental: Vec<&str> = all.values().filter(|m| m.incremental.is_some()).map(|m| m.name.as_str()).collect();
    assert!(incremental.contains(&"fct_deal") && incremental.contains(&"fct_stage_transition"), "{incremental:?}");

    let first = build(&wh, &all, false).await;
    assert_eq!(first["fct_deal"].how, Materialized::Full, "nothing to increment from on the first build");
    let again = build(&wh, &all, false).await;
    assert_eq!(again["fct_deal"].how, Materialized::UpToDate);
    assert_eq!(again["fct_stage_transition"].how, Materialized::UpToDate);

    // A day upstream: deal 5 is won, deal 41 is new, deal 7 is deleted, deal 9 changes amount.
    let mut won = deal("5", "crm:2", "won", "won", "5000.50", 6);
    won.updated_at = at(20, 12);
    let mut gone = deal("7", "crm:2", "proposal", "open", "7000.50", 8);
    gone.deleted = true;
    let mut bigger = deal("9", "crm:2", "proposal", "open", "123456.78", 10);
    bigger.updated_at = at(20, 13);
    upsert(&wh, &[won, gone, bigger, deal("41", "crm:1", "new", "open", "41000.00", 20)]).await;
    upsert(&wh, &[change(200, "5", Some("proposal"), "won", at(20, 12)), change(201, "41", None, "new", at(20, 9))])
        .await;

    let day = build(&wh, &all, false).await;
    for name in ["fct_deal", "fct_stage_transition"] {
        match day[name].how {
            // Deals 5, 7, 9 and 41 changed; the MERGE rewrote the file holding all 40 others too.
            Materialized::Incremental { keys } => assert_eq!(keys, 4, "{name}: keys rebuilt"),
            other => panic!("{name} was built {other}, not incrementally"),
        }
    }
    let incremental_tables = snapshot(&wh, &all).await;
    // The increment really happened: deal 7 is gone, deal 41 is there, deal 5 is won.
    let fct_deal = &incremental_tables["fct_deal"];
    assert_eq!(fct_deal.len(), 40, "41 deals, one deleted upstream");
    assert!(fct_deal.iter().any(|r| r.starts_with("crm:41|")));
    assert!(!fct_deal.iter().any(|r| r.starts_with("crm:7|")));
    assert!(fct_deal.iter().any(|r| r.starts_with("crm:5|") && r.contains("|won|")));
    assert!(fct_deal.iter().any(|r| r.starts_with("crm:9|") && r.contains("|123456.78|")));

    let full = build(&wh, &all, true).await;
    assert_eq!(full["fct_deal"].how, Materialized::Full);
    let full_tables = snapshot(&wh, &all).await;
    for (name, rows) in &full_tables {
        assert_eq!(&incremental_tables[name], rows, "model `{name}` differs between incremental and full refresh");
    }

    // A manager moving branch changes every deal's branch: not keyable, so a whole rebuild.
    upsert(&wh, &[manager("2", "msk")]).await;
    let moved = build(&wh, &all, false).await;
    assert_eq!(moved["fct_deal"].how, Materialized::Full);
    let after = snapshot(&wh, &all).await;
    assert!(after["fct_deal"].iter().filter(|r| r.contains("|crm:2|")).all(|r| r.contains("|msk|")));
}

/// A sync that commits while a build runs (the scheduler runs them at any overlap): the build
/// reads the snapshot its session pinned and records exactly those versions, so the rows that
/// arrived meanwhile are the next build's change. Recording the tables' latest versions instead
/// left the new deals out of the incremental models for good ("up to date" until
/// `--full-refresh`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_committing_during_a_build_is_built_by_the_next_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wh = warehouse_with_holding(&dir).await;
    upsert(
        &wh,
        &[Branch {
            branch_id: "msk".into(),
            holding_id: "h".into(),
            name: "msk".into(),
            city: "msk".into(),
            time_zone: "Europe/Moscow".into(),
            crm_switch_date: None,
            source_system: "config".into(),
            source_id: "msk".into(),
        }],
    )
    .await;
    upsert(&wh, &[manager("1", "msk")]).await;
    let first: Vec<Deal> = (1..=20u32)
        .map(|i| deal(&i.to_string(), "crm:1", "proposal", "open", &format!("{i}00.00"), 1 + i % 10))
        .collect();
    upsert(&wh, &first).await;
    let all = models::load_models(None).expect("built-in models parse");
    build(&wh, &all, false).await;

    // Deals 21..=30 arrive before the build starts, 31..=40 while its first level runs.
    let before: Vec<Deal> =
        (21..=30u32).map(|i| deal(&i.to_string(), "crm:1", "proposal", "open", "100.00", 12)).collect();
    upsert(&wh, &before).await;
    let during: Vec<Deal> =
        (31..=40u32).map(|i| deal(&i.to_string(), "crm:1", "proposal", "open", "100.00", 13)).collect();
    let mut synced = false;
    let runs = models::run_with(&wh, &all, None, BuildOptions::default(), |run| {
        // `on_done` is synchronous; the sync commits on this runtime before the next level starts.
        if !synced && !all[&run.name].depends_on.contains("deals") {
            return;
        }
        if !synced {
            synced = true;
            tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(upsert(&wh, &during)));
        }
    })
    .await
    .expect("build runs");
    assert!(synced, "no model reading `deals` finished before fct_deal: the race was not staged");
    let fct = runs.iter().find(|r| r.name == "fct_deal").expect("fct_deal built");
    assert!(fct.result.is_ok(), "{:?}", fct.result);

    let next = build(&wh, &all, false).await;
    assert!(
        matches!(next["fct_deal"].how, Materialized::Incremental { keys: 10 }),
        "the deals synced during the previous build are this build's change: {}",
        next["fct_deal"].how
    );
    let tables = snapshot(&wh, &all).await;
    assert_eq!(tables["fct_deal"].len(), 40, "every deal is in fct_deal");
    let full = build(&wh, &all, true).await;
    assert_eq!(full["fct_deal"].how, Materialized::Full);
    assert_eq!(snapshot(&wh, &all).await, tables, "incremental builds equal a full refresh");
}
