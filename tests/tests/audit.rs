//! `dealhouse audit intake` end to end, through the binary as an auditor runs it:
//! - on the demo company it finds exactly the problems the generator planted (its
//!   `sources/audit-manifest.json`), no more, no fewer, and the verdicts follow the rules;
//! - `--version N` reads the same rows after later syncs changed them: the same bytes (JSON and
//!   CSV), while the latest version differs;
//! - legacy systems in a real PostgreSQL and a real MariaDB (a schema / database of the test's
//!   own, dropped at the end) plus CRM-side requests in a CSV export, synced through the real SQL
//!   and file connectors, audited with findings computed by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use chrono::NaiveDate;
use dealhouse_ingest::demo::{DemoOptions, generate};
use dealhouse_tests::http::http;
use dealhouse_tests::{checksums, dealhouse, dealhouse_ok, export_env, scratch, serve};
use serde_json::Value;

const AS_OF: &str = "2026-11-23";
/// Long enough that branches switch with eight weeks of data before and after (the volume
/// comparison).
const WEEKS: u32 = 26;

/// The default verdict rules that block, in their order (README, "Auditing the intake migration").
const BLOCKING: [&str; 5] = ["unmatched_legacy", "migrated_twice", "mismatch_client", "mismatch_amount", "volume_drop"];

fn demo(dir: &Path, seed: u64) {
    let as_of = NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").unwrap();
    generate(dir, &DemoOptions { seed, weeks: WEEKS, as_of }).unwrap();
    dealhouse_ok(&["-C", dir.to_str().unwrap(), "sync"]);
}

fn audit_json(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["-C", dir.to_str().unwrap(), "audit", "intake"];
    args.extend_from_slice(extra);
    serde_json::from_str(&dealhouse_ok(&args)).unwrap()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// (kind, branch, system, id) of every finding of an audit.
fn findings(doc: &Value) -> BTreeSet<(String, String, Option<String>, Option<String>)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (text(&f["kind"]).unwrap(), text(&f["branch_id"]).unwrap(), text(&f["system"]), text(&f["source_id"])))
        .collect()
}

