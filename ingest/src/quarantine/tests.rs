//! The ledger's bookkeeping and the crash safety of a replay's two commits.

use std::collections::HashMap;

use chrono::{TimeZone, Utc};
use dealhouse_warehouse::schema::{CanonicalRow, Deal, QuarantineRecord};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{CommitMeta, Warehouse};

use super::settle::write_replayed;
use super::*;
use crate::Error;

fn held(key: &str, mapping: Option<&str>) -> QuarantineRecord {
    QuarantineRecord {
        entity: "deals".into(),
        location: format!("crm.deal.list page 1 {key}"),
        raw: "{}".into(),
        reason: "stage id `C3:UC_X1` is not mapped".into(),
        quarantined_at: Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap(),
        record_id: key.rsplit_once('=').map(|(_, id)| id.to_string()),
        mapping: mapping.map(str::to_string),
        source_system: "crm".into(),
        source_id: key.into(),
    }
}

fn deal(id: &str) -> Deal {
    let at = Utc.with_ymd_and_hms(2025, 3, 1, 10, 0, 0).unwrap();
    Deal {
        deal_id: format!("crm:{id}"),
        title: None,
        client_id: None,
        manager_id: None,
        branch_id: None,
        pipeline: "3".into(),
        stage: "negotiation".into(),
        source_stage: "C3:UC_X1".into(),
        status: "open".into(),
        lost_reason: None,
        amount: None,
        commission: None,
        created_at: at,
        updated_at: at,
        closed_at: None,
        deleted: false,
        currency: Some("RUB".into()),
        source_system: "crm".into(),
        source_id: id.into(),
    }
}

fn chunk(deals: &[&str], quarantined: Vec<QuarantineRecord>, settled: &[&str], prefixes: &[&str]) -> Chunk {
    let rows: Vec<Deal> = deals.iter().map(|d| deal(d)).collect();
    Chunk {
        settled: settled.iter().map(|s| s.to_string()).collect(),
        settled_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        ..Chunk::new("deals", Deal::to_batch(&rows).unwrap(), quarantined, None)
    }
}

fn ledger(rows: &[QuarantineRecord]) -> Ledger {
    Ledger { rows: rows.iter().map(|q| (q.source_id.clone(), q.clone())).collect(), touched: Default::default() }
}

#[test]
fn ledger_clears_what_a_chunk_answers_for_and_keeps_what_fails_again() {
    let mut l = ledger(&[held("crm.deal.list:ID=7", Some("a")), held("crm.deal.list:ID=8", Some("a"))]);
    // Deal 7 read and mapped, deal 8 read and failed again, deal 9 never held.
    let c = chunk(
        &["7"],
        vec![held("crm.deal.list:ID=8", None)],
        &["crm.deal.list:ID=7", "crm.deal.list:ID=8", "x:ID=9"],
        &[],
    );
    assert_eq!(l.cleared(&c), ["crm.deal.list:ID=7"]);
    l.apply(&c.quarantined, &l.cleared(&c));
    assert_eq!(l.len(), 1);
    // What this run quarantined is not replayed by it, whatever its fingerprint.
    assert!(l.stale(Some("b"), true).is_empty());

    // A file read whole settles every row of that file, except what its own earlier chunks of
    // this run wrote.
    let file = |line: u32| held(&format!("in/deals.csv:{line}"), Some("a"));
    let mut l = ledger(&[file(3), file(9), held("in/other.csv:3", Some("a"))]);
    let first = chunk(&[], vec![file(9)], &["in/deals.csv:9"], &[]);
    let cleared = l.cleared(&first);
    l.apply(&first.quarantined, &cleared);
    let last = chunk(&["3"], vec![], &["in/deals.csv:3"], &["in/deals.csv:"]);
    assert_eq!(l.cleared(&last), ["in/deals.csv:3"]);

    // Stale: a different fingerprint, or none (written before fingerprints were kept), or all
    // when forced.
    let l = ledger(&[held("k:ID=1", Some("a")), held("k:ID=2", Some("b")), held("k:ID=3", None)]);
    let keys = |rows: Vec<QuarantineRecord>| rows.into_iter().map(|q| q.source_id).collect::<Vec<_>>();
    assert_eq!(keys(l.stale(Some("a"), false)), ["k:ID=2", "k:ID=3"]);
    assert_eq!(keys(l.stale(Some("a"), true)), ["k:ID=1", "k:ID=2", "k:ID=3"]);
}

#[test]
fn record_ids_come_from_the_row_or_from_its_key() {
    let mut q = held("postgres:deals:source_id=A-17", None);
    q.record_id = None;
    assert_eq!(record_id(&q).as_deref(), Some("A-17"));
    q.source_id = "/api/v4/leads:id=7".into();
    assert_eq!(record_id(&q).as_deref(), Some("7"));
    q.source_id = "crm.deal.list:sha256=00ff".into();
    assert_eq!(record_id(&q), None);
    q.source_id = "in/deals.csv:12#managers".into();
    assert_eq!(record_id(&q), None);
    q.record_id = Some("12".into());
    assert_eq!(record_id(&q).as_deref(), Some("12"));
}

async fn count(wh: &Warehouse, sql: &str) -> String {
    let session = QuerySession::open(wh).await.unwrap();
    let batches = session.query(sql).await.unwrap();
    dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap()
}

/// A replay killed between its two commits (rows in, quarantine not yet cleared) loses
/// nothing and duplicates nothing: the rows stay stale, the next sync replays them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_killed_between_its_commits_is_finished_by_the_next_replay() {
    let dir = tempfile::tempdir().unwrap();
    let wh = Warehouse::new(url::Url::from_directory_path(dir.path()).unwrap(), HashMap::new());
    wh.ensure_canonical().await.unwrap();
    let key = "crm.deal.list:ID=7";
    let meta = CommitMeta { operation: "quarantine".into(), source: "crm".into(), cursor: None };
    let rows = [held(key, Some("old"))];
    wh.upsert(&QuarantineRecord::table_def(), vec![QuarantineRecord::to_batch(&rows).unwrap()], &meta).await.unwrap();

    let def = Deal::table_def();
    let mut ledgers = Ledger::load(&wh, "crm").await.unwrap();
    let mut l = ledgers.remove("deals").unwrap();
    let stale = l.stale(Some("new"), false);
    assert_eq!(stale.len(), 1);
    let killed = || Err(Error::Read { source_name: "crm".into(), location: "test".into(), message: "killed".into() });
    let e = write_replayed(&wh, "crm", &def, chunk(&["7"], vec![], &[key], &[]), &mut l, Some("new"), killed)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("killed"));
    assert_eq!(count(&wh, "SELECT count(*) FROM deals").await, "1", "the rows went in first");
    assert_eq!(count(&wh, "SELECT count(*) FROM quarantine").await, "1", "not cleared before the crash");

    // The next sync: the row still carries the old fingerprint, so it is replayed again.
    let mut l = Ledger::load(&wh, "crm").await.unwrap().remove("deals").unwrap();
    assert_eq!(l.stale(Some("new"), false).len(), 1);
    let written = write_replayed(&wh, "crm", &def, chunk(&["7"], vec![], &[key], &[]), &mut l, Some("new"), || Ok(()))
        .await
        .unwrap();
    assert_eq!((written.rows.inserted, written.rows.updated, written.cleared), (0, 0, 1));
    assert_eq!(count(&wh, "SELECT count(*) FROM deals").await, "1", "loaded once");
    assert_eq!(count(&wh, "SELECT count(*) FROM quarantine").await, "0");
}
