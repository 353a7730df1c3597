//! The foundation end to end, through the `dealhouse` binary as a user runs it: demo company ->
//! sources -> sync -> Delta tables -> build -> query; idempotent re-sync; determinism of the
//! generated sources; other engines reading the tables; config errors naming file, line and key.
//! What a user reads (help texts, `dealhouse test` and `status` of a demo, a config error) is
//! pinned as reviewed insta snapshots in `snapshots/`, with paths, times and versions filtered.

use std::path::Path;
use std::process::Command;

use chrono::NaiveDate;
use dealhouse_ingest::demo::{DemoOptions, generate};
use dealhouse_tests::{checksums, dealhouse, dealhouse_ok, scratch, table_counts};

const WEEKS: u32 = 6;
const AS_OF: &str = "2026-11-23";

fn demo_project(dir: &Path) {
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["demo", d, "--seed", "7", "--weeks", &WEEKS.to_string(), "--as-of", AS_OF, "--no-serve"]);
}

/// Asserts a command's output against the snapshot `name` (`snapshots/foundation__NAME.snap`),
/// with the machine-specific parts replaced: the project path by `[dir]`, clock times by
/// `[time]`, version numbers by `[version]`.
fn assert_output(name: &str, output: &[u8], dir: &Path) {
    let text = String::from_utf8_lossy(output).replace(&dir.display().to_string(), "[dir]");
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]");
    settings.add_filter(r"\b\d+\.\d+\.\d+\b", "[version]");
    settings.bind(|| insta::assert_snapshot!(name, text));
}