#[test]
fn the_demo_audit_finds_exactly_the_planted_problems_and_a_version_reads_the_same_rows() {
    let tmp = scratch();
    let dir = tmp.path().join("d");
    demo(&dir, 11);

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sources/audit-manifest.json")).unwrap()).unwrap();
    let planted: BTreeSet<(String, String, Option<String>, Option<String>)> = manifest["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (text(&f["kind"]).unwrap(), text(&f["branch"]).unwrap(), text(&f["system"]), text(&f["id"])))
        .collect();
    // The generator planted every kind of problem the audit knows.
    let kinds: BTreeSet<&str> = planted.iter().map(|p| p.0.as_str()).collect();
    let all: BTreeSet<&str> = dealhouse_warehouse::config::FINDING_KINDS.into_iter().collect();
    assert_eq!(kinds, all, "kinds planted");

    let doc = audit_json(&dir, &[]);
    let found = findings(&doc);
    let missed: Vec<_> = planted.difference(&found).collect();
    let false_ones: Vec<_> = found.difference(&planted).collect();
    assert!(missed.is_empty() && false_ones.is_empty(), "missed: {missed:#?}\nnot planted: {false_ones:#?}");

    // Verdicts by the default rules, from the manifest: a blocking kind blocks (the first such
    // rule is named), any other finding is a finding, nothing is clean.
    let mut by_branch: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (kind, branch, _, _) in &planted {
        by_branch.entry(branch.clone()).or_default().insert(kind.clone());
    }
    let branches = doc["branches"].as_array().unwrap();
    assert!(branches.len() > 40, "{} switched branches", branches.len());
    for b in branches {
        let id = b["branch_id"].as_str().unwrap();
        let kinds = by_branch.remove(id).unwrap_or_default();
        let verdict = b["verdict"].as_str().unwrap();
        let rule = b["verdict_rule"].as_str().unwrap();
        match BLOCKING.iter().position(|k| kinds.contains(*k)) {
            Some(i) => {
                assert_eq!(verdict, "blocking", "{id}: {kinds:?}");
                assert!(rule.starts_with(&format!("rule {}: {} >= 1", i + 1, BLOCKING[i])), "{id}: {rule}");
            }
            None if !kinds.is_empty() => assert_eq!(verdict, "findings", "{id}: {kinds:?}"),
            None => assert_eq!((verdict, rule), ("clean", "no rule fired"), "{id}"),
        }
    }
    assert!(by_branch.is_empty(), "planted in branches the audit does not list: {by_branch:?}");
    // Requests the desk received itself were answered faster: the demo's seed claims it.
    let lead = doc["lead_times"].as_array().unwrap();
    assert!(lead.iter().any(|l| l["period"] == "after") && lead.iter().any(|l| l["period"] == "before"));

    // Over HTTP: the same document for an admin; a branch token sees its branch's findings only.
    let version = doc["read"][0]["version"].as_i64().unwrap();
    let branch = planted.iter().find(|p| p.2.is_some()).map(|p| p.1.clone()).unwrap();
    let sha = |t: &str| hex::encode(sha2::Sha256::digest(t.as_bytes()));
    use sha2::Digest;
    let config = dir.join("dealhouse.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(&format!(
        "\n[tokens.ops]\nsha256 = \"{}\"\nrole = \"admin\"\n\n[tokens.branch]\nsha256 = \"{}\"\nrole = \"branch\"\nbranches = [\"{branch}\"]\n",
        sha("admin-token"),
        sha("branch-token")
    ));
    std::fs::write(&config, toml).unwrap();
    {
        let server = serve(dir.to_str().unwrap());
        let get = |token: &str, path: &str| {
            let (status, body) = http(&server.1, "GET", path, None, &[("Authorization", &format!("Bearer {token}"))]);
            assert_eq!(status, 200, "{path}: {body}");
            serde_json::from_str::<Value>(&body).unwrap()
        };
        let mut admin = get("admin-token", &format!("/api/v1/audit/intake?version={version}"));
        assert_eq!(admin["asked"], format!("version {version}"));
        let mut cli = doc.clone();
        admin["asked"] = Value::Null;
        cli["asked"] = Value::Null;
        assert!(admin == cli, "the API answers what the CLI printed for the same version");
        let scoped = get("branch-token", "/api/v1/audit/intake");
        let mine: BTreeSet<_> = found.iter().filter(|f| f.1 == branch).cloned().collect();
        assert!(!mine.is_empty());
        assert_eq!(findings(&scoped), mine, "{branch}'s token sees exactly its findings");
        let branches: Vec<&str> =
            scoped["branches"].as_array().unwrap().iter().map(|b| b["branch_id"].as_str().unwrap()).collect();
        assert_eq!(branches, [branch.as_str()]);
    }

    // The workbook, as a spreadsheet reads it: a sheet per finding kind, each row naming its record.
    use calamine::Reader;
    let book_path = tmp.path().join("audit.xlsx");
    dealhouse_ok(&[
        "-C",
        dir.to_str().unwrap(),
        "audit",
        "intake",
        "--format",
        "xlsx",
        "--out",
        book_path.to_str().unwrap(),
    ]);
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&book_path).unwrap();
    let sheets = book.sheet_names();
    for kind in &all {
        assert!(sheets.iter().any(|s| s == kind), "no sheet {kind} in {sheets:?}");
    }
    let lost = book.worksheet_range("unmatched_legacy").unwrap();
    let header: Vec<String> = lost.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
    let (system, id) =
        (header.iter().position(|h| h == "system").unwrap(), header.iter().position(|h| h == "source_id").unwrap());
    let in_book: BTreeSet<(String, String)> =
        lost.rows().skip(1).map(|r| (r[system].to_string(), r[id].to_string())).collect();
    let in_manifest: BTreeSet<(String, String)> = planted
        .iter()
        .filter(|p| p.0 == "unmatched_legacy")
        .map(|p| (p.2.clone().unwrap(), p.3.clone().unwrap()))
        .collect();
    assert_eq!(in_book, in_manifest);

    // --version: the same bytes now and after the sources changed and synced again.
    assert_eq!(doc["read"][0]["table"], "intake_requests");
    let v = version.to_string();
    let d = dir.to_str().unwrap();
    let pinned = dealhouse_ok(&["-C", d, "audit", "intake", "--version", &v]);
    let csv_at_version = |out: &std::path::Path| {
        dealhouse_ok(&["-C", d, "audit", "intake", "--version", &v, "--format", "csv", "--out", out.to_str().unwrap()]);
    };
    let csv_before = tmp.path().join("csv-before");
    csv_at_version(&csv_before);
    demo(&dir, 12);
    let again = dealhouse_ok(&["-C", d, "audit", "intake", "--version", &v]);
    assert!(pinned == again, "--version {v} gave other bytes after a sync");
    let csv_after = tmp.path().join("csv-after");
    csv_at_version(&csv_after);
    assert_eq!(checksums(&csv_before), checksums(&csv_after));
    assert_eq!(checksums(&csv_before).len(), 7, "read.csv and six sections");
    let latest = audit_json(&dir, &[]);
    assert!(latest["read"][0]["version"].as_i64().unwrap() > version);
    assert_ne!(findings(&latest), found, "another seed plants other problems");

    let out = dealhouse(&["-C", d, "audit", "intake", "--version", "100000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no version 100000") && err.contains("--version 0..="), "{err}");
    let out = dealhouse(&["-C", d, "audit", "intake", "--as-of", "2001-01-01"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("has no version at 2001-01-01T23:59:59"), "{err}");
    // --as-of today reads the current version.
    let now = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(audit_json(&dir, &["--as-of", &now])["read"][0]["version"], latest["read"][0]["version"]);
}

