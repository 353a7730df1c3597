//! Reports on the hand-made fixture company (tests/common): numbers equal `GET /api/v1/metrics`
//! for the same filters, `--per-branch` files hold only their branch and add up to the whole,
//! re-exports are byte-identical, XLSX cells are real numbers and dates (read back with
//! calamine), and a reader polling the target during a large export never sees half a file.

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use calamine::{Data, Reader, Xlsx};
use common::{ADMIN, app, call, project};
use dealhouse_api::reports::{
    CsvOptions, Destination, ExportRequest, Filters, Format, Language, NoProgress, Period, export,
};
use dealhouse_warehouse::Project;
use deltalake::logstore::object_store::ObjectStoreExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn request(report: &str, period: &str, format: Format, out: &Path) -> ExportRequest {
    ExportRequest {
        report: report.into(),
        period: Some(Period::parse(period).unwrap()),
        filters: Filters::default(),
        format,
        destination: Destination::Folder(out.to_path_buf()),
        per_branch: false,
        language: Language::Ru,
        csv: CsvOptions::default(),
    }
}

async fn run(p: &Project, wh: &dealhouse_warehouse::Warehouse, r: &ExportRequest) -> Vec<PathBuf> {
    let outcome = export(p, wh, r, &NoProgress).await.unwrap_or_else(|e| panic!("{}: {e}", r.report));
    outcome.files.iter().map(|f| PathBuf::from(&f.location)).collect()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn section<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["sections"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap_or_else(|| panic!("no {id}"))
}

/// `GET /api/v1/metrics?QUERY` -> its single row.
async fn metrics_row(router: &axum::Router, query: &str) -> Value {
    let (status, _, body) = call(router, "GET", &format!("/api/v1/metrics?{query}"), Some(ADMIN), None).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{query}: {v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{query}: {v}");
    rows[0].clone()
}

/// Numbers and decimal strings compared as text ("8100.00" and 8100.00 are not equal: money
/// must be the same exact string).
fn same(a: &Value, b: &Value) -> bool {
    a == b || (a.is_number() && b.is_number() && a.as_f64() == b.as_f64())
}

const WEEK_OF_THE_CALLS: &str = "2025-W02"; // 2025-01-06 .. 2025-01-12; the fixture's calls are on 01-10
const WEEK_DAYS: &str = "2025-01-06,2025-01-07,2025-01-08,2025-01-09,2025-01-10,2025-01-11,2025-01-12";

#[tokio::test]
async fn report_numbers_equal_the_metrics_endpoint_for_the_same_filters() {
    let (_dir, p, wh) = project("");
    let (_d2, router) = app("").await;
    let out = tempfile::tempdir().unwrap();
    for branch in [None, Some("msk"), Some("nsk")] {
        let filter = branch.map(|b| format!("&branch={b}")).unwrap_or_default();
        let with = |mut r: ExportRequest| {
            r.filters.branch = branch.map(|b| vec![b.to_string()]).unwrap_or_default();
            r
        };

        let files = run(&p, &wh, &with(request("monthly-holding", "2025-01", Format::Json, out.path()))).await;
        let doc = json_file(&files[0]);
        let totals = &section(&doc, "leaderboard")["totals"];
        let api = metrics_row(
            &router,
            &format!("measures=won_amount,deals_won,deals_lost,commission&from=2025-01&to=2025-01{filter}"),
        )
        .await;
        for m in ["won_amount", "deals_won", "deals_lost", "commission"] {
            assert!(same(&totals[m], &api[m]), "{m} {branch:?}: report {} api {}", totals[m], api[m]);
        }
        let clients = &section(&doc, "clients")["totals"];
        let api =
            metrics_row(&router, &format!("measures=new_clients,churned_clients&from=2025-01&to=2025-01{filter}"))
                .await;
        for m in ["new_clients", "churned_clients"] {
            assert!(same(&clients[m], &api[m]), "{m} {branch:?}: report {} api {}", clients[m], api[m]);
        }

        let files = run(&p, &wh, &with(request("weekly-branch", WEEK_OF_THE_CALLS, Format::Json, out.path()))).await;
        let doc = json_file(&files[0]);
        let totals = &section(&doc, "activity")["totals"];
        let api =
            metrics_row(&router, &format!("measures=calls,meetings,proposals,contracts&day={WEEK_DAYS}{filter}")).await;
        for m in ["calls", "meetings", "proposals", "contracts"] {
            assert!(same(&totals[m], &api[m]), "{m} {branch:?}: report {} api {}", totals[m], api[m]);
        }
        assert!(api["calls"].as_i64().unwrap() > 0, "the week holds the fixture's calls: {api}");
        let plan = section(&doc, "plan_fact")["rows"].as_array().unwrap().clone();
        let api_plan = metrics_row(
            &router,
            &format!("measures=plan,fact&by=metric&level=branch&metric=won_amount&from=2025-01&to=2025-01{filter}"),
        )
        .await;
        let won = plan.iter().find(|r| r["metric"] == "won_amount").expect("a won_amount plan row");
        assert!(same(&won["plan"], &api_plan["plan"]) && same(&won["fact"], &api_plan["fact"]), "{won} vs {api_plan}");

        let files = run(&p, &wh, &with(request("stalled", "2025-02-01", Format::Json, out.path()))).await;
        let stalled = section(&json_file(&files[0]), "stalled").clone();
        let api = metrics_row(&router, &format!("measures=stalled_deals,stalled_amount{filter}")).await;
        assert_eq!(stalled["rows"].as_array().unwrap().len() as i64, api["stalled_deals"].as_i64().unwrap());
        if api["stalled_deals"].as_i64() != Some(0) {
            assert!(same(&stalled["totals"]["amount"], &api["stalled_amount"]), "{stalled} vs {api}");
        }

        let files = run(&p, &wh, &with(request("daily-managers", "2025-01-10", Format::Json, out.path()))).await;
        let doc = json_file(&files[0]);
        let totals = &section(&doc, "managers")["totals"];
        let api = metrics_row(&router, &format!("measures=calls,meetings&day=2025-01-10{filter}")).await;
        assert!(
            same(&totals["calls"], &api["calls"]) && same(&totals["meetings"], &api["meetings"]),
            "{totals} vs {api}"
        );
    }
}

#[tokio::test]
async fn per_branch_files_hold_only_their_branch_and_add_up_to_the_whole() {
    let (_dir, p, wh) = project("");
    let out = tempfile::tempdir().unwrap();
    let whole = run(&p, &wh, &request("stalled", "2025-02-01", Format::Json, out.path())).await;
    let whole = section(&json_file(&whole[0]), "stalled").clone();
    let mut split = request("stalled", "2025-02-01", Format::Json, out.path());
    split.per_branch = true;
    let files = run(&p, &wh, &split).await;
    assert_eq!(files.len(), common::BRANCHES.len());
    let mut deals = BTreeSet::new();
    let mut cents = 0i64;
    for f in &files {
        // <out>/stalled/<branch>/2025-02-01.json
        let branch = f.parent().unwrap().file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(f.file_name().unwrap(), "2025-02-01.json");
        let doc = json_file(f);
        assert_eq!(doc["branch"], branch.as_str());
        let s = section(&doc, "stalled");
        for row in s["rows"].as_array().unwrap() {
            assert_eq!(row["branch_id"], branch.as_str(), "{f:?} holds another branch's row: {row}");
            // The fixture puts the branch id into every name and title, so a leak shows.
            for other in common::BRANCHES.iter().filter(|b| **b != branch) {
                assert!(!row.to_string().contains(other), "{f:?}: {row}");
            }
            assert!(deals.insert(row["deal_id"].as_str().unwrap().to_string()), "a deal in two files: {row}");
        }
        if let Some(a) = s["totals"]["amount"].as_str() {
            cents += a.replace('.', "").parse::<i64>().unwrap();
        }
    }
    let all: BTreeSet<String> =
        whole["rows"].as_array().unwrap().iter().map(|r| r["deal_id"].as_str().unwrap().to_string()).collect();
    assert!(!all.is_empty(), "the fixture has stalled deals");
    assert_eq!(deals, all, "the branches' files together hold exactly the unscoped rows");
    assert_eq!(cents, whole["totals"]["amount"].as_str().unwrap().replace('.', "").parse::<i64>().unwrap());
}

#[tokio::test]
async fn re_exports_are_byte_identical() {
    let (_dir, p, wh) = project("");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for format in [Format::Csv, Format::Parquet, Format::Json] {
        for report in ["monthly-holding", "stalled"] {
            let period = if report == "stalled" { "2025-02-01" } else { "2025-01" };
            let first = run(&p, &wh, &request(report, period, format, a.path())).await;
            let second = run(&p, &wh, &request(report, period, format, b.path())).await;
            let (x, y) = (std::fs::read(&first[0]).unwrap(), std::fs::read(&second[0]).unwrap());
            assert!(!x.is_empty());
            assert!(x == y, "{report} {format:?} differs between two exports");
        }
    }
}

#[tokio::test]
async fn csv_takes_a_bom_and_semicolons_with_decimal_commas() {
    let (_dir, p, wh) = project("");
    let out = tempfile::tempdir().unwrap();
    let mut r = request("stalled", "2025-02-01", Format::Csv, out.path());
    r.csv = CsvOptions { bom: true, semicolon: true };
    let bytes = std::fs::read(&run(&p, &wh, &r).await[0]).unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap().split(';').next(), Some("Филиал"), "{text}");
    let totals = text.lines().last().unwrap();
    assert!(totals.starts_with("Итого;"), "{text}");
    // The amount: kopecks after a comma, never a dot.
    let amount = totals.rsplit(';').next().unwrap();
    assert!(amount.contains(',') && !amount.contains('.'), "{totals}");
}

#[tokio::test]
async fn xlsx_cells_are_numbers_and_dates_with_a_sheet_per_section() {
    let (_dir, p, wh) = project("");
    let out = tempfile::tempdir().unwrap();
    let json = run(&p, &wh, &request("stalled", "2025-02-01", Format::Json, out.path())).await;
    let expected = section(&json_file(&json[0]), "stalled").clone();
    let file = run(&p, &wh, &request("stalled", "2025-02-01", Format::Xlsx, out.path())).await;
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(std::fs::read(&file[0]).unwrap())).unwrap();
    assert_eq!(book.sheet_names(), ["Зависшие сделки"]);
    let range = book.worksheet_range("Зависшие сделки").unwrap();
    let header: Vec<String> = range.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
    assert_eq!(header[0], "Филиал");
    let col = |title: &str| header.iter().position(|h| h == title).unwrap_or_else(|| panic!("{title} in {header:?}"));
    let rows: Vec<&[Data]> = range.rows().skip(1).collect();
    let data = expected["rows"].as_array().unwrap();
    assert_eq!(rows.len(), data.len() + 1, "rows and a totals row");
    for (cells, json) in rows.iter().zip(data) {
        match &cells[col("Сумма")] {
            Data::Float(f) => assert_eq!(*f, json["amount"].as_str().unwrap().parse::<f64>().unwrap()),
            other => panic!("amount is not a number cell: {other:?}"),
        }
        match &cells[col("Последнее касание")] {
            Data::DateTime(d) => {
                let day = d.as_datetime().unwrap().date().format("%Y-%m-%d").to_string();
                assert_eq!(day, json["last_activity_day"].as_str().unwrap());
            }
            other => panic!("the day is not a date cell: {other:?}"),
        }
        let days = &cells[col("Дней без движения")];
        assert!(matches!(days, Data::Float(_) | Data::Int(_)), "days idle is not a number cell: {days:?}");
    }
    let totals = rows.last().unwrap();
    assert_eq!(totals[0], Data::String("Итого".into()));
    assert_eq!(totals[col("Сумма")], Data::Float(expected["totals"]["amount"].as_str().unwrap().parse().unwrap()));

    // One sheet per section, in order.
    let file = run(&p, &wh, &request("weekly-branch", WEEK_OF_THE_CALLS, Format::Xlsx, out.path())).await;
    let book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(std::fs::read(&file[0]).unwrap())).unwrap();
    assert_eq!(book.sheet_names(), ["Активность", "План-факт месяца", "Воронка месяца", "КП без ответа"]);
}

