//! `dealhouse export` end to end on a small demo company (8 weeks): the reports are listed,
//! `weekly-branch --per-branch` writes one XLSX per branch whose totals equal
//! `GET /api/v1/metrics` filtered to that branch, and a default period is stated.

use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader, Xlsx};
use dealhouse_tests::http::get_json;
use dealhouse_tests::{dealhouse, dealhouse_ok, scratch, serve};
use serde_json::Value;

const AS_OF: &str = "2026-11-23";
/// A complete week inside the demo's 8 weeks: Monday 2026-11-09 .. Sunday 2026-11-15.
const WEEK: &str = "2026-W46";
const WEEK_DAYS: &str = "2026-11-09,2026-11-10,2026-11-11,2026-11-12,2026-11-13,2026-11-14,2026-11-15";

fn number(d: &Data) -> f64 {
    match d {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        Data::Empty => 0.0,
        other => panic!("not a number cell: {other:?}"),
    }
}

fn api_number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

/// The totals row of a sheet (its last row) by column title.
fn totals(book: &mut Xlsx<Cursor<Vec<u8>>>, sheet: &str) -> (Vec<String>, Vec<Data>, usize) {
    let range = book.worksheet_range(sheet).unwrap();
    let rows: Vec<&[Data]> = range.rows().collect();
    let header = rows[0].iter().map(|c| c.to_string()).collect();
    let last = rows.last().unwrap().to_vec();
    assert_eq!(last[0], Data::String("Итого".into()), "{sheet} ends with its totals row");
    (header, last, rows.len() - 2)
}

#[test]
fn weekly_branch_per_branch_files_match_the_api() {
    let tmp = scratch();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["demo", d, "--seed", "7", "--weeks", "8", "--as-of", AS_OF, "--no-serve"]);

    let listing = dealhouse_ok(&["-C", d, "export"]);
    for id in ["daily-managers", "weekly-branch", "monthly-holding", "stalled"] {
        assert!(listing.contains(id), "{listing}");
    }

    let out = tmp.path().join("out");
    let run = dealhouse(&[
        "-C",
        d,
        "export",
        "weekly-branch",
        "--period",
        WEEK,
        "--per-branch",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let folder = out.join("weekly-branch");
    let mut branches: Vec<String> =
        std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    branches.sort();
    assert_eq!(branches.len(), 77, "one folder per demo branch: {branches:?}");

    let server = serve(d);
    let mut calls_seen = 0.0;
    for branch in &branches {
        let file = folder.join(branch).join(format!("{WEEK}.xlsx"));
        let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(std::fs::read(&file).unwrap())).unwrap();

        let (header, row, _) = totals(&mut book, "Активность");
        let api = get_json(
            &server.1,
            &format!("/api/v1/metrics?measures=calls,meetings,proposals,contracts&day={WEEK_DAYS}&branch={branch}"),
        );
        let api = &api["rows"][0];
        for (title, measure) in
            [("Звонки", "calls"), ("Встречи", "meetings"), ("КП отправлено", "proposals"), ("Договоры", "contracts")]
        {
            let i = header.iter().position(|h| h == title).unwrap();
            assert_eq!(number(&row[i]), api_number(&api[measure]), "{branch} {measure}");
        }
        calls_seen += api_number(&api["calls"]);

        let (header, row, rows) = totals(&mut book, "КП без ответа");
        let api = get_json(
            &server.1,
            &format!("/api/v1/metrics?measures=stalled_deals,stalled_amount&stage=proposal&branch={branch}"),
        );
        let api = &api["rows"][0];
        assert_eq!(rows as f64, api_number(&api["stalled_deals"]), "{branch} stalled proposals");
        let i = header.iter().position(|h| h == "Сумма").unwrap();
        assert!((number(&row[i]) - api_number(&api["stalled_amount"])).abs() < 0.005, "{branch} stalled amount");
    }
    assert!(calls_seen > 0.0, "the week has calls");
}

