//! Bitrix24 connector tests: real HTTP against the Bitrix24 simulator, syncs into a temporary
//! warehouse. Expected values are computed from the test data's own formulas, not read back
//! from the connector.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use dealhouse_warehouse::datafusion::arrow::array::Array;
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, ProjectConfig, Warehouse};
use serde_json::{Value, json};

mod replay;

use super::api::{Bitrix24Api, ListSpec, Pager};
use crate::quarantine::limit::QuarantineLimit;
use crate::simulators::bitrix24::{Behaviour, Bitrix24Simulator, Bitrix24SimulatorData, Limiter};
use crate::sync::{LogProgress, SyncOptions, SyncReport, sync_project};

/// 2023-11-14T22:13:20Z.
const BASE: i64 = 1_700_000_000;
const STAGES: [&str; 7] = ["NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE", "WON", "LOSE"];
const CANONICAL: [&str; 7] = ["new", "contact", "proposal", "negotiation", "contract", "won", "lost"];
const COMPANIES: i64 = 50;

/// A time as the portal writes it: ISO 8601 in Moscow time.
fn msk(ts: i64) -> String {
    let t = DateTime::from_timestamp(ts, 0).unwrap().with_timezone(&FixedOffset::east_opt(3 * 3600).unwrap());
    t.to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn stage_index(deal: i64) -> usize {
    (deal % 7) as usize
}

/// The stages deal `i` went through, in order.
fn path(deal: i64) -> Vec<usize> {
    match stage_index(deal) {
        6 => vec![0, 1, 6],
        k => (0..=k).collect(),
    }
}

fn semantic(stage: usize) -> &'static str {
    match stage {
        5 => "S",
        6 => "F",
        _ => "P",
    }
}

fn deal_modified(i: i64) -> i64 {
    // Three deals share each second, so pages end inside runs of equal DATE_MODIFY.
    BASE + (i / 3) * 60
}

fn deal_created(i: i64) -> i64 {
    BASE + i * 60 - 86_400
}

fn deal_record(i: i64) -> Value {
    let k = stage_index(i);
    json!({
        "ID": i.to_string(),
        "TITLE": format!("Deal {i}"),
        "CATEGORY_ID": "0",
        "STAGE_ID": STAGES[k],
        "STAGE_SEMANTIC_ID": semantic(k),
        "OPPORTUNITY": format!("{}.{:02}", 1000 + i, i % 100),
        "CURRENCY_ID": "RUB",
        "COMPANY_ID": ((i % COMPANIES) + 1).to_string(),
        "ASSIGNED_BY_ID": ((i % 4) + 1).to_string(),
        "DATE_CREATE": msk(deal_created(i)),
        "DATE_MODIFY": msk(deal_modified(i)),
        "BEGINDATE": msk(deal_created(i)),
        "CLOSEDATE": msk(BASE + i * 60),
        "CLOSED": if k >= 5 { "Y" } else { "N" },
        "SOURCE_ID": "WEB",
        "UF_CRM_COMMISSION": if i % 2 == 0 { format!("{}.50", 100 + i) } else { String::new() },
        "UF_CRM_LOST_REASON": if k == 6 { "price" } else { "" },
    })
}

