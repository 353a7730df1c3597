//! amoCRM connector tests: real HTTP against the amoCRM simulator, syncs into a temporary
//! warehouse. Expected values come from the test data's own formulas (worked out by hand in the
//! comments), never from the connector's output.

pub(super) mod replay;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use dealhouse_warehouse::datafusion::arrow::array::Array;
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, ProjectConfig, Warehouse};
use serde_json::{Value, json};

use crate::quarantine::limit::QuarantineLimit;
use crate::simulators::amocrm::{AmoCrmSimulator, AmoCrmSimulatorData, FailurePlan};
use crate::sync::{LogProgress, SyncOptions, SyncReport, sync_project};

/// 2023-11-14T22:13:20Z.
pub(super) const BASE: i64 = 1_700_000_000;
const P1: i64 = 1001;
const P2: i64 = 2002;
pub(super) const TOKEN: &str = "amo-test-token-5f3c9e";
pub(super) const COMPANIES: i64 = 50;

/// Status ids of a pipeline in funnel order; index 3 is won (142), 4 lost (143).
fn statuses(pipeline: i64) -> [i64; 5] {
    if pipeline == P1 { [10101, 10102, 10103, 142, 143] } else { [20201, 20202, 20203, 142, 143] }
}

fn pipeline_of(i: i64) -> i64 {
    if i % 2 == 1 { P1 } else { P2 }
}

/// Index of lead `i`'s current status. Over leads 1..=600 each index occurs 120 times: i/2
/// takes 0 and 300 once and every value in 1..=299 twice; 0 and 300 are both index 0, and
/// 1..=299 holds 59 multiples of 5 and 60 of each other residue.
fn status_index(i: i64) -> usize {
    ((i / 2) % 5) as usize
}

/// The status indexes lead `i` went through: straight up the funnel, or lost after the second.
fn path(i: i64) -> Vec<usize> {
    match status_index(i) {
        4 => vec![0, 1, 4],
        k => (0..=k).collect(),
    }
}

pub(super) fn updated(i: i64) -> i64 {
    BASE + i * 10
}

pub(super) fn created(i: i64) -> i64 {
    BASE + i * 60 - 86_400
}

pub(super) fn user_of(i: i64) -> i64 {
    (i % 4) + 1
}

fn lead_record(i: i64) -> Value {
    let p = pipeline_of(i);
    let k = status_index(i);
    json!({
        "id": i, "name": format!("Сделка {i}"), "price": 1000 + i, "responsible_user_id": user_of(i),
        "group_id": 0, "status_id": statuses(p)[k], "pipeline_id": p,
        "loss_reason_id": if k == 4 { json!(7) } else { Value::Null },
        "created_by": user_of(i), "updated_by": user_of(i), "created_at": created(i), "updated_at": updated(i),
        "closed_at": if k >= 3 { json!(updated(i)) } else { Value::Null },
        "closest_task_at": null, "is_deleted": false, "custom_fields_values": null, "score": null, "account_id": 31_000_001,
        "labor_cost": null,
        "_embedded": {"tags": [], "companies": [{"id": (i % COMPANIES) + 1}], "contacts": [{"id": 5000 + i, "is_main": true}]},
    })
}

fn event_record(id: &str, lead: i64, from: (i64, i64), to: (i64, i64), at: i64, by: i64) -> Value {
    json!({
        "id": id, "type": "lead_status_changed", "entity_id": lead, "entity_type": "lead", "created_by": by,
        "created_at": at, "account_id": 31_000_001,
        "value_before": [{"lead_status": {"id": from.1, "pipeline_id": from.0}}],
        "value_after": [{"lead_status": {"id": to.1, "pipeline_id": to.0}}],
        "_embedded": {"entity": {"id": lead}},
    })
}