fn query_csv(dir: &Path, sql: &str) -> Vec<String> {
    dealhouse_ok(&["-C", dir.to_str().unwrap(), "query", "--format", "csv", sql])
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[test]
fn demo_syncs_builds_and_resync_adds_nothing() {
    let tmp = scratch();
    let dir = tmp.path().join("d");
    demo_project(&dir);

    // ~500-600 new deals a week over the generated weeks.
    let deals: i64 = query_csv(&dir, "select count(*) from deals")[0].parse().unwrap();
    assert!((500 * WEEKS as i64..=600 * WEEKS as i64).contains(&deals), "{deals} deals for {WEEKS} weeks");
    // Every deal created in the generated window, each once.
    let distinct: i64 = query_csv(&dir, "select count(distinct deal_id) from deals")[0].parse().unwrap();
    assert_eq!(distinct, deals);

    // All canonical tables have rows, and the organisation has its 77 branches.
    let counts = table_counts(&dir);
    for table in ["holdings", "branches", "managers", "clients", "deals", "deal_stage_changes", "activities"] {
        let n = counts.iter().find(|(t, _)| t == table).map(|(_, n)| *n).unwrap_or(0);
        assert!(n > 0, "table {table} is empty: {counts:?}");
    }
    assert_eq!(query_csv(&dir, "select count(*) from branches")[0], "77");

    // Money is exact decimal and statuses agree with stages.
    let types = query_csv(&dir, "select arrow_typeof(amount) from deals limit 1");
    // The type name holds a comma, so CSV quotes it.
    assert_eq!(types[0], "\"Decimal128(18, 2)\"");
    let bad = query_csv(&dir, "select count(*) from deals where (stage = 'won') <> (status = 'won')");
    assert_eq!(bad[0], "0");

    // A second sync with no upstream change adds no rows anywhere.
    let out = dealhouse(&["-C", dir.to_str().unwrap(), "sync"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(table_counts(&dir), counts, "re-sync changed row counts");

    // status names each source and table.
    let status = dealhouse(&["-C", dir.to_str().unwrap(), "status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("crm") && text.contains("deals"), "{text}");
    // Every table's version and row count after sync, re-sync and build: the demo is deterministic.
    assert_output("demo_status", &status.stdout, &dir);

    // The data tests of a demo all pass, and say how many ran.
    let tests = dealhouse(&["-C", dir.to_str().unwrap(), "test"]);
    assert!(tests.status.success(), "{}", String::from_utf8_lossy(&tests.stderr));
    assert_output("demo_data_tests", &tests.stderr, &dir);

    // Other engines open the tables: they are real Delta tables.
    let script = format!(
        // os._exit: the deltalake wheel can abort in interpreter teardown ("terminate called without
        // an active exception") after the read has succeeded; skip the teardown.
        "import deltalake, os\nt = deltalake.DeltaTable({:?}).to_pyarrow_table()\nprint(t.num_rows, flush=True)\nos._exit(0)",
        dir.join("warehouse/deals").display().to_string()
    );
    let py = Command::new("python3").args(["-c", &script]).output().expect("python3 runs");
    assert!(
        py.status.success(),
        "python deltalake could not read the deals table (install it with scripts/test or `pip install deltalake`): {}",
        String::from_utf8_lossy(&py.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), deals.to_string());
}

#[test]
fn same_seed_same_sources_other_seed_differs() {
    let tmp = scratch();
    let as_of = NaiveDate::parse_from_str(AS_OF, "%Y-%m-%d").unwrap();
    let run = |name: &str, seed: u64| {
        let dir = tmp.path().join(name);
        generate(&dir, &DemoOptions { seed, weeks: 3, as_of }).expect("demo generates");
        checksums(&dir)
    };
    let a = run("a", 7);
    let b = run("b", 7);
    let c = run("c", 8);
    assert!(a.len() >= 5, "expected the CRM files, the SQLite db, the XLSX, the CSV and dealhouse.toml: {a:?}");
    assert_eq!(a, b, "same seed gave different files");
    let differing = a.iter().zip(&c).filter(|(x, y)| x != y).count();
    assert!(differing > 0, "another seed gave identical files");
}

#[test]
fn malformed_config_names_file_line_and_key() {
    let tmp = scratch();
    let dir = tmp.path();
    let file = dir.join("dealhouse.toml");
    std::fs::write(&file, "[warehouse]\nlocation = \"wh\"\n\n[server]\nbind = \"127.0.0.1:1\"\nport = 8080\n").unwrap();
    let out = dealhouse(&["-C", dir.to_str().unwrap(), "status"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{}:6", file.display())) && err.contains("server.port"), "{err}");
    assert_output("config_error_unknown_key", &out.stderr, dir);

    std::fs::write(&file, "[warehouse]\nlocation = \"ftp://host/x\"\n").unwrap();
    let out = dealhouse(&["-C", dir.to_str().unwrap(), "sync"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("dealhouse.toml:2") && err.contains("warehouse.location"), "{err}");
}

#[test]
fn help_texts_are_reviewed() {
    let dir = Path::new("/nonexistent");
    for (name, args) in [
        ("help", &["--help"][..]),
        ("sync_help", &["sync", "--help"][..]),
        ("build_help", &["build", "--help"][..]),
        ("export_help", &["export", "--help"][..]),
        ("audit_intake_help", &["audit", "intake", "--help"][..]),
    ] {
        assert_output(name, dealhouse_ok(args).as_bytes(), dir);
    }
}

#[test]
fn init_creates_a_project_that_loads_and_query_refuses_writes() {
    let tmp = scratch();
    let dir = tmp.path().join("p");
    dealhouse_ok(&["init", dir.to_str().unwrap()]);
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["-C", d, "sync"]);
    assert_eq!(query_csv(&dir, "select count(*) from branches")[0], "1");
    let out = dealhouse(&["-C", d, "query", "drop table branches"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    assert_eq!(query_csv(&dir, "select count(*) from branches")[0], "1");
    // No intake systems, nothing switched: an audit with no branch and no finding.
    let audit: serde_json::Value = serde_json::from_str(&dealhouse_ok(&["-C", d, "audit", "intake"])).unwrap();
    assert_eq!(
        (audit["branches"].as_array().map(Vec::len), audit["findings"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
}

#[test]
fn a_broken_model_names_its_file_and_line_and_keeps_the_previous_table() {
    let tmp = scratch();
    let dir = tmp.path().join("d");
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["demo", d, "--seed", "5", "--weeks", "2", "--as-of", AS_OF, "--no-serve"]);
    let before = query_csv(&dir, "select count(*), sum(open_amount) from mart_pipeline_now");

    // A project model overriding a built-in, with a column that does not exist on line 4.
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let broken = dir.join("models/mart_pipeline_now.sql");
    std::fs::write(&broken, "-- Broken on purpose.\nselect\n    stage,\n    open_amount_typo\nfrom fct_deal\n")
        .unwrap();
    let out = dealhouse(&["-C", d, "build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a failing model must fail the build: {stderr}");
    assert!(stderr.contains(&format!("{}:4", broken.display())), "file and line named: {stderr}");
    assert!(stderr.contains("open_amount_typo"), "{stderr}");
    // The other models built; the broken one kept its previous table.
    assert!(stderr.lines().any(|l| l.starts_with("model fct_deal") && l.contains(" ok ")), "{stderr}");
    assert_eq!(query_csv(&dir, "select count(*), sum(open_amount) from mart_pipeline_now"), before);

    // A cycle between two project models names both files and builds nothing.
    std::fs::remove_file(&broken).unwrap();
    std::fs::write(dir.join("models/loop_a.sql"), "-- A.\nselect * from loop_b\n").unwrap();
    std::fs::write(dir.join("models/loop_b.sql"), "-- B.\nselect * from loop_a\n").unwrap();
    let out = dealhouse(&["-C", d, "build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cycle") && stderr.contains("loop_a.sql") && stderr.contains("loop_b.sql"), "{stderr}");
}