/// A portal with `deals` deals, their stage history and two activities each.
fn fixture(deals: i64) -> Bitrix24SimulatorData {
    let mut data = Bitrix24SimulatorData::new();
    let departments =
        [("1", "Company", "0"), ("10", "Moscow", "1"), ("11", "Moscow team 2", "10"), ("20", "Saint Petersburg", "1")];
    for (id, name, parent) in departments {
        data.upsert("department.get", json!({"ID": id, "NAME": name, "SORT": "500", "PARENT": parent, "UF_HEAD": "1"}))
            .unwrap();
    }
    let users = [(1, true, 10), (2, true, 11), (3, true, 20), (4, false, 99)];
    for (id, active, dept) in users {
        data.upsert(
            "user.get",
            json!({"ID": id.to_string(), "ACTIVE": active, "NAME": format!("Name{id}"), "LAST_NAME": format!("Last{id}"),
                   "EMAIL": format!("u{id}@example.com"), "WORK_POSITION": "manager", "UF_DEPARTMENT": [dept]}),
        )
        .unwrap();
    }
    for (n, stage) in STAGES.iter().enumerate() {
        data.upsert(
            "crm.status.list",
            json!({"ID": (n + 1).to_string(), "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": stage, "NAME": stage,
                   "SORT": ((n + 1) * 10).to_string(), "SEMANTICS": match semantic(n) { "P" => "", s => s }}),
        )
        .unwrap();
    }
    for c in 1..=COMPANIES {
        data.upsert(
            "crm.company.list",
            json!({"ID": c.to_string(), "TITLE": format!("Company {c}"), "COMPANY_TYPE": "CUSTOMER", "INDUSTRY": "",
                   "ASSIGNED_BY_ID": ((c % 4) + 1).to_string(), "DATE_CREATE": msk(BASE - 864_000 + c),
                   "DATE_MODIFY": msk(BASE - 864_000 + c * 10), "UF_CRM_INN": format!("77{c:08}"), "UF_CRM_KIND": "venue"}),
        )
        .unwrap();
    }
    let mut history = vec![];
    for i in 1..=deals {
        data.upsert("crm.deal.list", deal_record(i)).unwrap();
        for (step, stage) in path(i).into_iter().enumerate() {
            history.push((deal_created(i) + step as i64 * 3600, i, step, stage));
        }
        for (n, (type_id, provider)) in
            [(2, "CALL"), if i % 5 == 0 { (6, "PROPOSAL_SENT") } else { (1, "MEETING") }].into_iter().enumerate()
        {
            let id = i * 2 + n as i64;
            data.upsert(
                "crm.activity.list",
                json!({"ID": id.to_string(), "OWNER_TYPE_ID": "2", "OWNER_ID": i.to_string(), "TYPE_ID": type_id.to_string(),
                       "PROVIDER_ID": "CRM", "PROVIDER_TYPE_ID": provider, "SUBJECT": "s", "DIRECTION": "2",
                       "RESPONSIBLE_ID": ((i % 4) + 1).to_string(), "START_TIME": msk(BASE + id * 10),
                       "END_TIME": msk(BASE + id * 10 + 600), "DEADLINE": "", "COMPLETED": if n == 0 { "Y" } else { "N" },
                       "CREATED": msk(BASE + id * 10), "LAST_UPDATED": msk(BASE + id * 30)}),
            )
            .unwrap();
        }
    }
    // History IDs follow time across deals, as a live portal assigns them.
    history.sort();
    for (n, (at, deal, step, stage)) in history.into_iter().enumerate() {
        data.upsert(
            "crm.stagehistory.list",
            history_record(n as i64 + 1, deal, if step == 0 { 1 } else { 2 }, stage, at),
        )
        .unwrap();
    }
    data
}

fn history_record(id: i64, deal: i64, type_id: i64, stage: usize, at: i64) -> Value {
    json!({"ID": id.to_string(), "TYPE_ID": type_id.to_string(), "OWNER_ID": deal.to_string(), "CREATED_TIME": msk(at),
           "CATEGORY_ID": "0", "STAGE_SEMANTIC_ID": semantic(stage), "STAGE_ID": STAGES[stage]})
}

/// A project with one Bitrix24 source `crm`: pulling from `webhook` when given, else from the
/// recorded folder `portal/`.
fn project(dir: &Path, webhook: Option<&str>, extra: &str) -> Arc<Project> {
    let origin = match webhook {
        Some(url) => format!("webhook_url = \"{url}\""),
        None => "simulate_from = \"portal\"".to_string(),
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
codes = {{ crm = "10" }}

[[organisation.branches]]
id = "spb"
holding = "h"
name = "Saint Petersburg"
city = "Saint Petersburg"
time_zone = "Europe/Moscow"
codes = {{ crm = "20" }}

[sources.crm]
kind = "bitrix24"
{origin}
commission_rate = "0.1"
stages = {{ NEW = "new", PREPARATION = "contact", PREPAYMENT_INVOICE = "proposal", EXECUTING = "negotiation", FINAL_INVOICE = "contract" }}
{extra}
"#
    );
    let file = dir.join("dealhouse.toml");
    std::fs::write(&file, &text).unwrap();
    let config = ProjectConfig::parse(&text, &file).unwrap();
    Arc::new(Project { dir: dir.to_path_buf(), config })
}