// ---------------------------------------------------------------------------------------------
// Legacy systems in PostgreSQL and MariaDB.

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_HOST: (&str, &str) = ("127.0.0.1", "3306");

fn postgres_url() -> String {
    std::env::var("DEALHOUSE_TEST_POSTGRES_URL").unwrap_or_else(|_| POSTGRES_URL.into())
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([postgres_url().as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("cannot run psql: install the PostgreSQL client (scripts/test does)");
    assert!(
        out.status.success(),
        "psql failed on `{sql}`: {}\nThis test needs PostgreSQL at {}: run `scripts/test`, or start it \
         (`pg_ctlcluster 15 main start`) and set DEALHOUSE_TEST_POSTGRES_URL.",
        String::from_utf8_lossy(&out.stderr),
        postgres_url()
    );
}

fn mariadb(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-h", MYSQL_HOST.0, "-P", MYSQL_HOST.1, "-u", "root", "-e", sql])
        .output()
        .expect("cannot run mariadb: install the MariaDB client (scripts/test does)");
    assert!(
        out.status.success(),
        "mariadb failed on `{sql}`: {}\nThis test needs MariaDB at 127.0.0.1:3306 (root, no password): run \
         `scripts/test`, or start it (`mariadbd --user=mysql &`).",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Drops the scratch schema and database when the test ends, failed or not.
struct Scratch(String);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([postgres_url().as_str(), "-q", "-c", &format!("drop schema if exists {} cascade", self.0)])
            .output();
        let _ = Command::new("mariadb")
            .args([
                "-h",
                MYSQL_HOST.0,
                "-P",
                MYSQL_HOST.1,
                "-u",
                "root",
                "-e",
                &format!("drop database if exists {}", self.0),
            ])
            .output();
    }
}

#[test]
fn legacy_systems_in_postgres_and_mariadb_are_audited_against_the_crm_export() {
    let name = format!("dh_audit_{}", std::process::id());
    let _guard = Scratch(name.clone());
    // PostgreSQL legacy system: 1 copied as is, 2 copied with another amount, 3 never copied.
    psql(&format!(
        "create schema {name};
         create table {name}.requests (id int primary key, dept text, branch text, inn text, subject text,
             created timestamptz, status text, resolved timestamptz, amount numeric(18,2));
         insert into {name}.requests values
           (1, 'marketing', 'vvo', '111', 'Poster', '2025-02-03 09:00:00+00', 'done', '2025-02-04 09:00:00+00', 100.00),
           (2, 'marketing', 'vvo', '222', 'Banner', '2025-02-05 09:00:00+00', 'done', null, 50.00),
           (3, 'content', 'vvo', '333', 'Hall map', '2025-02-10 09:00:00+00', 'new', null, null);"
    ));
    // MariaDB legacy system (UTC wall-clock times): 1 copied; 2 received after kgd's switch.
    mariadb(&format!(
        "create database {name};
         create table {name}.requests (id int primary key, dept varchar(20), branch varchar(10), inn varchar(12),
             subject varchar(100), created datetime, status varchar(20), resolved datetime, amount decimal(18,2));
         insert into {name}.requests values
           (1, 'marketing', 'kgd', '444', 'Mailing', '2025-02-12 09:00:00', 'done', null, 70.00),
           (2, 'content', 'kgd', '555', 'Post', '2025-03-02 09:00:00', 'new', null, null);"
    ));
    // The CRM's export: references name the system (both legacy systems have an id 1); d6's
    // bare `1` names both, so it is ambiguous; d5 is a request the CRM received itself.
    let csv = "id,dept,branch,inn,subject,created,status,resolved,amount,legacy\n\
               d1,marketing,vvo,111,Poster,2025-02-03T09:00:00Z,done,2025-02-04T09:00:00Z,100.00,pg_legacy:1\n\
               d2,marketing,vvo,222,Banner,2025-02-05T09:00:00Z,done,,55.00,pg_legacy:2\n\
               d3,marketing,kgd,444,Mailing,2025-02-12T09:00:00Z,done,,70.00,my_legacy:1\n\
               d5,marketing,vvo,999,Promo,2025-03-05T09:00:00Z,done,2025-03-05T10:00:00Z,10.00,\n\
               d6,marketing,vvo,111,Poster,2025-02-03T09:00:00Z,done,,100.00,1\n";
    let tmp = scratch();
    let dir = tmp.path();
    std::fs::write(dir.join("desk.csv"), csv).unwrap();
    export_env("AUDIT_TEST_PG_URL", &postgres_url());
    export_env("AUDIT_TEST_MY_URL", &format!("mysql://root@{}:{}/{name}", MYSQL_HOST.0, MYSQL_HOST.1));
    std::fs::write(
        dir.join("dealhouse.toml"),
        format!(
            r#"[[organisation.holdings]]
id = "east"
name = "East"

[[organisation.branches]]
id = "vvo"
holding = "east"
name = "Vladivostok"
city = "Vladivostok"
time_zone = "Asia/Vladivostok"
crm_switch_date = "2025-03-01"

[[organisation.branches]]
id = "kgd"
holding = "east"
name = "Kaliningrad"
city = "Kaliningrad"
time_zone = "Europe/Kaliningrad"
crm_switch_date = "2025-03-01"

[sources.pg_legacy]
kind = "postgres"
url_env = "AUDIT_TEST_PG_URL"
[sources.pg_legacy.tables.intake_requests]
query = "select cast(id as text) as source_id, dept as department, branch as branch_id, inn as client_inn, subject, created as created_at, status, resolved as resolved_at, amount from {name}.requests"

[sources.my_legacy]
kind = "mysql"
url_env = "AUDIT_TEST_MY_URL"
time_zone = "UTC"
[sources.my_legacy.tables.intake_requests]
query = "select cast(id as char) as source_id, dept as department, branch as branch_id, inn as client_inn, subject, created as created_at, status, resolved as resolved_at, amount from requests"

[sources.desk]
kind = "csv"
path = "desk.csv"
table = "intake_requests"
[sources.desk.columns]
source_id = "id"
department = "dept"
branch_id = "branch"
client_inn = "inn"
subject = "subject"
created_at = "created"
status = "status"
resolved_at = "resolved"
amount = "amount"
legacy_ref = "legacy"

[audit]
legacy_sources = ["pg_legacy", "my_legacy"]
crm_sources = ["desk"]
"#
        ),
    )
    .unwrap();
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["-C", d, "sync"]);
    let doc = audit_json(dir, &[]);
    let rows: BTreeSet<(String, String, String, String, String, String)> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or("-").to_string();
            (s("kind"), s("system"), s("source_id"), s("related_system"), s("legacy_value"), s("crm_value"))
        })
        .collect();
    let expected: BTreeSet<(String, String, String, String, String, String)> = [
        ("ambiguous", "desk", "d6", "my_legacy", "-", "-"),
        ("ambiguous", "desk", "d6", "pg_legacy", "-", "-"),
        ("legacy_after_switch", "my_legacy", "2", "-", "2025-03-02", "2025-03-01"),
        ("mismatch_amount", "pg_legacy", "2", "desk", "50.00", "55.00"),
        ("unmatched_legacy", "my_legacy", "2", "-", "-", "-"),
        ("unmatched_legacy", "pg_legacy", "3", "-", "-", "-"),
    ]
    .into_iter()
    .map(|(a, b, c, e, f, g)| (a.into(), b.into(), c.into(), e.into(), f.into(), g.into()))
    .collect();
    assert_eq!(rows, expected);
    let matches: BTreeSet<(String, String, String)> = doc["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let s = |k: &str| m[k].as_str().unwrap_or("-").to_string();
            (s("legacy_system"), s("legacy_id"), s("crm_id"))
        })
        .collect();
    let pairs = [("my_legacy", "1", "d3"), ("pg_legacy", "1", "d1"), ("pg_legacy", "2", "d2")];
    assert_eq!(matches, pairs.into_iter().map(|(a, b, c)| (a.into(), b.into(), c.into())).collect());
    let verdicts: Vec<(String, String)> = doc["branches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["branch_id"].as_str().unwrap().into(), b["verdict_rule"].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("kgd".to_string(), "rule 1: unmatched_legacy >= 1 (1 found)".to_string()),
            ("vvo".to_string(), "rule 1: unmatched_legacy >= 1 (1 found)".to_string()),
        ]
    );
}
