//! A small hand-made company for the API tests: three branches in two holdings (msk and spb in
//! h1, nsk in h2), a manager, a client and a few deals each, canonical tables written with
//! `Warehouse::upsert`, then every built-in model built. Every id, name and text of a branch
//! contains its branch id, so a leak of another branch's row shows as the substring `spb`/`nsk`.
//!
//! The figures the tests expect are written here by hand:
//! deals msk 3 (100.00 won + 250.50 open + 40.00 lost = 390.50), spb 2 (1000.00 won + 2000.00
//! open = 3000.00), nsk 2 (7000.00 won + 300.00 lost = 7300.00); all 7 = 10690.50.

#![allow(dead_code)]

pub mod hostile;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use dealhouse_api::AppState;
use dealhouse_tests::project::{Org, ProjectDir};
use dealhouse_warehouse::schema::{
    Activity, Branch, CanonicalRow, Client, Deal, DealStageChange, Holding, IntakeRequest, Manager, Money, Plan,
    QuarantineRecord,
};
use dealhouse_warehouse::{CommitMeta, Project, Warehouse, models};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// Tokens of the fixture, by the role they are configured with.
pub const ADMIN: &str = "admin-secret-token";
pub const ANALYST: &str = "analyst-secret-token";
pub const MSK: &str = "msk-branch-token";
pub const H1: &str = "h1-holding-token";
pub const EXPIRED: &str = "expired-token";

pub const BRANCHES: [&str; 3] = ["msk", "spb", "nsk"];

fn sha(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The project's `dealhouse.toml` without `[server]`/`[tokens]`: the fixture warehouse and the
/// organisation of the module docs.
fn org() -> String {
    let mut org = Org::new().group("G").holding("h1", "North").holding("h2", "East");
    for (id, holding, tz) in
        [("msk", "h1", "Europe/Moscow"), ("spb", "h1", "Europe/Moscow"), ("nsk", "h2", "Asia/Novosibirsk")]
    {
        org = org.branch(id, holding, &format!("Branch {id}"), tz).city(&format!("City {id}"));
    }
    let location = serde_json::Value::String(warehouse_dir().display().to_string());
    format!("[warehouse]\nlocation = {location}\n\n{}", org.toml())
}

/// The warehouse every test reads (built once per test binary, in its own runtime).
pub fn warehouse_dir() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("warehouse");
        let build_path = path.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(build(&build_path));
        })
        .join()
        .expect("fixture builds");
        (tmp, path)
    });
    path
}

/// A project over the fixture warehouse with `extra` appended to its `dealhouse.toml`.
pub fn project(extra: &str) -> (ProjectDir, Arc<Project>, Warehouse) {
    let tmp = ProjectDir::new(&(org() + extra));
    let project = Project::load(tmp.path()).expect("fixture project loads");
    let wh = Warehouse::new(project.warehouse_url().expect("url"), HashMap::new());
    (tmp, Arc::new(project), wh)
}

/// `[server]` and `[tokens]` of the tests: one token per role, one expired.
pub fn tokens_toml(server: &str) -> String {
    format!(
        "\n[server]\n{server}\n\n\
         [tokens.ops]\nsha256 = \"{}\"\nrole = \"admin\"\n\n\
         [tokens.analyst]\nsha256 = \"{}\"\nrole = \"analyst\"\n\n\
         [tokens.moscow]\nsha256 = \"{}\"\nrole = \"branch\"\nbranches = [\"msk\"]\n\n\
         [tokens.north]\nsha256 = \"{}\"\nrole = \"holding\"\nholdings = [\"h1\"]\nexpires = 2999-01-01T00:00:00Z\n\n\
         [tokens.old]\nsha256 = \"{}\"\nrole = \"admin\"\nexpires = 2020-01-01\n",
        sha(ADMIN),
        sha(ANALYST),
        sha(MSK),
        sha(H1),
        sha(EXPIRED)
    )
}

/// A router over the fixture with the test tokens and `server` settings.
pub async fn app(server: &str) -> (ProjectDir, Router) {
    let (tmp, project, wh) = project(&tokens_toml(server));
    let state = AppState::new(project, wh).await.expect("state");
    (tmp, dealhouse_api::router(state))
}

/// One request: (status, headers, body bytes).
pub async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(Body::from(b)),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let response = router.clone().oneshot(req).await.expect("router answers");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body").to_vec();
    (status, headers, bytes)
}