/// A project report of ~200 000 rows (a few MB of CSV).
const BIG: &str = r#"title = { ru = "Большой", en = "Big" }
description = { ru = "б", en = "b" }
period = "day"
parameters = ["period"]

[[sections]]
id = "big"
title = { ru = "Большой", en = "Big" }
sql = "select n, cast(n as decimal(18, 2)) / 100 as amount, concat('row number ', cast(n as varchar)) as label from (select unnest(range(0, 200000)) as n)"
columns = [
    { name = "n", title = { ru = "n", en = "n" }, format = "count" },
    { name = "amount", title = { ru = "a", en = "a" }, format = "money" },
    { name = "label", title = { ru = "l", en = "l" }, format = "text" },
]
"#;

#[tokio::test]
async fn a_reader_polling_during_a_large_export_never_sees_a_partial_file() {
    let (dir, p, wh) = project("");
    dir.write("reports/big.toml", BIG.as_bytes());
    let target = dir.path().join("out/big.csv");
    let mut r = request("big", "2025-02-01", Format::Csv, dir.path());
    r.destination = Destination::File(target.clone());

    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (done, target) = (done.clone(), target.clone());
        std::thread::spawn(move || {
            let mut seen: BTreeSet<(usize, Vec<u8>)> = BTreeSet::new();
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                match std::fs::read(&target) {
                    Ok(bytes) => {
                        reads += 1;
                        seen.insert((bytes.len(), Sha256::digest(&bytes).to_vec()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("{e}"),
                }
            }
            (reads, seen)
        })
    };
    for _ in 0..3 {
        run(&p, &wh, &r).await;
    }
    done.store(true, Ordering::Release);
    let (reads, seen) = poller.join().unwrap();
    let full = std::fs::read(&target).unwrap();
    assert!(full.len() > 2_000_000, "the export is large: {} bytes", full.len());
    let complete = (full.len(), Sha256::digest(&full).to_vec());
    assert!(reads > 0, "the poller read the file at least once");
    assert!(seen.iter().all(|s| *s == complete), "a reader saw {} versions of the file", seen.len());
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(target.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["big.csv"]);
}

/// `moto_server` (a local S3, from PyPI; `scripts/test` installs it) on a free port, killed on drop.
struct S3Server(std::process::Child, String);

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_s3() -> S3Server {
    let port = dealhouse_tests::http::free_port();
    let child = std::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start moto_server ({e}): run scripts/test, which installs it (pip install 'moto[server]')")
        });
    let addr = format!("127.0.0.1:{port}");
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(started.elapsed().as_secs() < 30, "moto_server did not listen on {addr} within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    S3Server(child, addr)
}