fn warehouse(project: &Project) -> Warehouse {
    Warehouse::new(project.warehouse_url().unwrap(), HashMap::new())
}

async fn sync(project: &Arc<Project>, wh: &Warehouse) -> SyncReport {
    // No quarantine limit: the recorded portals quarantine on purpose; the limit has its own tests.
    let options = SyncOptions { max_quarantined: Some(QuarantineLimit::Unlimited), ..Default::default() };
    sync_project(project.clone(), wh, &options, &LogProgress).await.unwrap()
}

fn crm_error(report: &SyncReport) -> Option<String> {
    report.sources.iter().find(|s| s.name == "crm").and_then(|s| s.error.clone())
}

async fn query(wh: &Warehouse, sql: &str) -> Vec<Vec<String>> {
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

async fn one(wh: &Warehouse, sql: &str) -> String {
    query(wh, sql).await.remove(0).remove(0)
}

fn branch_of_deal(i: i64) -> &'static str {
    match (i % 4) + 1 {
        1 | 2 => "msk",
        3 => "spb",
        _ => "NULL",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_sync_pulls_all_then_only_changes() {
    let deals = 5000;
    let sim = Bitrix24Simulator::start(fixture(deals)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "");
    let wh = warehouse(&project);

    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    let history_rows: usize = (1..=deals).map(|i| path(i).len()).sum();
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, deals.to_string());
    assert_eq!(one(&wh, "SELECT count(*) FROM activities").await, (2 * deals).to_string());
    assert_eq!(one(&wh, "SELECT count(*) FROM deal_stage_changes").await, history_rows.to_string());
    assert_eq!(one(&wh, "SELECT count(*) FROM clients").await, COMPANIES.to_string());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
    assert_eq!(
        query(&wh, "SELECT source_id, branch_id, active FROM managers ORDER BY source_id").await,
        [["1", "msk", "true"], ["2", "msk", "true"], ["3", "spb", "true"], ["4", "NULL", "false"]]
    );

    // Deal 6 (stage LOSE) and deal 12 (FINAL_INVOICE) field by field.
    for i in [6i64, 12, 15] {
        let k = stage_index(i);
        let amount = format!("{}.{:02}", 1000 + i, i % 100);
        let commission = if i % 2 == 0 {
            format!("{}.50", 100 + i)
        } else {
            // 10% of the amount, to the kopeck.
            let cents = ((1000 + i) * 100 + i % 100) as f64 * 0.1;
            format!("{:.2}", cents.round() / 100.0)
        };
        let status = match k {
            5 => "won",
            6 => "lost",
            _ => "open",
        };
        let closed = if k >= 5 { (BASE + i * 60).to_string() } else { "NULL".into() };
        let row = query(
            &wh,
            &format!(
                "SELECT deal_id, stage, source_stage, status, CAST(amount AS VARCHAR), CAST(commission AS VARCHAR), \
                 branch_id, client_id, manager_id, to_unixtime(created_at), to_unixtime(updated_at), \
                 to_unixtime(closed_at), lost_reason FROM deals WHERE source_id = '{i}'"
            ),
        )
        .await;
        let expected = [
            format!("crm:{i}"),
            CANONICAL[k].to_string(),
            STAGES[k].to_string(),
            status.to_string(),
            amount,
            commission,
            branch_of_deal(i).to_string(),
            format!("crm:{}", (i % COMPANIES) + 1),
            format!("crm:{}", (i % 4) + 1),
            deal_created(i).to_string(),
            deal_modified(i).to_string(),
            closed,
            if k == 6 { "price".into() } else { "NULL".into() },
        ];
        assert_eq!(row, [expected.to_vec()], "deal {i}");
    }
    // Stage history of deal 6: NEW -> PREPARATION -> LOSE.
    assert_eq!(
        query(&wh, "SELECT from_stage, to_stage FROM deal_stage_changes WHERE deal_id = 'crm:6' ORDER BY changed_at")
            .await,
        [["NULL", "new"], ["new", "contact"], ["contact", "lost"]]
    );
    assert_eq!(
        query(&wh, "SELECT activity_type, count(*) FROM activities GROUP BY activity_type ORDER BY 1").await,
        [
            ["call".to_string(), deals.to_string()],
            ["meeting".into(), (deals - deals / 5).to_string()],
            ["proposal_sent".into(), (deals / 5).to_string()]
        ]
    );

    // 50 deals move to EXECUTING upstream, each with a new stage-history record.
    let changed: Vec<i64> = (1..=50).map(|j| j * 100 - 1).collect();
    let now = Utc::now().timestamp();
    let mut next_history = history_rows as i64;
    sim.edit(|d| {
        for &i in &changed {
            assert!(d.update("crm.deal.list", i, |r| {
                r.insert("STAGE_ID".into(), json!("EXECUTING"));
                r.insert("STAGE_SEMANTIC_ID".into(), json!("P"));
                r.insert("DATE_MODIFY".into(), json!(msk(now)));
            }));
            next_history += 1;
            d.upsert("crm.stagehistory.list", history_record(next_history, i, 2, 3, now)).unwrap();
        }
    });
    sim.reset_counts();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    // One call for the row estimate; 68 rows to read (18 deals inside the 300 s look-back, the
    // 50 changed ones) make two pages, and two more drain the 50 rows that share one second.
    // A full read would take 101.
    let pages = sim.calls("crm.deal.list");
    assert!(pages <= 5, "{pages} crm.deal.list calls");
    assert_eq!(
        query(&wh, "SELECT count(*), count(DISTINCT source_id) FROM deals").await,
        [[deals.to_string(), deals.to_string()]]
    );
    let moved = query(
        &wh,
        &format!(
            "SELECT source_id, stage, to_unixtime(updated_at) FROM deals WHERE to_unixtime(updated_at) > {} \
             ORDER BY CAST(source_id AS INT)",
            deal_modified(deals)
        ),
    )
    .await;
    let expected: Vec<Vec<String>> =
        changed.iter().map(|i| vec![i.to_string(), "negotiation".into(), now.to_string()]).collect();
    assert_eq!(moved, expected);
    // The new history records carry the stage each deal was in before (looked up upstream).
    let moves = query(
        &wh,
        &format!("SELECT deal_id, from_stage, to_stage FROM deal_stage_changes WHERE CAST(source_id AS INT) > {history_rows} ORDER BY CAST(source_id AS INT)"),
    )
    .await;
    let expected: Vec<Vec<String>> = changed
        .iter()
        .map(|&i| {
            let last = *path(i).last().unwrap();
            vec![format!("crm:{i}"), CANONICAL[last].to_string(), "negotiation".to_string()]
        })
        .collect();
    assert_eq!(moves, expected);
    // The 50 new records fill one fast-mode page exactly, so a second page is needed to see the
    // end (fast mode gives no total).
    assert_eq!(
        sim.calls("crm.stagehistory.list") as usize,
        1 + 2 + changed.len(),
        "estimate, two pages, one lookup per deal"
    );
    assert_eq!(one(&wh, "SELECT count(*) FROM deal_stage_changes").await, (history_rows + changed.len()).to_string());
}

fn deals_only(deals: i64) -> Bitrix24SimulatorData {
    let mut data = Bitrix24SimulatorData::new();
    for i in 1..=deals {
        data.upsert("crm.deal.list", deal_record(i)).unwrap();
    }
    data
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn bitrix_simulator_follows_the_paging_wire_format() {
    let sim = Bitrix24Simulator::start(deals_only(120)).await.unwrap();
    let base = sim.webhook_url();
    let (status, page) = get(&format!("{base}crm.deal.list")).await;
    assert_eq!(status, 200);
    assert_eq!(page["result"].as_array().unwrap().len(), 50);
    assert_eq!((page["total"].as_u64(), page["next"].as_u64()), (Some(120), Some(50)));
    assert!(page["time"]["duration"].is_number());
    // `*` leaves out user fields unless UF_* is asked for too.
    assert!(page["result"][0].get("UF_CRM_COMMISSION").is_none());
    let (_, page) = get(&format!("{base}crm.deal.list.json?start=100&select[]=*&select[]=UF_*")).await;
    let ids: Vec<&str> = page["result"].as_array().unwrap().iter().map(|r| r["ID"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 20);
    assert_eq!((ids[0], ids[19]), ("101", "120"));
    assert!(page.get("next").is_none(), "no next on the last page");
    assert!(page["result"][0].get("UF_CRM_COMMISSION").is_some());
    // Fast mode: no count, no next.
    let (_, page) = get(&format!("{base}crm.deal.list?filter[%3EID]=110&order[ID]=ASC&start=-1")).await;
    assert_eq!(page["result"].as_array().unwrap().len(), 10);
    assert!(page.get("total").is_none() && page.get("next").is_none());
    // A JSON body, a datetime filter compared as an instant (given in UTC, stored in +03:00).
    let cut = DateTime::from_timestamp(deal_modified(60), 0).unwrap().to_rfc3339();
    let r: Value = reqwest::Client::new()
        .post(format!("{base}crm.deal.list"))
        .json(&json!({"filter": {">=DATE_MODIFY": cut}, "order": {"DATE_MODIFY": "DESC", "ID": "DESC"}, "select": ["ID"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Deals 60..=120 qualify (DATE_MODIFY steps every three deals).
    assert_eq!(r["total"].as_u64(), Some(61));
    assert_eq!(r["result"][0], json!({"ID": "120"}));
    // Batch: named commands, totals, next, and errors side by side.
    let r: Value = reqwest::Client::new()
        .post(format!("{base}batch"))
        .form(&[
            ("halt", "0"),
            ("cmd[a]", "crm.deal.list?select[]=ID&start=50"),
            ("cmd[b]", "crm.deal.list?select[]=ID&filter[>ID]=115&start=-1"),
            ("cmd[c]", "no.such.method"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["result"]["result"]["a"].as_array().unwrap().len(), 50);
    assert_eq!(r["result"]["result_total"]["a"], json!(120));
    assert_eq!(r["result"]["result_next"]["a"], json!(100));
    assert_eq!(r["result"]["result"]["b"].as_array().unwrap().len(), 5);
    assert_eq!(r["result"]["result_error"]["c"]["error"], json!("ERROR_METHOD_NOT_FOUND"));
    assert_eq!(sim.calls("crm.deal.list"), 6);
    // Wrong webhook code, unknown method.
    let (status, e) = get(&format!("{}/rest/1/wrongcode/crm.deal.list", sim.base_url())).await;
    assert_eq!((status, e["error"].as_str()), (401, Some("INVALID_CREDENTIALS")));
    let (status, e) = get(&format!("{base}crm.nothing.list")).await;
    assert_eq!((status, e["error"].as_str()), (404, Some("ERROR_METHOD_NOT_FOUND")));
    let (status, e) = get(&format!("{base}crm.stagehistory.list")).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("INVALID_ARG_VALUE")));
    let (_, h) = get(&format!("{base}crm.stagehistory.list?entityTypeId=2")).await;
    assert_eq!(h["result"], json!({"items": []}));
    assert_eq!(h["total"], json!(0));
    // The server stops with its handle.
    drop(sim);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(reqwest::get(format!("{base}crm.deal.list")).await.is_err());
}

#[tokio::test]
async fn bitrix_keyset_pager_reads_every_row_once_across_equal_timestamps() {
    // 130 deals share one DATE_MODIFY (more than two pages), around them deals with their own.
    let modified = |i: i64| if (30..160).contains(&i) { BASE } else { BASE + i - 100 };
    let mut data = Bitrix24SimulatorData::new();
    for i in 1..=200i64 {
        let modified = modified(i);
        let mut r = deal_record(i);
        r["DATE_MODIFY"] = json!(msk(modified));
        data.upsert("crm.deal.list", r).unwrap();
    }
    let sim = Bitrix24Simulator::start(data).await.unwrap();
    let client =
        Bitrix24Api::new(reqwest::Client::new(), &sim.webhook_url(), "crm", std::time::Duration::from_secs(5)).unwrap();
    let spec = ListSpec {
        method: "crm.deal.list",
        params: vec![],
        cursor_field: Some("DATE_MODIFY"),
        sort_param: false,
        items: false,
    };
    let mut seen = vec![];
    let mut pager = Pager::by_time(spec.clone(), None);
    while let Some(page) = pager.next(&client).await.unwrap() {
        seen.extend(page.records.iter().map(|r| r["ID"].as_str().unwrap().parse::<i64>().unwrap()));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, (1..=200).collect::<Vec<_>>());
    assert_eq!(seen.len(), 200, "no row read twice");
    // Starting inside the run of equal timestamps reads the run and what follows.
    let mut pager = Pager::by_time(spec, DateTime::from_timestamp(BASE, 0));
    let mut n = 0;
    while let Some(page) = pager.next(&client).await.unwrap() {
        n += page.records.len();
    }
    assert_eq!(n, (1..=200).filter(|&i| modified(i) >= BASE).count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_limiter_throttles_but_sync_completes() {
    let sim = Bitrix24Simulator::start(fixture(300)).await.unwrap();
    sim.set_behaviour(Behaviour { limiter: Some(Limiter { burst: 4.0, per_second: 20.0 }), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "chunk_rows = 200");
    let wh = warehouse(&project);
    let started = Instant::now();
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert!(started.elapsed().as_secs() < 60, "took {:?}", started.elapsed());
    let methods = [
        "scope",
        "batch",
        "department.get",
        "crm.status.list",
        "user.get",
        "crm.company.list",
        "crm.deal.list",
        "crm.stagehistory.list",
        "crm.activity.list",
    ];
    let requests: u64 = methods.iter().map(|m| sim.requests(m)).sum();
    let served: u64 = methods.iter().map(|m| sim.requests(m).min(sim.calls(m))).sum();
    assert!(requests > served, "the limiter refused some requests ({requests} requests, {served} served)");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "300");
    assert_eq!(one(&wh, "SELECT count(*) FROM activities").await, "600");
}

#[tokio::test]
async fn bitrix_persistent_429_fails_clearly_within_the_retry_budget() {
    let sim = Bitrix24Simulator::start(fixture(10)).await.unwrap();
    sim.set_behaviour(Behaviour { force_429: Some("*".into()), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "max_retry_seconds = 2");
    let wh = warehouse(&project);
    let started = Instant::now();
    let report = sync(&project, &wh).await;
    let elapsed = started.elapsed();
    let error = crm_error(&report).expect("the sync must fail");
    assert!(
        error.contains("gave up") && error.contains("OPERATION_TIME_LIMIT") && error.contains("max_retry_seconds"),
        "{error}"
    );
    assert!(elapsed.as_secs_f64() < 6.0, "took {elapsed:?}");
    assert!(sim.requests("scope") >= 2, "it retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_html_answer_is_an_error_naming_the_method_and_keeps_tables() {
    let sim = Bitrix24Simulator::start(fixture(120)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let webhook = sim.webhook_url();
    let project = project(dir.path(), Some(&webhook), "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    let before = query(&wh, "SELECT source_id, stage, to_unixtime(updated_at) FROM deals ORDER BY source_id").await;
    let version = wh.info("deals").await.unwrap().unwrap().version;

    sim.edit(|d| d.touch("crm.deal.list", 5, "DATE_MODIFY", Utc::now()));
    sim.set_behaviour(Behaviour { html: Some("crm.deal.list".into()), ..Default::default() });
    let report = sync(&project, &wh).await;
    let error = crm_error(&report).expect("the sync must fail");
    assert!(
        error.contains("crm.deal.list") && error.contains("text/html") && error.contains("<!DOCTYPE html>"),
        "{error}"
    );
    let code = webhook.trim_end_matches('/').rsplit('/').next().unwrap();
    assert!(!error.contains(code), "the webhook code leaked: {error}");
    assert_eq!(
        query(&wh, "SELECT source_id, stage, to_unixtime(updated_at) FROM deals ORDER BY source_id").await,
        before
    );
    assert_eq!(wh.info("deals").await.unwrap().unwrap().version, version);
}

#[tokio::test]
async fn bitrix_unknown_webhook_code_says_to_check_the_url() {
    let sim = Bitrix24Simulator::start(fixture(3)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/rest/1/notthecode/", sim.base_url());
    let project = project(dir.path(), Some(&url), "");
    let report = sync(&project, &warehouse(&project)).await;
    let error = crm_error(&report).expect("the sync must fail");
    assert!(error.contains("INVALID_CREDENTIALS") && error.contains("check the webhook URL"), "{error}");
    assert!(!error.contains("notthecode"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_bad_records_go_to_quarantine_and_the_rest_loads() {
    let mut data = fixture(40);
    assert!(data.update("crm.deal.list", 7, |r| {
        r.insert("STAGE_ID".into(), json!("UC_ODD"));
        r.insert("STAGE_SEMANTIC_ID".into(), json!("P"));
    }));
    assert!(data.update("crm.deal.list", 8, |r| {
        r.insert("OPPORTUNITY".into(), json!("abc"));
    }));
    let sim = Bitrix24Simulator::start(data).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "38");
    let q = query(&wh, "SELECT entity, source_id, location, reason, raw FROM quarantine ORDER BY source_id").await;
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!((q[0][0].as_str(), q[0][1].as_str()), ("deals", "crm.deal.list:ID=7"));
    assert!(q[0][3].contains("UC_ODD") && q[0][3].contains("[sources.crm.stages]"), "{}", q[0][3]);
    assert!(q[0][2].contains("crm.deal.list page 1") && q[0][2].contains("ID=7"), "{}", q[0][2]);
    assert!(q[0][4].contains("\"UC_ODD\""));
    assert_eq!(q[1][1], "crm.deal.list:ID=8");
    assert!(q[1][3].contains("OPPORTUNITY `abc`"), "{}", q[1][3]);
    // A second sync re-reads them (look-back) without adding quarantine rows.
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_simulate_from_serves_a_recorded_folder() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("portal");
    std::fs::create_dir(&folder).unwrap();
    let data = fixture(30);
    for method in [
        "department.get",
        "user.get",
        "crm.status.list",
        "crm.company.list",
        "crm.deal.list",
        "crm.stagehistory.list",
        "crm.activity.list",
    ] {
        let lines: Vec<String> =
            data.ids(method).into_iter().map(|id| data.get(method, id).unwrap().to_string() + "\n").collect();
        std::fs::write(folder.join(format!("{method}.jsonl")), lines.concat()).unwrap();
    }
    let project = project(dir.path(), None, "");
    let wh = warehouse(&project);
    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "30");
    assert_eq!(one(&wh, "SELECT count(*) FROM activities").await, "60");

    // A broken line is refused with the file and line.
    std::fs::write(folder.join("crm.deal.list.jsonl"), "{\"ID\":\"1\"}\nnot json\n").unwrap();
    let e = Bitrix24SimulatorData::load(&folder).unwrap_err().to_string();
    assert!(e.contains("crm.deal.list.jsonl") && e.contains("line 2"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_reconcile_marks_deals_deleted_upstream_and_refuses_a_wipe() {
    let sim = Bitrix24Simulator::start(fixture(120)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "");
    let wh = warehouse(&project);
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM deals WHERE deleted").await, "0");

    let removed = [7i64, 64, 101];
    sim.edit(|d| {
        for id in removed {
            assert!(d.remove("crm.deal.list", id));
        }
    });
    // A cursor sync cannot see the deletions.
    assert!(sync(&project, &wh).await.ok());
    assert_eq!(one(&wh, "SELECT count(*) FROM deals WHERE deleted").await, "0");

    let reconcile = SyncOptions { reconcile: true, ..Default::default() };
    let report = sync_project(project.clone(), &wh, &reconcile, &LogProgress).await.unwrap();
    assert!(report.ok(), "{report:?}");
    let deals = report.sources.iter().find(|s| s.name == "crm").unwrap().tables.iter().find(|t| t.table == "deals");
    assert_eq!(deals.map(|t| t.deleted), Some(3));
    // Kept, flagged, not dropped: 120 rows, exactly the three removed ones deleted.
    assert_eq!(one(&wh, "SELECT count(*) FROM deals").await, "120");
    assert_eq!(
        query(&wh, "SELECT source_id FROM deals WHERE deleted ORDER BY CAST(source_id AS INT)").await,
        [["7"], ["64"], ["101"]]
    );
    // A second pass finds nothing new.
    let report = sync_project(project.clone(), &wh, &reconcile, &LogProgress).await.unwrap();
    let deals = report.sources.iter().find(|s| s.name == "crm").unwrap().tables.iter().find(|t| t.table == "deals");
    assert_eq!(deals.map(|t| t.deleted), Some(0));

    // An upstream that suddenly lists almost nothing is refused, not obeyed.
    sim.edit(|d| {
        for id in d.ids("crm.deal.list").into_iter().skip(10) {
            d.remove("crm.deal.list", id);
        }
    });
    let report = sync_project(project.clone(), &wh, &reconcile, &LogProgress).await.unwrap();
    let error = crm_error(&report).expect("the wipe is refused");
    assert!(error.contains("refusing to mark more than half"), "{error}");
    assert_eq!(one(&wh, "SELECT count(*) FROM deals WHERE deleted").await, "3");
}

/// A deal keeps the money it was made in: OPPORTUNITY in its CURRENCY_ID (a dollar deal was
/// quarantined as "RUB only" before currencies were kept), the source's `currency` when the
/// portal sends none; staging converts both with `fx_rates` or says which rate is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitrix_sync_keeps_each_deals_currency_and_original_amount() {
    use dealhouse_warehouse::CommitMeta;
    use dealhouse_warehouse::schema::{CanonicalRow, ExchangeRate, Rate};

    let mut data = fixture(10);
    let mut usd = deal_record(3);
    usd["CURRENCY_ID"] = json!("USD");
    usd["OPPORTUNITY"] = json!("250.75");
    data.upsert("crm.deal.list", usd).unwrap();
    let mut bare = deal_record(4);
    bare["CURRENCY_ID"] = json!("");
    data.upsert("crm.deal.list", bare).unwrap();
    let sim = Bitrix24Simulator::start(data).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), Some(&sim.webhook_url()), "currency = \"EUR\"");
    let wh = warehouse(&project);

    let report = sync(&project, &wh).await;
    assert!(report.ok(), "{report:?}");
    assert_eq!(one(&wh, "SELECT count(*) FROM quarantine").await, "0");
    // Deal 3's commission is the source's 10% of its dollars: 25.075 -> 25.08 USD.
    assert_eq!(
        query(
            &wh,
            "SELECT source_id, currency, CAST(amount AS VARCHAR), CAST(commission AS VARCHAR) FROM deals \
             WHERE source_id IN ('2', '3', '4') ORDER BY source_id"
        )
        .await,
        [["2", "RUB", "1002.02", "102.50"], ["3", "USD", "250.75", "25.08"], ["4", "EUR", "1004.04", "104.50"]]
    );
    assert_eq!(one(&wh, "SELECT currency FROM reporting_currency").await, "RUB");

    let rate = ExchangeRate {
        rate_date: chrono::NaiveDate::from_ymd_opt(2023, 11, 1).unwrap(),
        currency: "USD".into(),
        rate: Rate("90".parse().unwrap()),
        source_system: "cbr".into(),
        source_id: "2023-11-01 USD".into(),
    };
    let meta = CommitMeta { operation: "test".into(), source: "cbr".into(), cursor: None };
    wh.upsert(&ExchangeRate::table_def(), vec![ExchangeRate::to_batch(&[rate]).unwrap()], &meta).await.unwrap();
    let models = dealhouse_warehouse::models::load_models(None).unwrap();
    let runs = dealhouse_warehouse::models::run(&wh, &models, None, |_| {}).await.unwrap();
    assert!(runs.iter().all(|r| r.result.is_ok()), "{runs:?}");
    // Both open deals were created on 2023-11-14 in Moscow: deal 3 takes the 11-01 dollar rate,
    // 250.75 * 90 = 22567.50; no euro rate exists for deal 4.
    let rows = query(
        &wh,
        "SELECT deal_id, currency, CAST(amount_original AS VARCHAR), CAST(amount AS VARCHAR), amount_null_reason \
         FROM stg_deal WHERE deal_id IN ('crm:3', 'crm:4') ORDER BY deal_id",
    )
    .await;
    assert_eq!(rows[0], ["crm:3", "USD", "250.75", "22567.50", "NULL"]);
    assert_eq!(rows[1][..4], ["crm:4", "EUR", "1004.04", "NULL"]);
    assert!(rows[1][4].starts_with("no EUR rate on or before 2023-11-14 in fx_rates"), "{}", rows[1][4]);
}