/// `POST /api/v1/sql` as JSON: (status, parsed body).
pub async fn sql(router: &Router, token: Option<&str>, sql: &str) -> (StatusCode, Value) {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let (status, _, bytes) = call(router, "POST", "/api/v1/sql", token, Some(body)).await;
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, v)
}

/// The rows of a successful query.
pub async fn rows(router: &Router, token: &str, query: &str) -> Vec<Value> {
    let (status, v) = sql(router, Some(token), query).await;
    assert_eq!(status, StatusCode::OK, "{query}: {v}");
    v["rows"].as_array().cloned().unwrap_or_default()
}

/// The single value of a one-row, one-column query, as text.
pub async fn scalar(router: &Router, token: &str, query: &str) -> String {
    let rows = rows(router, token, query).await;
    assert_eq!(rows.len(), 1, "{query}: {rows:?}");
    let obj = rows[0].as_object().expect("row object");
    assert_eq!(obj.len(), 1, "{query}: {rows:?}");
    match obj.values().next() {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).single().expect("valid instant")
}

fn money(s: &str) -> Money {
    s.parse().expect("valid amount")
}

async fn upsert<R: CanonicalRow>(wh: &Warehouse, rows: &[R]) {
    let batch = R::to_batch(rows).expect("rows fit the schema");
    let meta = CommitMeta { operation: "sync".into(), source: "fixture".into(), cursor: None };
    wh.upsert(&R::table_def(), vec![batch], &meta).await.expect("upsert");
}

/// (branch, number, status, stage, amount)
const DEALS: [(&str, u32, &str, &str, &str); 7] = [
    ("msk", 1, "won", "won", "100.00"),
    ("msk", 2, "open", "proposal", "250.50"),
    ("msk", 3, "lost", "lost", "40.00"),
    ("spb", 1, "won", "won", "1000.00"),
    ("spb", 2, "open", "proposal", "2000.00"),
    ("nsk", 1, "won", "won", "7000.00"),
    ("nsk", 2, "lost", "lost", "300.00"),
];

