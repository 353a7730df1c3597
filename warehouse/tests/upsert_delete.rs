//! `Warehouse::upsert_and_delete` writes and deletes rows of a canonical table in one commit, and
//! a table an older version created without a newer nullable column gains it on the next write.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use dealhouse_warehouse::datafusion::arrow::datatypes::{Field, Schema};
use dealhouse_warehouse::datafusion::arrow::record_batch::RecordBatch;
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::schema::{CanonicalRow, QuarantineRecord};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{CommitMeta, Warehouse};

fn row(key: &str, reason: &str) -> QuarantineRecord {
    QuarantineRecord {
        entity: "deals".into(),
        location: format!("page 1 {key}"),
        raw: "{}".into(),
        reason: reason.into(),
        quarantined_at: Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap(),
        record_id: Some(key.into()),
        mapping: Some("m1".into()),
        source_system: "crm".into(),
        source_id: key.into(),
    }
}

fn meta() -> CommitMeta {
    CommitMeta { operation: "quarantine".into(), source: "crm".into(), cursor: None }
}

async fn rows(wh: &Warehouse, sql: &str) -> Vec<Vec<String>> {
    let session = QuerySession::open(wh).await.unwrap();
    let mut out = vec![];
    for b in session.query(sql).await.unwrap() {
        for r in 0..b.num_rows() {
            out.push((0..b.num_columns()).map(|c| array_value_to_string(b.column(c), r).unwrap()).collect());
        }
    }
    out
}

fn warehouse(dir: &std::path::Path) -> Warehouse {
    Warehouse::new(url::Url::from_directory_path(dir).unwrap(), HashMap::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upsert_and_delete_is_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let wh = warehouse(dir.path());
    let def = QuarantineRecord::table_def();
    let batch = |rows: &[QuarantineRecord]| vec![QuarantineRecord::to_batch(rows).unwrap()];
    wh.upsert(&def, batch(&[row("a", "old"), row("b", "old"), row("c", "old")]), &meta()).await.unwrap();
    let before = wh.info("quarantine").await.unwrap().unwrap().version;

    // a changes, d is new, b goes; a listed for deletion too stays (the upsert wins); another
    // source's b and an unknown key delete nothing.
    let delete = ["a".to_string(), "b".to_string(), "zz".to_string()];
    let stats =
        wh.upsert_and_delete(&def, batch(&[row("a", "new"), row("d", "new")]), "crm", &delete, &meta()).await.unwrap();
    assert_eq!((stats.inserted, stats.updated, stats.deleted), (1, 1, 1));
    assert_eq!(wh.info("quarantine").await.unwrap().unwrap().version, before + 1, "one commit");
    assert_eq!(
        rows(&wh, "select source_id, reason from quarantine order by source_id").await,
        [["a", "new"], ["c", "old"], ["d", "new"]]
    );
    let stats = wh.upsert_and_delete(&def, batch(&[]), "other", &["c".to_string()], &meta()).await.unwrap();
    assert_eq!(stats.deleted, 0);
    let stats = wh.upsert_and_delete(&def, batch(&[]), "crm", &["c".to_string(), "d".to_string()], &meta()).await;
    assert_eq!(stats.unwrap().deleted, 2);
    assert_eq!(rows(&wh, "select source_id from quarantine").await, [["a"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_newer_nullable_columns_gains_them() {
    let def = QuarantineRecord::table_def();
    let full = def.schema();
    // The quarantine as an older dealhouse created it: no record_id, no mapping.
    let old = Arc::new(Schema::new(
        full.fields()
            .iter()
            .filter(|f| !["record_id", "mapping"].contains(&f.name().as_str()))
            .cloned()
            .collect::<Vec<Arc<Field>>>(),
    ));
    let project = |batch: &RecordBatch| {
        let indices: Vec<usize> = old.fields().iter().map(|f| full.index_of(f.name()).unwrap()).collect();
        batch.project(&indices).unwrap()
    };
    for stored in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let wh = warehouse(dir.path());
        let batches =
            if stored { vec![project(&QuarantineRecord::to_batch(&[row("a", "old")]).unwrap())] } else { vec![] };
        wh.overwrite("quarantine", old.clone(), batches, &meta()).await.unwrap();
        wh.upsert(&def, vec![QuarantineRecord::to_batch(&[row("b", "new")]).unwrap()], &meta()).await.unwrap();
        let expected: &[[&str; 3]] = if stored { &[["a", "", ""], ["b", "b", "m1"]] } else { &[["b", "b", "m1"]] };
        assert_eq!(
            rows(&wh, "select source_id, coalesce(record_id, ''), coalesce(mapping, '') from quarantine order by 1")
                .await,
            expected
        );
    }
}
