//! Delivery and alerts with real components: a real SMTP server (Python's aiosmtpd from PyPI,
//! STARTTLS with a certificate made by Debian's `openssl` at test time) receives the e-mail and
//! the test opens its XLSX attachment with calamine; a local HTTP receiver (axum) checks each
//! webhook's body and HMAC signature and fails the first calls with 503; alerts are evaluated on
//! the fixture warehouse (tests/common) and listed through `GET /api/v1/alerts` with a branch
//! token.
//!
//! Tests may not set environment variables (`unsafe_code` is forbidden, and `set_var` is unsafe),
//! so secrets are read from `PATH`, which every environment has.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use calamine::{Data, Reader, Xlsx};
use chrono::Utc;
use common::{ADMIN, MSK, call, project, tokens_toml};
use dealhouse_api::AppState;
use dealhouse_api::alerts::evaluate_at;
use dealhouse_api::delivery::{Delivery, DeliveryFile, deliver};
use dealhouse_api::reports::{
    CsvOptions, Destination, ExportRequest, Filters, Format, Language, NoProgress, Period, export,
};
use dealhouse_warehouse::datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{CommitMeta, Warehouse};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The secret every test destination names (see the module docs).
const SECRET_ENV: &str = "PATH";

fn secret() -> Vec<u8> {
    std::env::var(SECRET_ENV).expect("PATH is set").into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The SMTP server

/// A CA and a server certificate for 127.0.0.1 signed by it (rustls refuses a self-signed CA
/// certificate used as the server's own), made with `openssl`.
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}): run scripts/test, which installs it (apt-get install openssl)")
        });
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=dealhouse test CA"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "key.pem", "-out", "req.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"))
}

/// aiosmtpd with STARTTLS required, storing messages through `tests/smtp/capture.py`; killed on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// STARTTLS required with this certificate and key.
fn starttls(cert: &Path, key: &Path) -> Vec<std::ffi::OsString> {
    vec!["--tlscert".into(), cert.into(), "--tlskey".into(), key.into()]
}

/// `tls`: aiosmtpd's TLS arguments (none: a plain relay); messages go to `dir/name`.
fn start_smtp(dir: &Path, name: &str, tls: &[std::ffi::OsString]) -> SmtpServer {
    let port = dealhouse_tests::http::free_port();
    let out = dir.join(name);
    let handlers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp");
    let child = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(tls)
        .args(["-c", "capture.Capture"])
        .arg(&out)
        .env("PYTHONPATH", handlers)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start python3 -m aiosmtpd ({e}): run scripts/test (pip install aiosmtpd)"));
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "aiosmtpd did not listen on 127.0.0.1:{port} within 20 s; is it installed? (scripts/test: pip install aiosmtpd)"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    SmtpServer { child, port, out }
}