/// An account with `leads` leads, their status events, 4 users, 2 pipelines and `companies`.
pub(super) fn account(leads: i64, companies: i64) -> AmoCrmSimulatorData {
    let mut d = AmoCrmSimulatorData::default();
    for (id, name, active, group) in
        [(1, "Анна", true, 10), (2, "Борис", true, 10), (3, "Вера", true, 20), (4, "Глеб", false, 0)]
    {
        d.users.insert(
            id,
            json!({"id": id, "name": name, "email": format!("u{id}@example.com"), "lang": "ru",
                   "rights": {"is_active": active, "is_admin": false, "group_id": group, "role_id": null}}),
        );
    }
    for (pid, name) in [(P1, "Продажи"), (P2, "Партнёры")] {
        let names = ["Первичный контакт", "Переговоры", "Решение", "Успешно реализовано", "Закрыто и не реализовано"];
        let list: Vec<Value> = statuses(pid)
            .iter()
            .zip(names)
            .enumerate()
            .map(|(n, (sid, sname))| json!({"id": sid, "name": sname, "sort": (n + 1) * 10, "is_editable": (*sid < 142), "pipeline_id": pid, "color": "#fffeb2", "type": 0, "account_id": 31_000_001}))
            .collect();
        d.pipelines.insert(
            pid,
            json!({"id": pid, "name": name, "sort": 1, "is_main": pid == P1, "is_unsorted_on": false, "is_archive": false,
                   "account_id": 31_000_001, "_embedded": {"statuses": list}}),
        );
    }
    d.loss_reasons.insert(7, json!({"id": 7, "name": "Дорого", "sort": 1, "created_at": BASE, "updated_at": BASE}));
    for c in 1..=companies {
        d.companies.insert(
            c,
            json!({"id": c, "name": format!("ООО Компания {c}"), "responsible_user_id": user_of(c), "group_id": 0,
                   "created_by": 1, "updated_by": 1, "created_at": BASE - 100_000 + c, "updated_at": BASE - 50_000 + c,
                   "closest_task_at": null, "is_deleted": false, "account_id": 31_000_001,
                   "custom_fields_values": [{"field_id": 77, "field_name": "ИНН", "field_code": null, "field_type": "text",
                                             "values": [{"value": format!("77{c:08}")}]}],
                   "_embedded": {"tags": []}}),
        );
    }
    for i in 1..=leads {
        d.leads.insert(i, lead_record(i));
        let p = pipeline_of(i);
        let steps = path(i);
        for j in 1..steps.len() {
            let to = statuses(p)[steps[j]];
            // Moves to "won" are made by a robot (created_by 0).
            let by = if to == 142 { 0 } else { user_of(i) };
            let id = format!("01ev{i:05}{j}");
            d.events.insert(
                id.clone(),
                event_record(&id, i, (p, statuses(p)[steps[j - 1]]), (p, to), created(i) + j as i64 * 3600, by),
            );
        }
    }
    d
}

/// A project with one amoCRM source `amo` reading `base_url` (or `simulate_from = "account"`
/// when None), the token in `amo.token`. `extra` goes into `[sources.amo]`, `tail` at the end.
pub(super) fn project(dir: &Path, base_url: Option<&str>, token: &str, extra: &str, tail: &str) -> Arc<Project> {
    std::fs::write(dir.join("amo.token"), format!("{token}\n")).unwrap();
    let origin = match base_url {
        Some(url) => format!("base_url = \"{url}\"\ntoken_file = \"amo.token\""),
        None => "simulate_from = \"account\"".to_string(),
    };
    let text = format!(
        r#"
[warehouse]
location = "wh"

[[organisation.holdings]]
id = "h"
name = "Holding"

[[organisation.branches]]
id = "msk"
holding = "h"
name = "Moscow"
city = "Moscow"
time_zone = "Europe/Moscow"
codes = {{ amo = "10" }}

[[organisation.branches]]
id = "spb"
holding = "h"
name = "Saint Petersburg"
city = "Saint Petersburg"
time_zone = "Europe/Moscow"
codes = {{ amo = "20" }}

[sources.amo]
kind = "amocrm"
{origin}
commission_rate = "0.1"
inn_field_id = 77
{extra}

[sources.amo.stages.1001]
10101 = "new"
10102 = "contact"
10103 = "proposal"

[sources.amo.stages.2002]
20201 = "new"
20202 = "negotiation"
20203 = "contract"
{tail}
"#
    );
    let file = dir.join("dealhouse.toml");
    std::fs::write(&file, &text).unwrap();
    let config = ProjectConfig::parse(&text, &file).unwrap();
    Arc::new(Project { dir: dir.to_path_buf(), config })
}

