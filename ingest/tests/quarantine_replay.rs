//! Nothing stays stranded in quarantine: once the mapping is fixed (or on `--replay-quarantine`),
//! SQLite rows are read again by source_id, files are read again, pushed records are mapped
//! again from the copy kept; what now loads is loaded and its quarantine row cleared. (The CRM
//! connectors' replays are tested beside them, PostgreSQL and MariaDB in
//! postgres_mysql_sources.rs.)

mod common;

use common::{Env, env, source};
use dealhouse_ingest::sync::{LogProgress, SyncOptions, SyncReport, TableReport, sync_project};
use dealhouse_tests::project::Org;

fn org(extra_code: Option<&str>) -> String {
    let org = Org::new()
        .holding("east", "Восток")
        .branch("vvo", "east", "Владивосток", "Asia/Vladivostok")
        .codes(&[("legacy", "VVO"), ("onec", "VVO")]);
    match extra_code {
        Some(code) => {
            org.branch("khv", "east", "Хабаровск", "Asia/Vladivostok").codes(&[("legacy", code), ("onec", code)]).toml()
        }
        None => org.toml(),
    }
}

fn table<'a>(report: &'a SyncReport, name: &str) -> &'a TableReport {
    let s = source(report, name);
    assert_eq!(s.error, None, "{report:?}");
    &s.tables[0]
}

async fn replay(e: &Env) -> SyncReport {
    let options = SyncOptions { replay_quarantine: true, ..Default::default() };
    sync_project(e.project.clone(), &e.warehouse, &options, &LogProgress).await.unwrap()
}

fn sqlite_toml(org: &str) -> String {
    format!(
        r#"{org}
[sources.legacy]
kind = "sqlite"
path = "legacy.db"
time_zone = "Asia/Vladivostok"

[sources.legacy.tables.intake_requests]
query = """
select id as source_id, dept as department, branch as branch_code, subject, created as created_at, status,
       updated_at
from requests
"""
cursor = "updated_at"
lookback_seconds = 300
"#
    )
}

#[tokio::test]
async fn sqlite_fixed_branch_code_loads_the_quarantined_rows_by_source_id() {
    let mut e = env(&sqlite_toml(&org(None)));
    let conn = rusqlite::Connection::open(e.path("legacy.db")).unwrap();
    conn.execute_batch(
        "create table requests (id text primary key, dept text, branch text, subject text, created text, status text,
                                updated_at text);
         insert into requests values
           ('R-1', 'content',  'VVO', 'Афиша',  '2025-01-10 09:00:00', 'new',  '2025-01-10 09:00:00'),
           ('R-2', 'content',  'KHV', 'Чужой',  '2025-01-10 08:00:00', 'new',  '2025-01-10 08:00:00'),
           ('R-3', 'content',  'VVO', 'Буклет', '2025-01-10 07:00:00', 'open', '2025-01-10 07:00:00'),
           ('R-4', 'docflow',  'VVO', 'Счёт',   '2025-01-10 12:00:00', 'new',  '2025-01-10 12:00:00');",
    )
    .unwrap();
    assert_eq!(table(&e.sync().await, "legacy").quarantined, 2);
    let q = e.rows("select source_id, record_id, reason from quarantine order by source_id").await;
    assert_eq!(q[0][..2], ["sqlite:intake_requests:source_id=R-2", "R-2"]);
    assert!(q[0][2].contains("unknown branch code `KHV`") && q[0][2].contains("legacy = \"KHV\""), "{q:?}");
    assert!(
        q[1][2].contains("`open`") && q[1][2].contains("[sources.legacy.tables.intake_requests.values.status]"),
        "{q:?}"
    );

    // A branch claims KHV: the cursor read finds only R-4 (within 300 s of 12:00), the replay
    // reads R-2 and R-3 by source_id: R-2 loads, R-3 still does not.
    e.reconfigure(&sqlite_toml(&org(Some("KHV"))));
    let report = e.sync().await;
    let t = table(&report, "legacy");
    assert_eq!((t.read, t.replayed, t.inserted, t.cleared, t.quarantined), (1, 2, 1, 1, 0));
    assert_eq!(e.rows("select branch_id from intake_requests where source_id = 'R-2'").await, [["khv"]]);
    assert_eq!(e.rows("select source_id from quarantine").await, [["sqlite:intake_requests:source_id=R-3"]]);

    // R-3 is fixed in place, its updated_at untouched: only a forced replay sees it.
    conn.execute_batch("update requests set status = 'in_progress' where id = 'R-3'").unwrap();
    assert_eq!(table(&e.sync().await, "legacy").replayed, 0);
    let t = table(&replay(&e).await, "legacy").clone();
    assert_eq!((t.replayed, t.inserted, t.cleared), (1, 1, 1));
    assert_eq!(e.count("select count(*) from quarantine").await, 0);
    assert_eq!(e.count("select count(*) from intake_requests").await, 4);

    // A quarantined row that is gone upstream when replayed is cleared, not kept for ever.
    conn.execute_batch(
        "insert into requests values ('R-5', 'content', 'XXX', 'Ничей', '2025-01-10 13:00:00', 'new', '2025-01-10 13:00:00')",
    )
    .unwrap();
    assert_eq!(table(&e.sync().await, "legacy").quarantined, 1);
    conn.execute_batch("delete from requests where id = 'R-5'").unwrap();
    let t = table(&replay(&e).await, "legacy").clone();
    assert_eq!((t.replayed, t.cleared), (1, 1));
    assert_eq!(e.count("select count(*) from quarantine").await, 0);
}