/// The summaries of the messages received, once `n` have arrived (in arrival order).
fn received(server: &SmtpServer, n: usize) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&server.out)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        // NNNN.json, not an attachment that is JSON itself.
        files.retain(|p| {
            p.extension().is_some_and(|e| e == "json")
                && p.file_stem().and_then(|s| s.to_str()).is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
        });
        if files.len() >= n {
            files.sort();
            return files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{} of {n} messages arrived", files.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn export_file(p: &dealhouse_warehouse::Project, wh: &Warehouse, format: Format, out: &Path) -> DeliveryFile {
    let request = ExportRequest {
        report: "stalled".into(),
        period: Some(Period::parse("2025-02-01").unwrap()),
        filters: Filters::default(),
        format,
        destination: Destination::Folder(out.to_path_buf()),
        per_branch: false,
        language: Language::Ru,
        csv: CsvOptions::default(),
    };
    let outcome = export(p, wh, &request, &NoProgress).await.expect("export");
    let location = outcome.files[0].location.clone();
    let bytes = std::fs::read(&location).unwrap();
    let name = Path::new(&location).strip_prefix(out).unwrap().display().to_string();
    DeliveryFile { name, location, bytes }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_with_the_report_attached_arrives_over_starttls() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(tmp.path());
    let smtp = start_smtp(tmp.path(), "mail", &starttls(&cert, &key));
    let server = format!("smtp://127.0.0.1:{}", smtp.port);
    let (_dir, p, wh) = project(&format!(
        "\n[destinations.heads]\nkind = \"email\"\nsmtp = \"{server}\"\nfrom = \"Отчёты <reports@agency.ru>\"\n\
         to = [\"head-{{branch}}@agency.ru\", \"director@agency.ru\"]\nca_file = {ca:?}\n\n\
         [destinations.untrusted]\nkind = \"email\"\nsmtp = \"{server}\"\nfrom = \"reports@agency.ru\"\n\
         to = [\"director@agency.ru\"]\n"
    ));
    let xlsx = export_file(&p, &wh, Format::Xlsx, tmp.path()).await;
    let csv = export_file(&p, &wh, Format::Csv, tmp.path()).await;
    let delivery = Delivery {
        subject: "Зависшие сделки 2025-02-01 — msk".into(),
        headline: vec![("Сделок".into(), "3".into()), ("Сумма, ₽".into(), "390,50".into())],
        files: vec![xlsx.clone(), csv.clone()],
        branch: Some("msk".into()),
        meta: Value::Null,
    };
    let outcomes = deliver(&p, &["heads".into(), "untrusted".into()], &delivery).await;

    // Without ca_file the test CA is not trusted: refused at once (a certificate does not get
    // trusted by retrying), while the other destination's two recipients got theirs.
    let mut recipients: Vec<(&str, &str, bool)> =
        outcomes.iter().map(|o| (o.destination.as_str(), o.recipient.as_str(), o.delivered)).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        [
            ("heads", "director@agency.ru", true),
            ("heads", "head-msk@agency.ru", true),
            ("untrusted", "director@agency.ru", false)
        ],
        "{outcomes:?}"
    );
    let untrusted = outcomes.iter().find(|o| o.destination == "untrusted").unwrap();
    assert_eq!(untrusted.attempts, 1, "{untrusted:?}");
    assert!(untrusted.error.as_deref().unwrap_or_default().to_lowercase().contains("certificate"), "{untrusted:?}");

    let mail = received(&smtp, 2);
    let mut to: Vec<&str> = mail.iter().map(|m| m["rcpt_tos"][0].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["director@agency.ru", "head-msk@agency.ru"]);
    for m in &mail {
        assert_eq!(m["tls"], true, "{m}");
        assert_eq!(m["subject"], "Зависшие сделки 2025-02-01 — msk");
        assert!(m["from"].as_str().unwrap().contains("reports@agency.ru"), "{m}");
        let body = m["body"].as_str().unwrap().replace("\r\n", "\n");
        assert!(body.contains("  Сделок         3\n") && body.contains("  Сумма, ₽  390,50\n"), "{body}");
        let attachments = m["attachments"].as_array().unwrap();
        let kinds: Vec<(&str, &str)> = attachments
            .iter()
            .map(|a| (a["filename"].as_str().unwrap(), a["content_type"].as_str().unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("stalled-2025-02-01.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
                ("stalled-2025-02-01.csv", "text/csv"),
            ]
        );
        let got = std::fs::read(attachments[0]["path"].as_str().unwrap()).unwrap();
        assert_eq!(got, xlsx.bytes, "the attachment is the exported file, byte for byte");
        assert_eq!(std::fs::read(attachments[1]["path"].as_str().unwrap()).unwrap(), csv.bytes);

        // A spreadsheet user's reader sees numbers and dates, not text.
        let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(got)).unwrap();
        let range = book.worksheet_range("Зависшие сделки").unwrap();
        let header: Vec<String> = range.rows().next().unwrap().iter().map(|c| c.to_string()).collect();
        let col = |t: &str| header.iter().position(|h| h == t).unwrap_or_else(|| panic!("{t} in {header:?}"));
        let rows: Vec<&[Data]> = range.rows().skip(1).collect();
        assert!(rows.len() >= 2, "rows and a totals row: {}", rows.len());
        for cells in &rows[..rows.len() - 1] {
            assert!(matches!(cells[col("Сумма")], Data::Float(_)), "{:?}", cells[col("Сумма")]);
            assert!(
                matches!(cells[col("Последнее касание")], Data::DateTime(_)),
                "{:?}",
                cells[col("Последнее касание")]
            );
        }
    }

    // Every recipient's outcome is in the `deliveries` table.
    let session = QuerySession::open(&wh).await.unwrap();
    let batches = session
        .query(
            "select destination, recipient, cast(delivered as varchar) as ok, cast(attempts as varchar) as n from deliveries \
             where subject = 'Зависшие сделки 2025-02-01 — msk' order by destination, recipient",
        )
        .await
        .unwrap();
    let mut rows = vec![];
    dealhouse_api::write_json_rows(&mut rows, &batches).unwrap();
    assert_eq!(
        String::from_utf8(rows).unwrap(),
        r#"[{"destination":"heads","recipient":"director@agency.ru","ok":"true","n":"1"},{"destination":"heads","recipient":"head-msk@agency.ru","ok":"true","n":"1"},{"destination":"untrusted","recipient":"director@agency.ru","ok":"false","n":"1"}]"#
    );
}