pub(super) fn warehouse(project: &Project) -> Warehouse {
    Warehouse::new(project.warehouse_url().unwrap(), HashMap::new())
}

pub(super) async fn sync(project: &Arc<Project>, wh: &Warehouse) -> SyncReport {
    // No quarantine limit: the recorded portals quarantine on purpose; the limit has its own tests.
    let options = SyncOptions { max_quarantined: Some(QuarantineLimit::Unlimited), ..Default::default() };
    sync_project(project.clone(), wh, &options, &LogProgress).await.unwrap()
}

pub(super) fn amo_error(report: &SyncReport) -> Option<String> {
    report.sources.iter().find(|s| s.name == "amo").and_then(|s| s.error.clone())
}

/// (read, inserted, updated) of one table in a report.
pub(super) fn counts(report: &SyncReport, table: &str) -> (u64, u64, u64) {
    let t = report
        .sources
        .iter()
        .find(|s| s.name == "amo")
        .and_then(|s| s.tables.iter().find(|t| t.table == table))
        .unwrap_or_else(|| panic!("no {table} in {report:?}"));
    (t.read, t.inserted, t.updated)
}

pub(super) async fn query(wh: &Warehouse, sql: &str) -> Vec<Vec<String>> {
    let session = QuerySession::open(wh).await.unwrap();
    let mut out = vec![];
    for b in session.query(sql).await.unwrap() {
        for row in 0..b.num_rows() {
            out.push(
                (0..b.num_columns())
                    .map(|c| {
                        let col = b.column(c);
                        if col.is_null(row) { "NULL".to_string() } else { array_value_to_string(col, row).unwrap() }
                    })
                    .collect(),
            );
        }
    }
    out
}

pub(super) async fn one(wh: &Warehouse, sql: &str) -> String {
    query(wh, sql).await.remove(0).remove(0)
}

pub(super) fn branch_of_user(u: i64) -> &'static str {
    match u {
        1 | 2 => "msk",
        3 => "spb",
        _ => "NULL",
    }
}