fn csv_toml(org: &str) -> String {
    format!(
        r#"{org}
[sources.onec]
kind = "csv"
path = "in/*.csv"
table = "deals"
delimiter = ";"

[sources.onec.columns]
source_id = "id"
created_at = "date"
updated_at = "date"
amount = "amount"
branch_code = "branch"
pipeline = "=1c"
stage = "=new"
source_stage = "=new"
status = "=open"
"#
    )
}

#[tokio::test]
async fn files_fixed_mapping_clears_what_now_loads_and_a_gone_file_takes_its_rows() {
    let mut e = env(&csv_toml(&org(None)));
    e.write(
        "in/a.csv",
        b"id;date;amount;branch\nA1;2025-01-10;100;VVO\nA2;2025-01-10;5;KHV\nA3;2025-01-10;1.005;VVO\n",
    );
    e.write("in/b.csv", b"id;date;amount;branch\nB1;2025-01-11;7;KHV\n");
    let report = e.sync().await;
    assert_eq!(table(&report, "onec").quarantined, 3);
    assert_eq!(
        e.rows("select source_id from quarantine order by source_id").await,
        [["in/a.csv:3"], ["in/a.csv:4"], ["in/b.csv:2"]]
    );

    // A forced replay reads again only the files holding quarantined rows... all of them here;
    // nothing changed, so the same rows stay, replaced in place.
    let t = table(&replay(&e).await, "onec").clone();
    assert_eq!((t.read, t.replayed, t.cleared), (0, 3, 0));
    assert_eq!(e.count("select count(*) from quarantine").await, 3);

    // The branch code KHV is claimed: the changed mapping reads both files again, A2 and B1 load.
    e.reconfigure(&csv_toml(&org(Some("KHV"))));
    let t = table(&e.sync().await, "onec").clone();
    assert_eq!((t.read, t.inserted, t.cleared, t.quarantined, t.replayed), (3, 2, 2, 1, 0));
    assert_eq!(e.rows("select source_id from quarantine").await, [["in/a.csv:4"]]);
    assert_eq!(e.count("select count(*) from deals").await, 3);

    // a.csv goes away: its rows stay loaded, its quarantined row goes with it.
    std::fs::remove_file(e.path("in/a.csv")).unwrap();
    let t = table(&e.sync().await, "onec").clone();
    assert_eq!(t.cleared, 1);
    assert_eq!(e.count("select count(*) from quarantine").await, 0);
    assert_eq!(e.count("select count(*) from deals").await, 3);
}

fn push_toml(values: &str) -> String {
    let org = org(None);
    format!(
        r#"{org}
[sources.portal]
kind = "push"
table = "intake_requests"

[sources.portal.values]
department = {{ {values} }}
"#
    )
}

#[tokio::test]
async fn push_records_are_mapped_again_from_the_kept_copy_or_cleared_when_sent_fixed() {
    let mut e = env(&push_toml("\"маркетинг\" = \"marketing\""));
    let body = r#"[
        {"source_id": "P-1", "department": "маркетинг", "created_at": "2025-01-10T09:00:00Z", "status": "new"},
        {"source_id": "P-2", "department": "контент", "created_at": "2025-01-10T09:05:00Z", "status": "new"},
        {"source_id": "P-3", "department": "склад", "created_at": "2025-01-10T09:10:00Z", "status": "new", "subject": "Ящики"}
    ]"#;
    let accepted =
        dealhouse_ingest::push::accept(e.project.clone(), &e.warehouse, "portal", body.as_bytes()).await.unwrap();
    assert_eq!((accepted.inserted, accepted.quarantined), (1, 2));
    let q = e.rows("select source_id, record_id, raw, reason from quarantine order by source_id").await;
    assert_eq!(q[0][..2], ["source_id=P-2", "P-2"]);
    // The record as it was sent.
    let raw: serde_json::Value = serde_json::from_str(&q[1][2]).unwrap();
    assert_eq!(raw["subject"], "Ящики");
    assert!(q[0][3].contains("`контент`") && q[0][3].contains("[sources.portal.values.department]"), "{q:?}");

    // The portal sends P-3 again, fixed: its quarantine row goes.
    let fixed =
        br#"{"source_id": "P-3", "department": "marketing", "created_at": "2025-01-10T09:10:00Z", "status": "new"}"#;
    dealhouse_ingest::push::accept(e.project.clone(), &e.warehouse, "portal", fixed).await.unwrap();
    assert_eq!(e.rows("select source_id from quarantine").await, [["source_id=P-2"]]);

    // The user maps `контент`: the next sync maps P-2 again from the kept copy.
    e.reconfigure(&push_toml("\"маркетинг\" = \"marketing\", \"контент\" = \"content\""));
    let t = table(&e.sync().await, "portal").clone();
    assert_eq!((t.replayed, t.inserted, t.cleared), (1, 1, 1));
    assert_eq!(
        e.rows("select source_id, department from intake_requests order by source_id").await,
        [["P-1", "marketing"], ["P-2", "content"], ["P-3", "marketing"]]
    );
    assert_eq!(e.count("select count(*) from quarantine").await, 0);
}