// ---------------------------------------------------------------------------------------------
// The webhook receiver

/// A local HTTP receiver: answers 503 to the first `fail_first` calls, then checks the signature
/// (HMAC-SHA256 of the body, computed here with the hmac crate) and keeps the bodies it accepts.
#[derive(Clone)]
struct Receiver {
    calls: Arc<AtomicUsize>,
    fail_first: usize,
    bodies: Arc<Mutex<Vec<Value>>>,
    bad_signatures: Arc<AtomicUsize>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let n = r.calls.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= r.fail_first {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret()).unwrap();
    mac.update(&body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let signature = headers.get("x-dealhouse-signature").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let stamp = headers.get("x-dealhouse-timestamp").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<i64>().ok());
    let fresh = stamp.is_some_and(|t| (Utc::now().timestamp() - t).abs() < 300);
    if signature != expected || !fresh || headers.get("x-team").is_none() {
        r.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    r.bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
    StatusCode::OK
}

async fn start_receiver(fail_first: usize) -> (String, Receiver) {
    let r = Receiver {
        calls: Arc::new(AtomicUsize::new(0)),
        fail_first,
        bodies: Arc::new(Mutex::new(vec![])),
        bad_signatures: Arc::new(AtomicUsize::new(0)),
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), r)
}

fn hook_toml(name: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[destinations.{name}]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"{SECRET_ENV}\"\n\
         headers = {{ X-Team = \"sales\" }}\nmax_retry_seconds = 2\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_is_signed_and_retried_and_a_dead_one_blocks_nothing() {
    let (url, receiver) = start_receiver(2).await;
    let dead = format!("http://127.0.0.1:{}/hook?token=secret", dealhouse_tests::http::free_port());
    let (_dir, p, wh) = project(&format!(
        "{}{}{}",
        hook_toml("hook", &url, ""),
        hook_toml("dead", &dead, "max_attempts = 2"),
        "\n[destinations.unset]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"DEALHOUSE_TEST_UNSET_VARIABLE\"\n"
    ));
    let xlsx_bytes = b"not really a workbook".to_vec();
    let delivery = Delivery {
        subject: "Weekly branch report 2025-W02 — spb".into(),
        headline: vec![("Deals won".into(), "12".into()), ("Won amount".into(), "1000.00".into())],
        files: vec![DeliveryFile {
            name: "weekly-branch/spb/2025-W02.xlsx".into(),
            location: "/exports/weekly-branch/spb/2025-W02.xlsx".into(),
            bytes: xlsx_bytes.clone(),
        }],
        branch: Some("spb".into()),
        meta: serde_json::json!({ "schedule": "weekly", "run_id": 7 }),
    };
    let started = Instant::now();
    let outcomes = deliver(&p, &["dead".into(), "hook".into(), "unset".into()], &delivery).await;
    let by = |d: &str| outcomes.iter().find(|o| o.destination == d).unwrap_or_else(|| panic!("{d}: {outcomes:?}"));

    // Two 503s, then accepted: three attempts.
    let hook = by("hook");
    assert!(hook.delivered && hook.attempts == 3, "{hook:?}");
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 3);
    assert_eq!(receiver.bad_signatures.load(Ordering::SeqCst), 0);
    // Nothing listens on the dead one: retried to its limit, failed, and the recorded recipient
    // has no query string (it may hold a token).
    let dead = by("dead");
    assert!(!dead.delivered && dead.attempts == 2, "{dead:?}");
    assert!(dead.error.as_deref().unwrap_or_default().contains("request failed"), "{dead:?}");
    assert!(!dead.recipient.contains("secret"), "{dead:?}");
    // A missing variable is named, and nothing is sent.
    let unset = by("unset");
    assert_eq!(unset.attempts, 0);
    assert!(unset.error.as_deref().unwrap_or_default().contains("DEALHOUSE_TEST_UNSET_VARIABLE"), "{unset:?}");
    // Concurrent: the retries of one did not wait for the other's (max_retry_seconds = 2 each).
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());

    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let b = &bodies[0];
    assert_eq!(b["subject"], "Weekly branch report 2025-W02 — spb");
    assert_eq!(b["branch"], "spb");
    assert_eq!(b["headline"][1], serde_json::json!({ "label": "Won amount", "value": "1000.00" }));
    assert_eq!(b["meta"]["run_id"], 7);
    let file = &b["files"][0];
    assert_eq!(file["name"], "weekly-branch/spb/2025-W02.xlsx");
    assert_eq!(file["location"], "/exports/weekly-branch/spb/2025-W02.xlsx");
    assert_eq!(file["bytes"], xlsx_bytes.len());
    // sha256 of "not really a workbook", computed with sha256sum.
    assert_eq!(file["sha256"], "c19e4cd2b063476cd236c3cc85e1773b46ec49421927050acd8483bde9727f04");
    let _ = wh;
}