#[test]
fn the_default_period_is_the_last_complete_one_and_is_stated() {
    let tmp = scratch();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["demo", d, "--seed", "3", "--weeks", "3", "--as-of", AS_OF, "--no-serve"]);
    let run = dealhouse(&["-C", d, "export", "monthly-holding", "--format", "csv"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // The data ends on 2026-11-23 (or the day before), so the last complete month is October.
    assert!(stderr.contains("2026-10") && stderr.contains("last complete month"), "{stderr}");
    assert!(Path::new(d).join("exports/monthly-holding/2026-10.csv").exists(), "{stderr}");

    let bad = dealhouse(&["-C", d, "export", "monthly-holding", "--manager", "x"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("--manager") && stderr.contains("period, holding, branch"),
        "{stderr}"
    );
}

/// The README's kinds of alert on a demo company: `dealhouse build` evaluates them after the
/// build and says what opened (each rule's count equals a query written here by hand), a second
/// evaluation opens nothing new, and `--no-alerts` skips them.
#[test]
fn alerts_are_evaluated_after_the_build_and_opened_once() {
    let tmp = scratch();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["demo", d, "--seed", "3", "--weeks", "3", "--as-of", AS_OF, "--no-serve"]);
    let config = dir.join("dealhouse.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[alerts.stalled]\n\
         sql = \"select manager_id, branch_id, count(*) as stalled from mart_stalled_deals group by 1, 2 having count(*) > 1\"\n\
         key = [\"manager_id\"]\nmessage = \"{manager_id} has {stalled} stalled deals\"\n\n\
         [alerts.behind_plan]\nmeasure = \"plan_completion\"\nby = [\"branch\"]\n\
         filters = { metric = [\"won_amount\"], level = [\"manager\"] }\nbelow = \"0.5\"\nfrom_day = 20\n\n\
         [alerts.sync_late]\nkind = \"freshness\"\nmax_age = \"2h\"\n\n\
         [alerts.data_tests]\nkind = \"data_tests\"\n",
    );
    std::fs::write(&config, text).unwrap();

    let count = |sql: &str| dealhouse_tests::query_value(d, sql).parse::<i64>().unwrap();
    let build = dealhouse(&["-C", d, "build"]);
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "{stderr}");
    // By hand: managers with more than one stalled deal; branches whose managers' won amount this
    // month (the reference day's, 2026-11-20: on or after from_day) is under half the sum of
    // their plans (the demo plans per manager); the demo just synced and its data tests pass.
    let stalled = count(
        "select count(distinct manager_id) from (select manager_id from mart_stalled_deals group by manager_id, \
         branch_id having count(*) > 1)",
    );
    let behind = count(
        "select count(*) from (select branch_id, sum(fact) / sum(plan) as r from mart_plan_fact \
         where month = date '2026-11-01' and metric = 'won_amount' and manager_id is not null \
         group by branch_id) where r < 0.5",
    );
    assert!(stalled > 0 && behind > 0, "the demo has stalled managers ({stalled}) and branches behind plan ({behind})");
    assert!(
        stderr.contains(&format!("alerts: 4 evaluated, {} opened, 0 resolved, 0 still open", stalled + behind)),
        "{stderr}"
    );
    for (alert, expected) in [("stalled", stalled), ("behind_plan", behind), ("sync_late", 0), ("data_tests", 0)] {
        let open = count(&format!("select count(*) from alert_events where alert = '{alert}' and resolved_at is null"));
        assert_eq!(open, expected, "{alert}");
    }
    // A branch's occurrences carry the branch.
    assert_eq!(count("select count(*) from alert_events where alert = 'behind_plan' and branch_id is null"), 0);

    let again = dealhouse(&["-C", d, "alerts"]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("0 opened, 0 resolved, {} still open", stalled + behind)), "{stderr}");

    let skipped = dealhouse(&["-C", d, "build", "--no-alerts", "--no-test"]);
    assert!(skipped.status.success());
    assert!(!String::from_utf8_lossy(&skipped.stderr).contains("alerts:"));
}
