//! End-to-end tests of the file source's JSON Lines format, globs, object-store URLs and
//! several tables fed by one file, through `sync_project`. Expected values are computed by hand
//! in the comments next to them; file hashes are recomputed here with SHA-256.

mod common;

use std::collections::BTreeMap;

use common::{Env, env, source};
use dealhouse_ingest::sync::TableReport;
use dealhouse_tests::project::Org;
use dealhouse_warehouse::CommitMeta;
use dealhouse_warehouse::schema::canonical_table;
use sha2::{Digest, Sha256};

fn org() -> String {
    Org::new()
        .holding("center", "Центр")
        .branch("msk", "center", "Москва", "Europe/Moscow")
        .codes(&[("portal", "12"), ("onec", "12")])
        .toml()
}

/// The per-file hashes a table's cursor holds: file -> SHA-256 of its bytes (the mapping
/// fingerprint after the `.` left out).
async fn file_hashes(e: &Env, table: &str, source: &str) -> BTreeMap<String, String> {
    let cursor = e.cursor(table, source).await.expect("a cursor");
    let map: BTreeMap<String, String> = serde_json::from_str(&cursor).unwrap();
    map.into_iter().map(|(k, v)| (k, v.split('.').next().unwrap().to_string())).collect()
}

/// Syncs; the report of the source's first table.
async fn synced(e: &Env, name: &str) -> TableReport {
    let report = e.sync().await;
    let source = source(&report, name);
    assert_eq!(source.error, None, "{report:?}");
    source.tables[0].clone()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

mod jsonl {
    use super::*;

    fn toml(extra_column: &str) -> String {
        let org = org();
        format!(
            r#"{org}
[sources.portal]
kind = "jsonl"
path = "exports/requests.jsonl"
table = "deals"
time_zone = "Europe/Moscow"

[sources.portal.columns]
source_id = "id"
created_at = "created"
updated_at = "created"
amount = "amount"
branch_code = "branch"
pipeline = "=portal"
stage = "stage"
source_stage = "stage"
status = "=open"
{extra_column}
[sources.portal.values]
stage = {{ "Новая" = "new" }}
"#
        )
    }

    // Line 1 has a BOM; line 2 is empty; line 3 gives the id and branch as a string and a number
    // the other way round, and a nested object under a key nothing maps.
    const LINES: &str = "\u{feff}{\"id\": 1, \"created\": \"2025-01-10 09:00:00\", \"amount\": 1234.5, \"branch\": \"12\", \"stage\": \"Новая\"}\n\
        \n\
        {\"id\": \"2\", \"created\": \"2025-01-11T10:00:00+03:00\", \"amount\": \"99.99\", \"branch\": 12, \"stage\": \"new\", \"extra\": {\"a\": 1}}\r\n\
        [1, 2, 3]\n\
        {\"id\": 3, \"created\": \"2025-01-12\", \"amount\": 10.555, \"branch\": \"12\", \"stage\": \"new\"}\n\
        {\"id\": 4, \"created\": \"2025-01-13\", \"branch\": \"12\"\n";

    #[tokio::test]
    async fn files_jsonl_loads_objects_and_quarantines_bad_lines() {
        let e = env(&toml(""));
        e.write("exports/requests.jsonl", LINES.as_bytes());
        let report = e.sync().await;
        let portal = source(&report, "portal");
        assert_eq!(portal.error, None);
        assert_eq!((portal.tables[0].read, portal.tables[0].inserted, portal.tables[0].quarantined), (2, 2, 3));
        // 09:00 wall-clock in Moscow (UTC+3) is 06:00Z; 10:00+03:00 is 07:00Z. The number 12
        // reads as the branch code "12".
        assert_eq!(
            e.rows("select deal_id, branch_id, stage, created_at from deals order by source_id").await,
            vec![
                vec!["portal:1", "msk", "new", "2025-01-10T06:00:00Z"],
                vec!["portal:2", "msk", "new", "2025-01-11T07:00:00Z"],
            ]
        );
        // 1234.5 -> 123450 kopecks; "99.99" -> 9999.
        assert_eq!(e.scaled("select amount from deals order by source_id").await, vec![Some(123_450), Some(9_999)]);
        let q = e.rows("select location, reason, raw from quarantine order by location").await;
        assert_eq!(
            q.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
            ["exports/requests.jsonl:4", "exports/requests.jsonl:5", "exports/requests.jsonl:6"]
        );
        assert!(q[0][1].contains("not a JSON object") && q[0][1].contains("sequence"), "{q:?}");
        assert_eq!(q[0][2], "[1, 2, 3]");
        assert!(q[1][1].contains("`amount`") && q[1][1].contains("10.555") && q[1][1].contains("3 decimals"), "{q:?}");
        assert!(q[1][2].starts_with("{\"id\": 3,"), "the raw line as written: {q:?}");
        assert!(q[2][1].contains("EOF while parsing an object"), "{q:?}");

        // Nothing changed: nothing read, nothing added.
        let report = e.sync().await;
        let t = &source(&report, "portal").tables[0];
        assert_eq!((t.read, t.inserted, t.updated, t.quarantined), (0, 0, 0, 0));
        assert_eq!(e.count("select count(*) from deals").await, 2);
        assert_eq!(e.count("select count(*) from quarantine").await, 3);
    }

    #[tokio::test]
    async fn files_jsonl_key_no_line_has_refuses_the_file() {
        let e = env(&toml("title = \"subject\"\n"));
        e.write("exports/requests.jsonl", LINES.as_bytes());
        let report = e.sync().await;
        let error = source(&report, "portal").error.clone().unwrap();
        assert!(error.contains("requests.jsonl") && error.contains("missing column `subject`"), "{error}");
        assert!(error.contains("[sources.portal.columns]") && error.contains("`amount`, `branch`"), "{error}");
        assert!(error.contains("nothing of this file was loaded"), "{error}");
        assert_eq!(e.count("select count(*) from deals").await, 0);
        assert_eq!(e.count("select count(*) from quarantine").await, 0);

        // Invalid UTF-8 (a cp1251 byte on line 2) refuses it too.
        let e = env(&toml(""));
        e.write("exports/requests.jsonl", b"{\"id\": 1}\n{\"id\": \"\xc0\"}\n");
        let error = source(&e.sync().await, "portal").error.clone().unwrap();
        assert!(error.contains("not valid UTF-8 at line 2") && error.contains("export it as UTF-8"), "{error}");
        assert_eq!(e.count("select count(*) from quarantine").await, 0);
    }
}

mod globs {
    use super::*;

    fn toml(path: &str) -> String {
        let org = org();
        format!(
            r#"{org}
[sources.onec]
kind = "csv"
path = "{path}"
table = "deals"

[sources.onec.columns]
source_id = "id"
created_at = "date"
updated_at = "date"
amount = "amount"
pipeline = "=1c"
stage = "=new"
source_stage = "=new"
status = "=open"
"#
        )
    }

    const FILE_1: &str = "id,date,amount\nA1,2025-01-01,10\nA2,2025-01-02,20\n";
    const FILE_2: &str = "id,date,amount\nB1,2025-02-01,30\n";
    const FILE_3: &str = "id,date,amount\nC1,2025-03-01,40\nC2,2025-03-02,50\n";

    fn three_files(e: &Env) {
        e.write("exports/deals_01.csv", FILE_1.as_bytes());
        e.write("exports/deals_02.csv", FILE_2.as_bytes());
        e.write("exports/deals_03.csv", FILE_3.as_bytes());
        // Neither matches `exports/deals_*.csv`: another name, and a subfolder (`*` stays in one folder).
        e.write("exports/other.csv", b"id,date,amount\nX1,2025-01-01,1\n");
        e.write("exports/old/deals_09.csv", b"id,date,amount\nX2,2025-01-01,1\n");
    }

    #[tokio::test]
    async fn files_glob_reads_only_new_and_changed_files() {
        let mut e = env(&toml("exports/deals_*.csv"));
        three_files(&e);
        let report = e.sync().await;
        let t = &source(&report, "onec").tables[0];
        assert_eq!((t.read, t.inserted), (5, 5), "{report:?}");
        let hashes = file_hashes(&e, "deals", "onec").await;
        let expected: BTreeMap<String, String> = [
            ("exports/deals_01.csv", sha256(FILE_1.as_bytes())),
            ("exports/deals_02.csv", sha256(FILE_2.as_bytes())),
            ("exports/deals_03.csv", sha256(FILE_3.as_bytes())),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .into();
        assert_eq!(hashes, expected);

        // Nothing changed: no file read, the cursor stays.
        let cursor = e.cursor("deals", "onec").await;
        let t = &synced(&e, "onec").await;
        assert_eq!((t.read, t.inserted, t.updated), (0, 0, 0));
        assert_eq!(e.cursor("deals", "onec").await, cursor);

        // File 2 changes (B1's amount, a new B2), file 4 is new: only those 3 rows are read;
        // files 1 and 3 (4 rows) are skipped.
        let file_2 = "id,date,amount\nB1,2025-02-01,35\nB2,2025-02-02,60\n";
        e.write("exports/deals_02.csv", file_2.as_bytes());
        e.write("exports/deals_04.csv", b"id,date,amount\nD1,2025-04-01,70\n");
        let t = &synced(&e, "onec").await;
        assert_eq!((t.read, t.inserted, t.updated), (3, 2, 1));
        let hashes = file_hashes(&e, "deals", "onec").await;
        assert_eq!(hashes.len(), 4);
        assert_eq!(hashes["exports/deals_01.csv"], expected["exports/deals_01.csv"]);
        assert_eq!(hashes["exports/deals_02.csv"], sha256(file_2.as_bytes()));
        assert_eq!(hashes["exports/deals_03.csv"], expected["exports/deals_03.csv"]);
        // 10 + 20 + 35 + 60 + 40 + 50 + 70 = 285 -> 28500 kopecks, 7 deals.
        assert_eq!(e.scaled("select sum(amount) from deals").await, vec![Some(28_500)]);
        assert_eq!(e.count("select count(*) from deals").await, 7);

        // A file refused (a mapped header missing) loads nothing of itself; the file after it
        // still loads, and the refused one is read again once it is fixed.
        e.write("exports/deals_05.csv", b"id,date,sum\nE1,2025-05-01,80\n");
        e.write("exports/deals_06.csv", b"id,date,amount\nF1,2025-06-01,90\n");
        let report = e.sync().await;
        let onec = source(&report, "onec");
        let error = onec.error.clone().unwrap();
        assert!(error.contains("deals_05.csv") && error.contains("missing column `amount`"), "{error}");
        assert_eq!(
            e.rows("select source_id from deals where source_id >= 'E' order by source_id").await,
            vec![vec!["F1"]]
        );
        assert!(!file_hashes(&e, "deals", "onec").await.contains_key("exports/deals_05.csv"));
        e.write("exports/deals_05.csv", b"id,date,amount\nE1,2025-05-01,80\n");
        let t = &synced(&e, "onec").await;
        assert_eq!((t.read, t.inserted), (1, 1));

        // A file that is gone leaves the cursor (its rows stay: deletions are not seen by files).
        std::fs::remove_file(e.path("exports/deals_03.csv")).unwrap();
        let t = &synced(&e, "onec").await;
        assert_eq!(t.read, 0);
        assert!(!file_hashes(&e, "deals", "onec").await.contains_key("exports/deals_03.csv"));
        assert_eq!(e.count("select count(*) from deals").await, 9);

        // A glob matching nothing names the pattern and the folder searched.
        e.reconfigure(&toml("exports/sales_*.csv"));
        let error = source(&e.sync().await, "onec").error.clone().unwrap();
        let folder = e.path("exports/").display().to_string();
        assert!(error.contains("no file matches `sales_*.csv`") && error.contains(&folder), "{error}");
    }

    /// A crash after file 1's commit: the stored cursor has file 1 only, so the next sync reads
    /// files 2 and 3 again and not file 1.
    #[tokio::test]
    async fn files_glob_resumes_after_the_last_committed_file() {
        let e = env(&toml("exports/deals_*.csv"));
        three_files(&e);
        e.sync().await;
        let cursor: BTreeMap<String, String> = serde_json::from_str(&e.cursor("deals", "onec").await.unwrap()).unwrap();
        let after_file_1: BTreeMap<&String, &String> = cursor.iter().take(1).collect();
        let def = canonical_table("deals").unwrap();
        let empty = dealhouse_warehouse::datafusion::arrow::record_batch::RecordBatch::new_empty(def.schema());
        let meta = CommitMeta {
            operation: "sync".into(),
            source: "onec".into(),
            cursor: Some(serde_json::to_string(&after_file_1).unwrap()),
        };
        e.warehouse.upsert(&def, vec![empty], &meta).await.unwrap();
        let t = &synced(&e, "onec").await;
        // Files 2 and 3: 1 + 2 rows, all already there unchanged.
        assert_eq!((t.read, t.inserted, t.updated), (3, 0, 0));
        // Re-reading unchanged rows still stores the cursor: the next sync reads nothing.
        assert_eq!(file_hashes(&e, "deals", "onec").await.len(), 3);
        assert_eq!(synced(&e, "onec").await.read, 0);
    }

    #[tokio::test]
    async fn files_file_url_paths_read_through_object_store() {
        let outside = tempfile::tempdir().unwrap();
        let folder = url::Url::from_directory_path(outside.path()).unwrap();
        std::fs::write(outside.path().join("deals_1.csv"), FILE_1).unwrap();
        std::fs::write(outside.path().join("deals_2.csv"), "id,date,amount\nB1,2025-02-01,1.005\n").unwrap();
        let e = env(&toml(&format!("{folder}deals_*.csv")));
        let report = e.sync().await;
        let t = &source(&report, "onec").tables[0];
        assert_eq!((t.read, t.quarantined), (2, 1), "{report:?}");
        let q = e.rows("select location from quarantine").await;
        assert_eq!(q, vec![vec![format!("{folder}deals_2.csv:2")]]);
        let hashes = file_hashes(&e, "deals", "onec").await;
        assert_eq!(hashes[&format!("{folder}deals_1.csv")], sha256(FILE_1.as_bytes()));

        // One file by URL; a URL glob matching nothing names the URL folder.
        let e = env(&toml(&format!("{folder}deals_1.csv")));
        assert_eq!(source(&e.sync().await, "onec").tables[0].read, 2);
        let e = env(&toml(&format!("{folder}sales_*.csv")));
        let error = source(&e.sync().await, "onec").error.clone().unwrap();
        assert!(error.contains("no file matches `sales_*.csv`") && error.contains(folder.as_str()), "{error}");
        let e = env(&toml(&format!("{folder}missing.csv")));
        let error = source(&e.sync().await, "onec").error.clone().unwrap();
        assert!(error.contains("missing.csv") && error.contains("does not exist"), "{error}");
    }
}

mod tables {
    use super::*;

    /// The Maven Analytics agents file: one row per agent with its manager and regional office.
    const AGENTS: &str = "sales_agent,manager,regional_office\n\
        Anna Snelling,Dustin Brinkmann,Central\n\
        Cecily Lampkin,Dustin Brinkmann,Central\n\
        Daniell Hammack,Rocco Neubert,East\n\
        Corliss Cosme,Summer Sewald,West\n\
        Moses Frase,Melvin Marxen,Central\n\
        ,Rocco Neubert,East\n";

    /// The branches come from the file: the organisation declares only the holding.
    fn toml() -> String {
        Org::new().holding("mv", "MavenTech").toml() + TOML
    }

    const TOML: &str = r#"
[sources.agents]
kind = "csv"
path = "maven/sales_teams.csv"

[sources.agents.tables.managers.columns]
source_id = "sales_agent"
name = "sales_agent"
branch_code = "regional_office"
active = "=true"

[sources.agents.tables.branches.columns]
source_id = "regional_office"
name = "{regional_office} ({manager})"
holding_id = "=mv"
city = "regional_office"
time_zone = "regional_office"

[sources.agents.tables.branches.values]
time_zone = { Central = "America/Chicago", East = "America/New_York", West = "America/Los_Angeles" }
"#;

    #[tokio::test]
    async fn files_one_file_feeds_managers_and_branches() {
        let e = env(&toml());
        e.write("maven/sales_teams.csv", AGENTS.as_bytes());
        let report = e.sync().await;
        let agents = source(&report, "agents");
        assert_eq!(agents.error, None);
        let counts: Vec<(&str, u64, u64, u64)> =
            agents.tables.iter().map(|t| (t.table.as_str(), t.read, t.inserted, t.quarantined)).collect();
        // 6 rows: 6 branch rows collapse to 3 branches; the agent-less row is quarantined for
        // managers only.
        assert_eq!(counts, [("branches", 6, 3, 0), ("managers", 5, 5, 1)]);
        // The same office on many rows is one branch; the last row wins (Central's last row
        // names Melvin Marxen).
        assert_eq!(
            e.rows("select branch_id, holding_id, name, city, time_zone from branches order by branch_id").await,
            vec![
                vec!["agents:Central", "mv", "Central (Melvin Marxen)", "Central", "America/Chicago"],
                vec!["agents:East", "mv", "East (Rocco Neubert)", "East", "America/New_York"],
                vec!["agents:West", "mv", "West (Summer Sewald)", "West", "America/Los_Angeles"],
            ]
        );
        // Each manager's branch_code names the branch this same file describes.
        assert_eq!(
            e.rows(
                "select m.manager_id, b.city from managers m join branches b on m.branch_id = b.branch_id \
                    order by m.manager_id"
            )
            .await,
            vec![
                vec!["agents:Anna Snelling", "Central"],
                vec!["agents:Cecily Lampkin", "Central"],
                vec!["agents:Corliss Cosme", "West"],
                vec!["agents:Daniell Hammack", "East"],
                vec!["agents:Moses Frase", "Central"],
            ]
        );
        let q = e.rows("select location, entity, source_id, reason from quarantine").await;
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[0][..3], ["maven/sales_teams.csv:7", "managers", "maven/sales_teams.csv:7#managers"]);
        assert!(q[0][3].contains("`source_id`") && q[0][3].contains("[sources.agents.tables.managers.columns]"));

        // Nothing changed: neither table reads the file again.
        let report = e.sync().await;
        let reads: Vec<u64> = source(&report, "agents").tables.iter().map(|t| t.read).collect();
        assert_eq!(reads, [0, 0]);
    }

    #[tokio::test]
    async fn files_a_header_one_table_maps_refuses_the_file_for_all() {
        let e = env(&toml().replace("city = \"regional_office\"", "city = \"office_city\""));
        e.write("maven/sales_teams.csv", AGENTS.as_bytes());
        let report = e.sync().await;
        let error = source(&report, "agents").error.clone().unwrap();
        assert!(error.contains("sales_teams.csv") && error.contains("missing column `office_city`"), "{error}");
        assert!(error.contains("[sources.agents.tables.branches.columns]"), "{error}");
        assert_eq!(e.count("select count(*) from managers").await, 0);
        assert_eq!(e.count("select count(*) from branches").await, 0);
        assert_eq!(e.count("select count(*) from quarantine").await, 0);
    }

    #[test]
    fn files_table_and_tables_together_is_a_config_error() {
        let toml = toml()
            .replace("path = \"maven/sales_teams.csv\"\n", "path = \"maven/sales_teams.csv\"\ntable = \"managers\"\n");
        let e =
            dealhouse_ingest::project::parse(&toml, std::path::Path::new("/p/dealhouse.toml")).unwrap_err().to_string();
        let line = toml.lines().position(|l| l == "table = \"managers\"").expect("the added line") + 1;
        assert!(e.starts_with(&format!("/p/dealhouse.toml:{line}: key `sources.agents.table`")), "{e}");
        assert!(e.contains("`table` and [sources.agents.tables.*] are both set"), "{e}");
    }
}

/// A date without a time of day names a calendar day, and stays that day where a branch counts
/// it, in the branch's own zone, even when that zone is not the source's.
mod bare_dates {
    use super::*;
    use dealhouse_warehouse::models;

    /// A Moscow (UTC+3) export of deals of a Kaliningrad branch (UTC+2, an hour west).
    const TOML: &str = r#"
[sources.onec]
kind = "csv"
path = "exports/deals.csv"
table = "deals"
time_zone = "Europe/Moscow"

[sources.onec.columns]
source_id = "id"
created_at = "created"
updated_at = "closed"
closed_at = "closed"
branch_code = "branch"
pipeline = "=1c"
stage = "=won"
source_stage = "=won"
status = "=won"
"#;

    // 1: bare dates. 2: the same close day with a time of day, 00:30 in Moscow.
    const CSV: &str = "id,created,closed,branch\n\
        1,2026-10-20,2026-11-01,39\n\
        2,2026-10-20 10:00:00,2026-11-01 00:30:00,39\n";

    #[tokio::test]
    async fn files_a_bare_date_is_that_day_in_the_branchs_zone_and_a_time_keeps_its_instant() {
        let org = Org::new()
            .holding("west", "Запад")
            .branch("kgd", "west", "Калининград", "Europe/Kaliningrad")
            .codes(&[("onec", "39")])
            .toml();
        let e = env(&format!("{org}{TOML}"));
        e.write("exports/deals.csv", CSV.as_bytes());
        assert_eq!(synced(&e, "onec").await.quarantined, 0);
        // Deal 1: 2026-11-01 is stored as midday in Moscow, 09:00Z (midnight, 10-31 21:00Z, is
        // still October in Kaliningrad: 23:00 on the 31st). Deal 2: 00:30 in Moscow is the
        // instant 10-31 21:30Z, whatever zone counts it.
        assert_eq!(
            e.rows("select source_id, created_at, closed_at from deals order by source_id").await,
            vec![
                vec!["1", "2026-10-20T09:00:00Z", "2026-11-01T09:00:00Z"],
                vec!["2", "2026-10-20T07:00:00Z", "2026-10-31T21:30:00Z"],
            ]
        );
        let all = models::load_models(None).unwrap();
        let runs = models::run(&e.warehouse, &all, None, |_| {}).await.unwrap();
        assert!(runs.iter().all(|r| r.result.is_ok()), "{runs:?}");
        // In Kaliningrad deal 1 closed on 2026-11-01 (11:00 there), deal 2 on 10-31 at 23:30.
        assert_eq!(
            e.rows("select deal_id, closed_date, closed_month from fct_deal order by deal_id").await,
            vec![vec!["onec:1", "2026-11-01", "2026-11-01"], vec!["onec:2", "2026-10-31", "2026-10-01"]]
        );
        assert_eq!(
            e.rows("select month, branch_id, won from mart_win_rate_monthly order by month").await,
            vec![vec!["2026-10-01", "kgd", "1"], vec!["2026-11-01", "kgd", "1"]]
        );
    }
}

/// Messages about a file's bad rows: where they are (line numbers as an editor shows them) and
/// what to change (in the file or dealhouse.toml: a file source has no query).
mod messages {
    use super::*;

    const TOML: &str = r#"
[sources.onec]
kind = "csv"
path = "exports/deals.csv"
table = "deals"

[sources.onec.columns]
source_id = "id"
created_at = "date"
updated_at = "date"
amount = "amount"
pipeline = "=1c"
stage = "=new"
source_stage = "=new"
status = "status"
"#;

    async fn locations(e: &Env) -> Vec<String> {
        e.rows("select location from quarantine order by location").await.into_iter().map(|r| r[0].clone()).collect()
    }

    #[tokio::test]
    async fn files_csv_quarantine_lines_are_the_editors_lines_for_crlf_blank_lines_and_quoted_newlines() {
        // CRLF: A2 is on line 3, A3 on line 5 after a blank line 4.
        let e = env(&format!("{}{TOML}", org()));
        e.write(
            "exports/deals.csv",
            b"id,note,date,amount,status\r\nA1,,2025-01-01,10,open\r\nA2,,bad,20,open\r\n\r\nA3,,2025-01-03,x,open\r\n",
        );
        assert_eq!(synced(&e, "onec").await.quarantined, 2);
        assert_eq!(locations(&e).await, ["exports/deals.csv:3", "exports/deals.csv:5"]);

        // LF with a quoted field over lines 2-3: A2 is on line 4; the record spanning two lines
        // is named by the line it starts on (A3's `note` starts on line 5).
        let e = env(&format!("{}{TOML}", org()));
        e.write(
            "exports/deals.csv",
            b"id,note,date,amount,status\nA1,\"two\nlines\",2025-01-01,10,open\nA2,,bad,20,open\nA3,\"x\ny\",bad,1,open\n",
        );
        assert_eq!(synced(&e, "onec").await.quarantined, 2);
        assert_eq!(locations(&e).await, ["exports/deals.csv:4", "exports/deals.csv:5"]);
    }

    #[tokio::test]
    async fn files_reasons_say_what_to_change_without_mentioning_a_query() {
        let e = env(&format!("{}{TOML}", org()));
        e.write("exports/deals.csv", b"id,date,amount,status\nA1,2025-01-01,10,pending\n");
        assert_eq!(synced(&e, "onec").await.quarantined, 1);
        let reason = &e.rows("select reason from quarantine").await[0][0];
        assert!(reason.contains("`pending` is not one of open, won, lost"), "{reason}");
        assert!(reason.contains("[sources.onec.values.status]") && !reason.contains("query"), "{reason}");

        // A number where a date-time belongs (JSON Lines keeps numbers as numbers).
        let toml = TOML.replace("kind = \"csv\"", "kind = \"jsonl\"").replace("deals.csv", "deals.jsonl");
        let e = env(&format!("{}{toml}", org()));
        e.write("exports/deals.jsonl", b"{\"id\": 1, \"date\": 1736500000, \"amount\": 1, \"status\": \"open\"}\n");
        assert_eq!(synced(&e, "onec").await.quarantined, 1);
        let reason = &e.rows("select reason from quarantine").await[0][0];
        assert!(reason.contains("is a number, not a date-time") && !reason.contains("query"), "{reason}");
    }
}

/// `sync` fails a source that quarantines more than its share of what it read, after
/// committing what loaded.
mod quarantine_limit {
    use dealhouse_ingest::quarantine::limit::QuarantineLimit;
    use dealhouse_ingest::sync::SyncOptions;

    use super::*;

    const TOML: &str = r#"
[sources.onec]
kind = "csv"
path = "exports/deals.csv"
table = "deals"

[sources.onec.columns]
source_id = "id"
created_at = "date"
updated_at = "date"
amount = "amount"
pipeline = "=1c"
stage = "=new"
source_stage = "=new"
status = "=open"
"#;

    /// A2 has no date: 1 of 3 records quarantined, 33.3333%.
    const CSV: &[u8] = b"id,date,amount\nA1,2025-01-01,10\nA2,,20\nA3,2025-01-03,30\n";

    async fn run(extra_toml: &str, options: SyncOptions) -> (Env, Option<String>) {
        let e = env(&format!("{}{TOML}{extra_toml}", org()));
        e.write("exports/deals.csv", CSV);
        let report = e.sync_with(&options).await;
        let error = source(&report, "onec").error.clone();
        (e, error)
    }

    #[tokio::test]
    async fn files_a_third_quarantined_fails_the_source_after_loading_the_rest() {
        let (e, error) = run("", SyncOptions::default()).await;
        let error = error.expect("1 of 3 is above the default 1%");
        assert!(error.contains("source `onec`: 1 of 3 records read were quarantined (33.3333%)"), "{error}");
        assert!(error.contains("more than the 1% allowed by the default"), "{error}");
        assert!(error.contains("the 2 that mapped are loaded"), "{error}");
        assert!(error.contains("Run `dealhouse quarantine`") && !error.contains("re-sync"), "{error}");
        // Nothing lost: the good rows are loaded, the bad one is held for a replay.
        assert_eq!(e.count("select count(*) from deals").await, 2);
        assert_eq!(e.count("select count(*) from quarantine").await, 1);

        let (_, error) = run("\n[sync.sources.onec]\nmax_quarantined_share = 0.5\n", SyncOptions::default()).await;
        assert_eq!(error, None);
        let (_, error) = run("\n[sync]\nmax_quarantined_share = 0.3\n", SyncOptions::default()).await;
        let error = error.expect("33.3333% is above 30%");
        assert!(error.contains("the 30% allowed by [sync] max_quarantined_share in dealhouse.toml"), "{error}");
        // The command line wins over the file, either way.
        let cli = |limit: &str| SyncOptions { max_quarantined: Some(limit.parse().unwrap()), ..Default::default() };
        let (_, error) = run("\n[sync]\nmax_quarantined_share = 0.3\n", cli("50%")).await;
        assert_eq!(error, None);
        let (_, error) = run("\n[sync]\nmax_quarantined_share = 0.5\n", cli("0")).await;
        assert!(error.expect("0 allowed").contains("the 0 records allowed by --max-quarantined"));
        let unlimited = SyncOptions { max_quarantined: Some(QuarantineLimit::Unlimited), ..Default::default() };
        assert_eq!(run("", unlimited).await.1, None);
    }
}