// ---------------------------------------------------------------------------------------------
// Alerts

/// The rows the alert rule reads: a table of the test's own, so the other tests' data is not
/// touched.
async fn write_stalled(wh: &Warehouse, rows: &[(&str, Option<&str>, i64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("manager_id", DataType::Utf8, false),
        Field::new("branch_id", DataType::Utf8, true),
        Field::new("stalled", DataType::Int64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let meta = CommitMeta { operation: "test".into(), source: "test".into(), cursor: None };
    wh.overwrite("alert_test_stalled", schema, vec![batch], &meta).await.unwrap();
}

async fn alerts_json(router: &axum::Router, token: &str, query: &str) -> Vec<Value> {
    let (status, _, body) = call(router, "GET", &format!("/api/v1/alerts{query}"), Some(token), None).await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{v}");
    v["rows"].as_array().unwrap().clone()
}

/// The answer has the documented shape: the OpenAPI schema of the route, every object closed
/// (an undocumented field fails).
async fn conforms_to_the_document(router: &axum::Router, answer: &Value) {
    fn closed(v: Value) -> Value {
        match v {
            Value::Object(map) => {
                let mut map: serde_json::Map<String, Value> = map.into_iter().map(|(k, v)| (k, closed(v))).collect();
                if map.get("properties").is_some_and(Value::is_object) {
                    map.insert("additionalProperties".into(), Value::Bool(false));
                }
                Value::Object(map)
            }
            Value::Array(items) => Value::Array(items.into_iter().map(closed).collect()),
            other => other,
        }
    }
    let (_, _, body) = call(router, "GET", "/api/v1/openapi.json", Some(ADMIN), None).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let schema = closed(
        doc["paths"]["/api/v1/alerts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone(),
    );
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(answer).map(|e| format!("{}: {e}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}\n{answer}");
}

fn keys(rows: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = rows.iter().map(|r| r["key"].as_str().unwrap().to_string()).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_is_delivered_once_resolved_when_gone_and_scoped_by_branch() {
    let (url, receiver) = start_receiver(0).await;
    let (dir, p, wh) = project(&format!(
        "{}{}{}\n[alerts.busy]\nsql = \"select manager_id, branch_id, stalled from alert_test_stalled where stalled > 5\"\n\
         key = [\"manager_id\"]\nmessage = \"{{manager_id}} has {{stalled}} stalled deals\"\ndeliver = [\"hook\"]\n\n\
         [alerts.behind]\nmeasure = \"plan_completion\"\nby = [\"branch\"]\n\
         filters = {{ metric = [\"won_amount\"], level = [\"branch\"] }}\nbelow = \"0.5\"\ndeliver = [\"hook\"]\n\n\
         [alerts.late]\nkind = \"freshness\"\nmax_age = \"1h\"\n\n\
         [alerts.tests]\nkind = \"data_tests\"\nmodels = [\"alert_test_model\"]\n",
        tokens_toml(""),
        hook_toml("hook", &url, ""),
        // The fixture's rows were committed by source `fixture` when it was built; `ghost` never synced.
        "\n[sources.fixture]\nkind = \"csv\"\n\n[sources.ghost]\nkind = \"csv\"\n"
    ));
    // A project model whose data test watches the test's table: it fails once a manager has more
    // than 10 stalled deals.
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(
        dir.path().join("models/alert_test_model.sql"),
        "-- A test-only model: its data test watches alert_test_stalled.\n-- column x: one\n\
         -- test: sql: select manager_id from alert_test_stalled where stalled > 10\nselect 1 as x\n",
    )
    .unwrap();
    write_stalled(
        &wh,
        &[("m-msk", Some("msk"), 7), ("m-spb", Some("spb"), 9), ("m-nsk", Some("nsk"), 2), ("m-all", None, 8)],
    )
    .await;
    let t0 = Utc::now();

    // Three managers over 5: three occurrences, each delivered; the source that never synced is
    // late (that alert delivers nowhere). The measure rule plans and runs through the semantic
    // layer; the fixture's plans are for January and its reference day is 2025-02-01, so no
    // branch is behind a plan this month. The data test passes.
    let run = evaluate_at(&p, &wh, &[], t0).await.unwrap();
    assert_eq!((run.evaluated, run.opened, run.resolved, run.still_open), (4, 4, 0, 0));
    assert_eq!(run.deliveries.len(), 3);
    assert!(run.deliveries.iter().all(|d| d.delivered), "{:?}", run.deliveries);
    let bodies = receiver.bodies.lock().unwrap().clone();
    let mut subjects: Vec<&str> = bodies.iter().map(|b| b["subject"].as_str().unwrap()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Alert busy: m-all has 8 stalled deals",
            "Alert busy: m-msk has 7 stalled deals",
            "Alert busy: m-spb has 9 stalled deals"
        ]
    );

    // The same data again: still open, not delivered again.
    let run = evaluate_at(&p, &wh, &["busy".into()], t0 + chrono::Duration::minutes(5)).await.unwrap();
    assert_eq!((run.opened, run.resolved, run.still_open, run.deliveries.len()), (0, 0, 3, 0));
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 3);

    // spb's manager is down to 3: resolved.
    write_stalled(&wh, &[("m-msk", Some("msk"), 7), ("m-spb", Some("spb"), 3), ("m-all", None, 8)]).await;
    let run = evaluate_at(&p, &wh, &[], t0 + chrono::Duration::minutes(10)).await.unwrap();
    assert_eq!((run.opened, run.resolved, run.still_open, run.deliveries.len()), (0, 1, 3, 0));

    let router = dealhouse_api::router(AppState::new(p.clone(), wh.clone()).await.unwrap());
    // The admin sees every open one, the global one (no branch) included; the msk token only msk's.
    assert_eq!(keys(&alerts_json(&router, ADMIN, "").await), ["manager_id=m-all", "manager_id=m-msk", "source=ghost"]);
    let msk = alerts_json(&router, MSK, "?state=all").await;
    assert_eq!(keys(&msk), ["manager_id=m-msk"]);
    assert_eq!(msk[0]["branch_id"], "msk");
    assert_eq!(msk[0]["message"], "m-msk has 7 stalled deals");
    assert!(msk[0]["delivered_at"].is_string() && msk[0]["resolved_at"].is_null(), "{}", msk[0]);
    let resolved = alerts_json(&router, ADMIN, "?state=resolved").await;
    assert_eq!(keys(&resolved), ["manager_id=m-spb"]);
    assert!(resolved[0]["resolved_at"].is_string(), "{}", resolved[0]);
    let (status, _, _) = call(&router, "GET", "/api/v1/alerts?state=closed", Some(ADMIN), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Back over 5 later: a new occurrence, delivered again; the resolved one stays as it was.
    // At 11 the data test fails too: an occurrence of `tests`.
    write_stalled(&wh, &[("m-msk", Some("msk"), 7), ("m-spb", Some("spb"), 11), ("m-all", None, 8)]).await;
    let run = evaluate_at(&p, &wh, &[], t0 + chrono::Duration::minutes(15)).await.unwrap();
    assert_eq!((run.opened, run.resolved, run.still_open, run.deliveries.len()), (2, 0, 3, 1));
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 4);
    let router = dealhouse_api::router(AppState::new(p.clone(), wh.clone()).await.unwrap());
    let all = alerts_json(&router, ADMIN, "?state=all").await;
    conforms_to_the_document(&router, &serde_json::json!({ "state": "all", "total": all.len(), "rows": all })).await;
    let spb: Vec<&Value> = all.iter().filter(|r| r["key"] == "manager_id=m-spb").collect();
    assert_eq!(spb.len(), 2, "{all:?}");
    assert_eq!(spb.iter().filter(|r| r["resolved_at"].is_null()).count(), 1);
    let test = all.iter().find(|r| r["alert"] == "tests").expect("the failing data test");
    assert!(test["key"].as_str().unwrap().starts_with("model=alert_test_model; test=sql:"), "{test}");
    assert!(test["values"].as_str().unwrap().contains("\"failing_rows\":1"), "{test}");

    // Three hours on, the fixture's sync is older than max_age = 1h too.
    let run = evaluate_at(&p, &wh, &["late".into()], t0 + chrono::Duration::hours(3)).await.unwrap();
    assert_eq!((run.opened, run.resolved, run.still_open), (1, 0, 1));

    // An unknown alert is refused by name.
    let e = evaluate_at(&p, &wh, &["nope".into()], t0).await.unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("busy"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_a_plain_loopback_relay_deliver_and_missing_credentials_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(tmp.path());
    let smtps = start_smtp(tmp.path(), "smtps", &["--smtpscert".into(), cert.into(), "--smtpskey".into(), key.into()]);
    let plain = start_smtp(tmp.path(), "plain", &[]);
    let (_dir, p, _wh) = project(&format!(
        "\n[destinations.smtps]\nkind = \"email\"\nsmtp = \"smtp://127.0.0.1:{}\"\nsecurity = \"tls\"\n\
         from = \"reports@agency.ru\"\nto = [\"accounting@agency.ru\"]\nca_file = {ca:?}\n\n\
         [destinations.relay]\nkind = \"email\"\nsmtp = \"smtp://127.0.0.1:{}\"\nsecurity = \"none\"\n\
         from = \"reports@agency.ru\"\nto = [\"head-{{branch}}@agency.ru\", \"director@agency.ru\"]\n\n\
         [destinations.login]\nkind = \"email\"\nsmtp = \"smtp://127.0.0.1:{}\"\nsecurity = \"none\"\n\
         from = \"reports@agency.ru\"\nto = [\"director@agency.ru\"]\n\
         username_env = \"DEALHOUSE_TEST_UNSET_USER\"\npassword_env = \"{SECRET_ENV}\"\n",
        smtps.port, plain.port, plain.port
    ));
    // No branch: the {branch} address gets nothing.
    let delivery = Delivery {
        subject: "Monthly holding report 2025-01".into(),
        headline: vec![],
        files: vec![DeliveryFile {
            name: "monthly-holding/2025-01.json".into(),
            location: "/x".into(),
            bytes: b"{}".to_vec(),
        }],
        branch: None,
        meta: Value::Null,
    };
    let outcomes = deliver(&p, &["smtps".into(), "relay".into(), "login".into()], &delivery).await;
    let mut got: Vec<(&str, &str, bool)> =
        outcomes.iter().map(|o| (o.destination.as_str(), o.recipient.as_str(), o.delivered)).collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("login", "director@agency.ru", false),
            ("relay", "director@agency.ru", true),
            ("smtps", "accounting@agency.ru", true)
        ],
        "{outcomes:?}"
    );
    let login = outcomes.iter().find(|o| o.destination == "login").unwrap();
    assert_eq!(login.attempts, 0);
    assert!(login.error.as_deref().unwrap_or_default().contains("DEALHOUSE_TEST_UNSET_USER"), "{login:?}");

    let over_tls = &received(&smtps, 1)[0];
    assert_eq!(over_tls["rcpt_tos"], serde_json::json!(["accounting@agency.ru"]));
    assert_eq!(over_tls["attachments"][0]["content_type"], "application/json");
    let relayed = &received(&plain, 1)[0];
    assert_eq!(relayed["rcpt_tos"], serde_json::json!(["director@agency.ru"]));
    assert_eq!(relayed["tls"], false);
    assert_eq!(
        relayed["body"].as_str().unwrap().replace("\r\n", "\n"),
        "Monthly holding report 2025-01\n\nAttached:\n  monthly-holding-2025-01.json (2 bytes)\n"
    );
}