#[tokio::test]
async fn exports_go_to_s3_whole() {
    let s3 = start_s3();
    let addr = s3.1.clone();
    let created = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || dealhouse_tests::http::send(&addr, "PUT", "/reports-bucket", &[], b"").status
    })
    .await
    .unwrap();
    assert_eq!(created, 200);
    let (_dir, p, wh) = project("");
    let out = tempfile::tempdir().unwrap();
    let local = run(&p, &wh, &request("monthly-holding", "2025-01", Format::Parquet, out.path())).await;
    let options: std::collections::BTreeMap<String, String> = [
        ("aws_endpoint", format!("http://{addr}")),
        ("aws_region", "us-east-1".into()),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "dealhouse-test".into()),
        ("aws_secret_access_key", "dealhouse-test-secret".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut r = request("monthly-holding", "2025-01", Format::Parquet, out.path());
    r.destination = Destination::StoreFolder { url: "s3://reports-bucket/kpi/".parse().unwrap(), options };
    let written = run(&p, &wh, &r).await;
    assert_eq!(written, [PathBuf::from("s3://reports-bucket/kpi/monthly-holding/2025-01.parquet")]);
    let local = std::fs::read(&local[0]).unwrap();
    // The bucket lists the one object, at the size of the whole file.
    let listing = tokio::task::spawn_blocking(move || {
        dealhouse_tests::http::send(&addr, "GET", "/reports-bucket?list-type=2&prefix=kpi/", &[], b"").text()
    })
    .await
    .unwrap();
    assert_eq!(listing.matches("<Key>").count(), 1, "{listing}");
    assert!(listing.contains("<Key>kpi/monthly-holding/2025-01.parquet</Key>"), "{listing}");
    assert!(listing.contains(&format!("<Size>{}</Size>", local.len())), "{listing}");
    // And reads back byte for byte.
    let Destination::StoreFolder { options, .. } = &r.destination else { unreachable!() };
    let store = deltalake::logstore::store_for(&"s3://reports-bucket/".parse().unwrap(), options).unwrap();
    let object = store
        .get(&deltalake::logstore::object_store::path::Path::from("kpi/monthly-holding/2025-01.parquet"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(object.as_ref() == local.as_slice(), "the object is the whole file");
}