async fn build(path: &Path) {
    std::fs::create_dir_all(path).expect("warehouse dir");
    let url = url::Url::from_directory_path(path).expect("dir url");
    let wh = Warehouse::new(url, HashMap::new());
    let cfg = |id: &str| ("config".to_string(), id.to_string());
    upsert(
        &wh,
        &[("h1", "North"), ("h2", "East")].map(|(id, name)| Holding {
            holding_id: id.into(),
            name: name.into(),
            source_system: cfg(id).0,
            source_id: cfg(id).1,
        }),
    )
    .await;
    let holding = |b: &str| if b == "nsk" { "h2" } else { "h1" };
    upsert(
        &wh,
        &BRANCHES.map(|b| Branch {
            branch_id: b.into(),
            holding_id: holding(b).into(),
            name: format!("Branch {b}"),
            city: format!("City {b}"),
            time_zone: if b == "nsk" { "Asia/Novosibirsk" } else { "Europe/Moscow" }.into(),
            crm_switch_date: None,
            source_system: "config".into(),
            source_id: b.into(),
        }),
    )
    .await;
    upsert(
        &wh,
        &BRANCHES.map(|b| Manager {
            manager_id: format!("crm:m-{b}"),
            branch_id: Some(b.into()),
            name: format!("Manager {b}"),
            active: true,
            source_system: "crm".into(),
            source_id: format!("m-{b}"),
        }),
    )
    .await;
    upsert(
        &wh,
        &BRANCHES.map(|b| Client {
            client_id: format!("crm:c-{b}"),
            name: format!("Client {b}"),
            inn: None,
            kind: Some("venue".into()),
            branch_id: Some(b.into()),
            created_at: Some(at(2024, 12, 1)),
            source_system: "crm".into(),
            source_id: format!("c-{b}"),
        }),
    )
    .await;
    let deals: Vec<Deal> = DEALS
        .iter()
        .map(|(b, n, status, stage, amount)| Deal {
            deal_id: format!("crm:d-{b}-{n}"),
            title: Some(format!("Deal {b} {n}")),
            client_id: Some(format!("crm:c-{b}")),
            manager_id: Some(format!("crm:m-{b}")),
            branch_id: Some((*b).into()),
            pipeline: "0".into(),
            stage: (*stage).into(),
            source_stage: stage.to_uppercase(),
            status: (*status).into(),
            lost_reason: (*status == "lost").then(|| format!("price {b}")),
            amount: Some(money(amount)),
            commission: Some(money("10.00")),
            created_at: at(2025, 1, 5),
            updated_at: at(2025, 2, 1),
            closed_at: (*status != "open").then(|| at(2025, 1, 20)),
            deleted: false,
            currency: Some("RUB".into()),
            source_system: "crm".into(),
            source_id: format!("d-{b}-{n}"),
        })
        .collect();
    upsert(&wh, &deals).await;
    let mut changes = vec![];
    for (i, (b, n, _, stage, _)) in DEALS.iter().enumerate() {
        let deal = format!("crm:d-{b}-{n}");
        changes.push(DealStageChange {
            deal_id: deal.clone(),
            from_stage: None,
            to_stage: "new".into(),
            changed_at: at(2025, 1, 5),
            changed_by: Some(format!("crm:m-{b}")),
            source_system: "crm".into(),
            source_id: format!("h{i}a"),
        });
        changes.push(DealStageChange {
            deal_id: deal,
            from_stage: Some("new".into()),
            to_stage: (*stage).into(),
            changed_at: at(2025, 1, 20),
            changed_by: Some(format!("crm:m-{b}")),
            source_system: "crm".into(),
            source_id: format!("h{i}b"),
        });
    }
    upsert(&wh, &changes).await;
    let activities: Vec<Activity> = DEALS
        .iter()
        .map(|(b, n, ..)| Activity {
            activity_id: format!("crm:a-{b}-{n}"),
            deal_id: Some(format!("crm:d-{b}-{n}")),
            client_id: Some(format!("crm:c-{b}")),
            manager_id: Some(format!("crm:m-{b}")),
            activity_type: "call".into(),
            direction: Some("outgoing".into()),
            at: at(2025, 1, 10),
            due_at: None,
            done: true,
            result: Some(format!("called {b}")),
            source_system: "crm".into(),
            source_id: format!("a-{b}-{n}"),
        })
        .collect();
    upsert(&wh, &activities).await;
    let month = NaiveDate::from_ymd_opt(2025, 1, 1).expect("month");
    let mut plans: Vec<Plan> = BRANCHES
        .iter()
        .map(|b| Plan {
            month,
            branch_id: Some((*b).into()),
            manager_id: None,
            metric: "won_amount".into(),
            target: money("5000.00"),
            source_system: "plans".into(),
            source_id: format!("p-{b}"),
        })
        .collect();
    plans.push(Plan {
        month,
        branch_id: None,
        manager_id: None,
        metric: "won_amount".into(),
        target: money("99999.00"),
        source_system: "plans".into(),
        source_id: "p-group".into(),
    });
    upsert(&wh, &plans).await;
    upsert(
        &wh,
        &BRANCHES.map(|b| IntakeRequest {
            request_id: format!("intake:r-{b}"),
            department: "marketing".into(),
            branch_id: Some(b.into()),
            client_id: Some(format!("crm:c-{b}")),
            client_inn: None,
            deal_id: None,
            subject: Some(format!("Poster {b}")),
            created_at: at(2025, 1, 7),
            status: "done".into(),
            resolved_at: None,
            legacy_ref: None,
            amount: None,
            source_system: "intake".into(),
            source_id: format!("r-{b}"),
        }),
    )
    .await;
    upsert(
        &wh,
        &[QuarantineRecord {
            entity: "deals".into(),
            location: "crm.deal.list page 1".into(),
            raw: "{\"ID\":\"9\",\"branch\":\"spb\",\"OPPORTUNITY\":\"abc\"}".into(),
            reason: "OPPORTUNITY `abc` is not a number (spb)".into(),
            quarantined_at: at(2025, 2, 1),
            record_id: None,
            mapping: None,
            source_system: "crm".into(),
            source_id: "q1".into(),
        }],
    )
    .await;
    let all = models::load_models(None).expect("built-in models parse");
    let runs = models::run(&wh, &all, None, |_| {}).await.expect("build runs");
    let failed: Vec<String> =
        runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.name))).collect();
    assert!(failed.is_empty(), "models failed on the fixture:\n{}", failed.join("\n"));
}
