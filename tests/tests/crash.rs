//! Crash safety of sync, through the binary: `kill -9` in the middle of a large sync, then a
//! re-run, gives exactly the tables of an uninterrupted sync (nothing lost, nothing twice),
//! because each chunk's rows and its cursor are one Delta commit.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use dealhouse_ingest::demo::{DemoOptions, generate};
use dealhouse_tests::{dealhouse_bin, dealhouse_ok, scratch, table_counts};

fn commits(table_dir: &Path) -> usize {
    std::fs::read_dir(table_dir.join("_delta_log"))
        .map(|d| d.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

#[test]
fn kill_9_mid_sync_then_rerun_equals_an_uninterrupted_sync() {
    let tmp = scratch();
    let options =
        DemoOptions { seed: 11, weeks: 26, as_of: NaiveDate::from_ymd_opt(2026, 11, 23).expect("valid date") };
    let (whole, killed) = (tmp.path().join("whole"), tmp.path().join("killed"));
    generate(&whole, &options).expect("demo sources");
    generate(&killed, &options).expect("demo sources");

    dealhouse_ok(&["-C", whole.to_str().unwrap(), "sync"]);
    let expected = table_counts(&whole);

    // Kill the second sync as soon as its first chunk of activities (the longest stream) is
    // committed, so rows and cursors of some chunks are in and others are not.
    let mut child = Command::new(dealhouse_bin())
        .args(["-C", killed.to_str().unwrap(), "sync"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dealhouse sync starts");
    let activities = killed.join("warehouse/activities");
    let started = Instant::now();
    // The table's creation is commit 0; the first chunk is commit 1.
    while commits(&activities) < 2 {
        assert!(child.try_wait().expect("child status").is_none(), "sync finished before it could be killed");
        assert!(started.elapsed() < Duration::from_secs(300), "no activities committed in 5 minutes");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("killed child reaped");
    assert!(status.code().is_none(), "the sync was killed by the signal, not finished: {status}");
    let partial = table_counts(&killed);
    let count = |counts: &[(String, i64)], t: &str| counts.iter().find(|(n, _)| n == t).map_or(0, |(_, n)| *n);
    assert!(
        count(&partial, "activities") < count(&expected, "activities"),
        "the kill came after the activities were all in: {partial:?}"
    );

    dealhouse_ok(&["-C", killed.to_str().unwrap(), "sync"]);
    assert_eq!(table_counts(&killed), expected, "interrupted + re-run differs from one uninterrupted sync");
    let dupes = dealhouse_ok(&[
        "-C",
        killed.to_str().unwrap(),
        "query",
        "--format",
        "csv",
        "select count(*) - count(distinct source_system || '/' || source_id) from activities",
    ]);
    assert_eq!(dupes.lines().nth(1), Some("0"), "duplicated activities");
}