/// Kopecks as the warehouse prints a Decimal(18,2).
fn rub(kopecks: i64) -> String {
    format!("{}.{:02}", kopecks / 100, kopecks % 100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_full_sync_maps_leads_stages_events_and_users() {
    let sim = AmoCrmSimulator::start(account(600, COMPANIES), TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);

    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    // 600 leads in pages of 250: 250 + 250 + 100, the last without `_links.next`.
    assert_eq!(sim.served("/api/v4/leads"), 3);
    // 120 leads at each status index; their moves: 0, 1, 2, 3 and 2 (lost after the second)
    // = 120 * 8 = 960 events, 10 pages of 100.
    assert_eq!(sim.served("/api/v4/events"), 10);
    let first = &sim.queries("/api/v4/leads")[0];
    for part in ["with=contacts", "limit=250", "order%5Bid%5D=asc", "page=1"] {
        assert!(first.contains(part), "{first}");
    }
    assert!(!first.contains("filter"), "a first sync reads everything: {first}");

    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "600");
    assert_eq!(one(&wh, "SELECT count(*) FROM deal_stage_changes").await, "960");
    assert_eq!(one(&wh, "SELECT count(*) FROM clients").await, COMPANIES.to_string());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
    assert_eq!(
        query(&wh, "SELECT status, count(*) FROM deals GROUP BY status ORDER BY status").await,
        [["lost", "120"], ["open", "360"], ["won", "120"]]
    );
    // Won and lost come from 142 / 143 in both pipelines: 60 of each in each (status index 3 and
    // 4 fall on odd and even leads alike).
    assert_eq!(
        query(&wh, "SELECT pipeline, stage, count(*) FROM deals WHERE status <> 'open' GROUP BY 1, 2 ORDER BY 1, 2")
            .await,
        [["1001", "lost", "60"], ["1001", "won", "60"], ["2002", "lost", "60"], ["2002", "won", "60"]]
    );
    assert_eq!(
        query(&wh, "SELECT source_id, name, branch_id, active FROM managers ORDER BY source_id").await,
        [
            ["1", "Анна", "msk", "true"],
            ["2", "Борис", "msk", "true"],
            ["3", "Вера", "spb", "true"],
            ["4", "Глеб", "NULL", "false"]
        ]
    );
    assert_eq!(
        query(&wh, "SELECT client_id, inn, branch_id FROM clients WHERE source_id = '7'").await,
        [["amo:7", "7700000007", "NULL"]],
        "company 7's responsible user is 4, who has no group"
    );

    // Lead 7: pipeline 1001, status index 3 (won). Lead 8: 2002, index 4 (lost). Lead 5: 1001,
    // index 2 (proposal). Lead 10: 2002, index 0 (new).
    for (i, stage, source_stage, status) in [
        (7, "won", "1001:142", "won"),
        (8, "lost", "2002:143", "lost"),
        (5, "proposal", "1001:10103", "open"),
        (10, "new", "2002:20201", "open"),
    ] {
        let row = query(
            &wh,
            &format!(
                "SELECT deal_id, title, stage, source_stage, status, CAST(amount AS VARCHAR), CAST(commission AS VARCHAR), \
                 client_id, manager_id, branch_id, to_unixtime(created_at), to_unixtime(updated_at), \
                 to_unixtime(closed_at), lost_reason, deleted FROM deals WHERE source_id = '{i}'"
            ),
        )
        .await;
        let closed = if status == "open" { "NULL".to_string() } else { updated(i).to_string() };
        let expected = [
            format!("amo:{i}"),
            format!("Сделка {i}"),
            stage.to_string(),
            source_stage.to_string(),
            status.to_string(),
            // price 1000 + i rubles; commission 10% of it.
            rub((1000 + i) * 100),
            rub((1000 + i) * 10),
            format!("amo:{}", (i % COMPANIES) + 1),
            format!("amo:{}", user_of(i)),
            branch_of_user(user_of(i)).to_string(),
            created(i).to_string(),
            updated(i).to_string(),
            closed,
            if status == "lost" { "Дорого".into() } else { "NULL".into() },
            "false".to_string(),
        ];
        assert_eq!(row, [expected.to_vec()], "lead {i}");
    }
    // Lead 7 (user 4): new -> contact -> proposal by its manager, then won by a robot.
    assert_eq!(
        query(&wh, "SELECT from_stage, to_stage, changed_by, to_unixtime(changed_at) FROM deal_stage_changes WHERE deal_id = 'amo:7' ORDER BY changed_at").await,
        [
            ["new".to_string(), "contact".into(), "amo:4".into(), (created(7) + 3600).to_string()],
            ["contact".into(), "proposal".into(), "amo:4".into(), (created(7) + 7200).to_string()],
            ["proposal".into(), "won".into(), "NULL".into(), (created(7) + 10800).to_string()],
        ]
    );
    // Lead 8 (pipeline 2002, user 1): new -> negotiation -> lost.
    assert_eq!(
        query(&wh, "SELECT from_stage, to_stage, changed_by FROM deal_stage_changes WHERE deal_id = 'amo:8' ORDER BY changed_at").await,
        [["new", "negotiation", "amo:1"], ["negotiation", "lost", "amo:1"]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_resync_rereads_only_the_lookback_and_replaces_changed_leads() {
    let sim = AmoCrmSimulator::start(account(600, COMPANIES), TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "lookback_seconds = 300", "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());

    // Nothing changed upstream. The newest lead (600) was updated at BASE + 6000, so the re-read
    // starts at BASE + 5700 and finds leads 570..=600: 31 leads, one page.
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(counts(&report, "deals"), (31, 0, 0));
    assert_eq!(counts(&report, "managers"), (4, 0, 0));
    assert_eq!(sim.served("/api/v4/leads"), 1);
    let q = sim.queries("/api/v4/leads");
    assert!(q[0].contains(&format!("filter%5Bupdated_at%5D%5Bfrom%5D={}", BASE + 5700)), "{q:?}");
    // Companies: the newest was updated at BASE - 50000 + 50; all 50 fall outside its window.
    assert!(sim.queries("/api/v4/companies")[0].contains(&format!("from%5D={}", BASE - 50_000 + 50 - 300)));
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "600");
    assert_eq!(one(&wh, "SELECT count(*) FROM deal_stage_changes").await, "960");

    // Lead 10 (pipeline 2002, "new") moves to "contract" with a new price.
    sim.edit(|d| {
        assert!(d.update_lead(10, BASE + 7000, |l| {
            l.insert("status_id".into(), json!(20203));
            l.insert("price".into(), json!(5000));
        }));
        let e = event_record("01evnew", 10, (P2, 20201), (P2, 20203), BASE + 7000, 2);
        d.events.insert("01evnew".into(), e);
    });
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    // Still from BASE + 5700 (the last read saw nothing newer): leads 570..=600 and lead 10.
    assert_eq!(counts(&report, "deals"), (32, 0, 1));
    assert_eq!(sim.served("/api/v4/leads"), 1);
    assert_eq!(query(&wh, "SELECT count(*), count(DISTINCT source_id) FROM deals").await, [["600", "600"]]);
    assert_eq!(
        query(&wh, "SELECT stage, CAST(amount AS VARCHAR), CAST(commission AS VARCHAR), to_unixtime(updated_at) FROM deals WHERE source_id = '10'").await,
        [["contract".to_string(), "5000.00".into(), "500.00".into(), (BASE + 7000).to_string()]]
    );
    assert_eq!(
        query(&wh, "SELECT from_stage, to_stage, changed_by FROM deal_stage_changes WHERE source_id = '01evnew'").await,
        [["new", "contract", "amo:2"]]
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM deal_stage_changes").await, "961");
    // The cursor moved to the change: a fourth sync reads from BASE + 6700.
    sim.reset_counts();
    assert!(sync(&project, &wh).await.ok());
    assert!(sim.queries("/api/v4/leads")[0].contains(&format!("from%5D={}", BASE + 6700)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_empty_lists_are_204_and_leave_the_cursor_alone() {
    // No companies and no events: both lists answer 204 on their first page.
    let mut data = account(5, 0);
    data.events.clear();
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!((sim.requests("/api/v4/companies"), sim.served("/api/v4/companies")), (1, 1));
    assert_eq!(counts(&report, "clients"), (0, 0, 0));
    assert_eq!(counts(&report, "deal_stage_changes"), (0, 0, 0));
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "5");
    assert_eq!(wh.last_cursor("clients", "amo").await.unwrap(), None);
    assert_eq!(wh.last_cursor("deals", "amo").await.unwrap().as_deref(), Some("2023-11-14T22:14:10Z"), "BASE + 50");

    // Companies appear later: with no cursor stored, the next sync reads them all.
    sim.edit(|d| {
        let full = account(0, 3);
        d.companies = full.companies;
    });
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(counts(&report, "clients"), (3, 3, 0));
    assert!(!sim.queries("/api/v4/companies")[1].contains("filter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_burst_of_429_is_retried_then_succeeds() {
    let sim = AmoCrmSimulator::start(account(300, COMPANIES), TOKEN).await.unwrap();
    // The limiter off, so every 429 here is an injected one.
    sim.set_rate_limit(false);
    sim.fail(FailurePlan { path: "/api/v4/leads".into(), status: 429, pass: 0, times: Some(3), retry_after: None });
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "max_retry_seconds = 30", "");
    let wh = warehouse(&project);
    let started = Instant::now();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "300");
    // Two pages served; three 429s before the first (the limiter may add its own).
    assert_eq!(sim.served("/api/v4/leads"), 2);
    assert!(sim.requests("/api/v4/leads") >= 5, "{}", sim.requests("/api/v4/leads"));
    // Backoff 0.25-0.5 s, 0.5-1 s, 1-2 s: well under the budget.
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_permanent_429_gives_up_in_time_and_keeps_committed_rows() {
    let sim = AmoCrmSimulator::start(account(600, COMPANIES), TOKEN).await.unwrap();
    sim.set_rate_limit(false);
    // The first page of leads is served, then every lead request is throttled.
    sim.fail(FailurePlan { path: "/api/v4/leads".into(), status: 429, pass: 1, times: None, retry_after: None });
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "max_retry_seconds = 2\nchunk_rows = 250", "");
    let wh = warehouse(&project);
    let started = Instant::now();
    let report = sync(&project, &wh).await;
    let elapsed = started.elapsed();
    let error = amo_error(&report).expect("the sync must fail");
    for part in ["gave up", "429", "max_retry_seconds = 2", "/api/v4/leads?", "page=2"] {
        assert!(error.contains(part), "`{part}` missing in: {error}");
    }
    assert!(elapsed.as_secs_f64() < 8.0, "took {elapsed:?}");
    assert!(sim.requests("/api/v4/leads") >= 3, "it retried");
    // The first chunk (page 1: leads 1..=250) was committed before the failure; earlier streams too.
    assert_eq!(
        query(&wh, "SELECT count(*), min(CAST(source_id AS INT)), max(CAST(source_id AS INT)) FROM deals").await,
        [["250", "1", "250"]]
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM managers").await, "4");
    assert_eq!(one(&wh, "SELECT count(*) FROM clients").await, COMPANIES.to_string());
    assert_eq!(wh.last_cursor("deals", "amo").await.unwrap(), None, "no cursor before the read completes");

    sim.clear_failures();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(counts(&report, "deals"), (600, 350, 0));
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "600");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_bad_records_go_to_quarantine_with_their_reason() {
    let mut data = account(40, COMPANIES);
    data.leads.get_mut(&7).unwrap()["status_id"] = json!(99999);
    data.leads.get_mut(&8).unwrap()["price"] = json!(-5);
    let sim = AmoCrmSimulator::start(data, TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "38");
    let q = query(&wh, "SELECT entity, source_id, location, reason, raw FROM quarantine ORDER BY source_id").await;
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!((q[0][0].as_str(), q[0][1].as_str()), ("deals", "/api/v4/leads:id=7"));
    assert!(q[0][2].contains("/api/v4/leads page 1") && q[0][2].ends_with("id=7"), "{}", q[0][2]);
    assert!(
        q[0][3].contains("status 99999 of pipeline 1001") && q[0][3].contains("[sources.amo.stages.1001]"),
        "{}",
        q[0][3]
    );
    assert!(q[0][4].contains("\"status_id\":99999"), "{}", q[0][4]);
    assert_eq!(q[1][1], "/api/v4/leads:id=8");
    assert!(q[1][3].contains("price -5 is negative"), "{}", q[1][3]);
    // A second sync re-reads them (look-back) without adding quarantine rows.
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "2");
}

#[tokio::test]
async fn amocrm_wrong_token_is_a_clear_401() {
    let sim = AmoCrmSimulator::start(account(3, 1), TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), "stale-token-0000", "", "");
    let report = sync(&project, &warehouse(&project)).await;
    let error = amo_error(&report).expect("the sync must fail");
    assert!(error.contains(&format!("token rejected by {}", sim.base_url())), "{error}");
    assert!(error.contains("regenerate the long-lived token") && error.contains("amo.token"), "{error}");
    assert!(error.contains("401"), "{error}");
    assert!(!error.contains("stale-token-0000") && !error.contains(TOKEN), "the token leaked: {error}");
    assert_eq!(sim.served("/api/v4/users"), 0);
}

#[tokio::test]
async fn amocrm_check_refuses_stages_of_unknown_pipelines_and_statuses() {
    let sim = AmoCrmSimulator::start(account(3, 1), TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unknown_pipeline =
        project(dir.path(), Some(&sim.base_url()), TOKEN, "", "\n[sources.amo.stages.3003]\n1 = \"new\"\n");
    let error = amo_error(&sync(&unknown_pipeline, &warehouse(&unknown_pipeline)).await).expect("the sync must fail");
    assert!(error.contains("no pipeline 3003") && error.contains("1001 \"Продажи\""), "{error}");
    // The tail lands in pipeline 2002's table.
    let unknown_status = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "10104 = \"contract\"\n");
    let error = amo_error(&sync(&unknown_status, &warehouse(&unknown_status)).await).expect("the sync must fail");
    assert!(error.contains("has no status 10104") && error.contains("20203 \"Решение\""), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_simulate_from_serves_a_recorded_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("account");
    std::fs::create_dir(&folder).unwrap();
    let data = account(30, 5);
    let lines = |records: Vec<&Value>| records.iter().map(|r| format!("{r}\n")).collect::<String>();
    std::fs::write(folder.join("leads.jsonl"), lines(data.leads.values().collect())).unwrap();
    std::fs::write(folder.join("events.jsonl"), lines(data.events.values().collect())).unwrap();
    std::fs::write(folder.join("users.jsonl"), lines(data.users.values().collect())).unwrap();
    std::fs::write(folder.join("pipelines.jsonl"), lines(data.pipelines.values().collect())).unwrap();
    std::fs::write(folder.join("companies.jsonl"), lines(data.companies.values().collect())).unwrap();
    let project = project(dir.path(), None, TOKEN, "", "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "30");
    assert_eq!(one(&wh, "SELECT count(*) FROM clients").await, "5");
    // No loss_reasons.jsonl: lost deals keep the reason id. Lead 8 is lost.
    assert_eq!(one(&wh, "SELECT lost_reason FROM deals WHERE source_id = '8'").await, "loss reason 7");

    std::fs::write(folder.join("leads.jsonl"), "{\"id\":1}\nnot json\n").unwrap();
    let e = AmoCrmSimulatorData::load(&folder).unwrap_err().to_string();
    assert!(e.contains("leads.jsonl") && e.contains("line 2"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amocrm_reconcile_marks_leads_deleted_upstream() {
    let sim = AmoCrmSimulator::start(account(600, COMPANIES), TOKEN).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.base_url()), TOKEN, "", "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    // Deleted leads leave amoCRM's plain list (they only show with `with=only_deleted`).
    sim.edit(|d| {
        for id in [5, 300] {
            assert!(d.update_lead(id, BASE + 10_000, |l| {
                l.insert("is_deleted".into(), json!(true));
            }));
        }
    });
    sim.reset_counts();
    let reconcile = SyncOptions { reconcile: true, ..Default::default() };
    let report = sync_project(project.clone(), &wh, &reconcile, &LogProgress).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let deals =
        report.sources.iter().find(|s| s.name == "amo").and_then(|s| s.tables.iter().find(|t| t.table == "deals"));
    assert_eq!(deals.map(|t| t.deleted), Some(2), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "600");
    assert_eq!(
        query(&wh, "SELECT source_id FROM deals WHERE deleted ORDER BY CAST(source_id AS INT)").await,
        [["5"], ["300"]]
    );
    // The id listing pages through the 598 live leads: 3 pages of 250, after the cursor read.
    assert!(sim.served("/api/v4/leads") >= 3, "{}", sim.served("/api/v4/leads"));
}
