//! Same inputs, same tables: two full builds of every built-in model over the same canonical rows
//! give bit-identical contents, even when the rows sit in the Delta tables in another order and
//! in other files (as they do after a re-sync, and as a parallel plan reads them). A float sum
//! would differ in its last digits here, because floating-point addition depends on the order.
//!
//! The rows come from a small seeded generator (three branches in three time zones, a few hundred
//! deals with histories at arbitrary seconds and microseconds), enough to give every mart rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};
use dealhouse_warehouse::datafusion::arrow::record_batch::RecordBatch;
use dealhouse_warehouse::datafusion::arrow::util::display::array_value_to_string;
use dealhouse_warehouse::models;
use dealhouse_warehouse::schema::{
    Activity, Branch, CanonicalRow, Client, Deal, DealStageChange, ExchangeRate, Holding, IntakeRequest, Manager,
    Money, Plan, Rate,
};
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{CommitMeta, Warehouse};

/// splitmix64: a fixed, dependency-free sequence, so the data are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// 0 .. n-1.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration of up to `max_hours`, at an arbitrary second and microsecond.
    fn duration(&mut self, max_hours: u64) -> Duration {
        let micros = self.below(max_hours * 3_600_000_000).max(1);
        Duration::microseconds(i64::try_from(micros).expect("small"))
    }
}

/// Every canonical table's rows.
#[derive(Default)]
struct Rows {
    holdings: Vec<Holding>,
    branches: Vec<Branch>,
    managers: Vec<Manager>,
    clients: Vec<Client>,
    deals: Vec<Deal>,
    changes: Vec<DealStageChange>,
    activities: Vec<Activity>,
    plans: Vec<Plan>,
    intake: Vec<IntakeRequest>,
    fx_rates: Vec<ExchangeRate>,
}

const BRANCHES: [(&str, &str, &str); 3] = [
    ("msk", "central", "Europe/Moscow"),
    ("kgd", "central", "Europe/Kaliningrad"),
    ("vvo", "east", "Asia/Vladivostok"),
];
const OPEN_PATH: [&str; 5] = ["new", "contact", "proposal", "negotiation", "contract"];

fn money(kopecks: u64) -> Money {
    Money(rust_decimal::Decimal::new(i64::try_from(kopecks).expect("small"), 2))
}

fn generate(seed: u64, deals: usize) -> Rows {
    let mut rng = Rng(seed);
    let mut rows = Rows::default();
    let config = |id: &str| ("config".to_string(), id.to_string());
    for id in ["central", "east"] {
        let (source_system, source_id) = config(id);
        rows.holdings.push(Holding { holding_id: id.into(), name: id.into(), source_system, source_id });
    }
    for (id, holding, zone) in BRANCHES {
        let (source_system, source_id) = config(id);
        rows.branches.push(Branch {
            branch_id: id.into(),
            holding_id: holding.into(),
            name: id.into(),
            city: id.into(),
            time_zone: zone.into(),
            crm_switch_date: (id == "msk").then(|| NaiveDate::from_ymd_opt(2025, 4, 1).expect("valid date")),
            source_system,
            source_id,
        });
    }
    let managers: Vec<(String, &str)> = (0..6).map(|i| (format!("crm:m{i}"), BRANCHES[i % BRANCHES.len()].0)).collect();
    for (id, branch) in &managers {
        rows.managers.push(Manager {
            manager_id: id.clone(),
            branch_id: Some((*branch).into()),
            name: id.clone(),
            active: true,
            source_system: "crm".into(),
            source_id: id.clone(),
        });
    }
    for i in 0..25 {
        rows.clients.push(Client {
            client_id: format!("crm:c{i}"),
            name: format!("client {i}"),
            inn: None,
            kind: Some("venue".into()),
            branch_id: Some(BRANCHES[i % BRANCHES.len()].0.into()),
            created_at: None,
            source_system: "crm".into(),
            source_id: format!("c{i}"),
        });
    }
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).single().expect("valid instant");
    for d in 0..deals {
        let (manager, _) = &managers[usize::try_from(rng.below(managers.len() as u64)).expect("small")];
        let created = start + rng.duration(300 * 24);
        let steps = usize::try_from(rng.below(OPEN_PATH.len() as u64)).expect("small");
        let outcome = match rng.below(10) {
            0..=3 => "won",
            4..=6 => "lost",
            _ => "open",
        };
        let mut at = created;
        let mut history = vec![(None, OPEN_PATH[0], at)];
        for pair in OPEN_PATH[..=steps].windows(2) {
            at += rng.duration(20 * 24);
            history.push((Some(pair[0]), pair[1], at));
        }
        if outcome != "open" {
            at += rng.duration(30 * 24);
            history.push((Some(OPEN_PATH[steps]), outcome, at));
        }
        let stage = if outcome == "open" { OPEN_PATH[steps] } else { outcome };
        for (k, (from, to, when)) in history.iter().enumerate() {
            rows.changes.push(DealStageChange {
                deal_id: format!("crm:d{d}"),
                from_stage: from.map(Into::into),
                to_stage: (*to).into(),
                changed_at: *when,
                changed_by: Some(manager.clone()),
                source_system: "crm".into(),
                source_id: format!("d{d}/{k}"),
            });
        }
        for k in 0..rng.below(4) {
            let kind = ["call", "meeting", "email", "proposal_sent"][usize::try_from(rng.below(4)).expect("small")];
            rows.activities.push(Activity {
                activity_id: format!("crm:a{d}/{k}"),
                deal_id: Some(format!("crm:d{d}")),
                client_id: None,
                manager_id: Some(manager.clone()),
                activity_type: kind.into(),
                direction: None,
                at: created + rng.duration(40 * 24),
                due_at: None,
                done: rng.below(4) > 0,
                result: None,
                source_system: "crm".into(),
                source_id: format!("a{d}/{k}"),
            });
        }
        if outcome == "won" {
            rows.activities.push(Activity {
                activity_id: format!("1c:{d}"),
                deal_id: Some(format!("crm:d{d}")),
                client_id: None,
                manager_id: None,
                activity_type: "contract_signed".into(),
                direction: None,
                at,
                due_at: None,
                done: true,
                result: None,
                source_system: "1c".into(),
                source_id: d.to_string(),
            });
        }
        rows.deals.push(Deal {
            deal_id: format!("crm:d{d}"),
            title: Some(format!("deal {d}")),
            client_id: Some(format!("crm:c{}", rng.below(25))),
            manager_id: Some(manager.clone()),
            branch_id: None,
            pipeline: "0".into(),
            stage: stage.into(),
            source_stage: stage.to_uppercase(),
            status: outcome.into(),
            lost_reason: (outcome == "lost").then(|| "price".into()),
            amount: Some(money(rng.below(50_000_000))),
            commission: Some(money(rng.below(5_000_000))),
            created_at: created,
            updated_at: at,
            closed_at: (outcome != "open").then_some(at),
            deleted: false,
            // Every third deal in dollars, converted in staging (rounded products must not
            // depend on the order rows are read in either).
            currency: Some(if d % 3 == 0 { "USD" } else { "RUB" }.into()),
            source_system: "crm".into(),
            source_id: format!("d{d}"),
        });
    }
    for (id, branch) in &managers {
        for month in 1..=10 {
            for (metric, target) in [("won_amount", 10_000_000), ("calls", 4_000)] {
                rows.plans.push(Plan {
                    month: NaiveDate::from_ymd_opt(2025, month, 1).expect("valid month"),
                    branch_id: Some((*branch).into()),
                    manager_id: Some(id.clone()),
                    metric: metric.into(),
                    target: money(target),
                    source_system: "plans".into(),
                    source_id: format!("{id}/{month}/{metric}"),
                });
            }
        }
    }
    for day in 0..320 {
        let rate_date = NaiveDate::from_ymd_opt(2024, 12, 1).expect("valid day") + Duration::days(day);
        rows.fx_rates.push(ExchangeRate {
            rate_date,
            currency: "USD".into(),
            // 80.0000 .. 99.9999 RUB, four decimals as the central bank quotes them.
            rate: Rate(rust_decimal::Decimal::new(800_000 + i64::try_from(rng.below(200_000)).expect("small"), 4)),
            source_system: "cbr".into(),
            source_id: rate_date.to_string(),
        });
    }
    for r in 0..80 {
        let created = start + rng.duration(300 * 24);
        let done = rng.below(2) == 0;
        rows.intake.push(IntakeRequest {
            request_id: format!("intake:{r}"),
            department: ["marketing", "content", "docflow"][usize::try_from(rng.below(3)).expect("small")].into(),
            branch_id: Some(BRANCHES[usize::try_from(rng.below(3)).expect("small")].0.into()),
            client_id: None,
            client_inn: None,
            deal_id: (rng.below(3) == 0).then(|| format!("crm:d{}", rng.below(deals as u64))),
            subject: None,
            created_at: created,
            status: if done { "done" } else { "new" }.into(),
            resolved_at: done.then(|| created + rng.duration(100)),
            legacy_ref: None,
            amount: None,
            source_system: "intake".into(),
            source_id: r.to_string(),
        });
    }
    rows
}

/// Writes `rows` in `commits` commits; `reversed` stores them last row first.
async fn write<R: CanonicalRow + Clone>(wh: &Warehouse, rows: &[R], commits: usize, reversed: bool) {
    let mut rows = rows.to_vec();
    if reversed {
        rows.reverse();
    }
    let meta = CommitMeta { operation: "test".into(), source: "test".into(), cursor: None };
    for part in rows.chunks(rows.len().div_ceil(commits).max(1)) {
        let batch = R::to_batch(part).expect("generated rows fit the canonical schema");
        wh.upsert(&R::table_def(), vec![batch], &meta).await.expect("upsert");
    }
}

/// A warehouse holding `rows`, written in one commit per table in generated order, or
/// reversed and spread over several commits (so over several files).
async fn warehouse(dir: &std::path::Path, rows: &Rows, shuffled: bool) -> Warehouse {
    let url = url::Url::from_directory_path(dir).expect("absolute temp path");
    let wh = Warehouse::new(url, HashMap::new());
    let commits = if shuffled { 3 } else { 1 };
    write(&wh, &rows.holdings, 1, shuffled).await;
    write(&wh, &rows.branches, 1, shuffled).await;
    write(&wh, &rows.managers, commits, shuffled).await;
    write(&wh, &rows.clients, commits, shuffled).await;
    write(&wh, &rows.deals, commits, shuffled).await;
    write(&wh, &rows.changes, commits, shuffled).await;
    write(&wh, &rows.activities, commits, shuffled).await;
    write(&wh, &rows.plans, commits, shuffled).await;
    write(&wh, &rows.intake, commits, shuffled).await;
    write(&wh, &rows.fx_rates, commits, shuffled).await;
    wh
}

/// One cell as text that tells every distinct value apart: floats by their bits as well (two
/// floats that print alike can differ in the last bit).
fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    match array.data_type() {
        DataType::Float64 => {
            let v = array.as_primitive::<Float64Type>().value(row);
            format!("{v:e} (bits {:016x})", v.to_bits())
        }
        DataType::Float32 => format!("{:08x}", array.as_primitive::<Float32Type>().value(row).to_bits()),
        DataType::Float16 => format!("{:04x}", array.as_primitive::<Float16Type>().value(row).to_bits()),
        _ => array_value_to_string(array, row).expect("displayable"),
    }
}

/// A table's schema and its rows as sorted text (a Delta table has no row order).
async fn content(session: &QuerySession, table: &str) -> (String, Vec<String>) {
    let batches: Vec<RecordBatch> =
        session.query(&format!("select * from {table}")).await.unwrap_or_else(|e| panic!("{table}: {e}"));
    let schema = batches.first().map_or_else(String::new, |b| {
        b.schema().fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
    });
    let mut rows = vec![];
    for batch in &batches {
        for r in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| cell(c.as_ref(), r)).collect::<Vec<_>>().join(" | "));
        }
    }
    rows.sort();
    (schema, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_builds_of_the_same_rows_give_identical_tables() {
    let rows = generate(42, 400);
    let all = models::load_models(None).expect("built-in models parse");
    let mut contents: Vec<BTreeMap<String, (String, Vec<String>)>> = vec![];
    let dirs = [tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir")];
    for (dir, shuffled) in dirs.iter().zip([false, true]) {
        let wh = warehouse(dir.path(), &rows, shuffled).await;
        let runs = models::run(&wh, &all, None, |_| {}).await.expect("build runs");
        let failed: Vec<String> =
            runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.name))).collect();
        assert!(failed.is_empty(), "models failed:\n{}", failed.join("\n"));
        let session = QuerySession::open(&wh).await.expect("session");
        let mut tables = BTreeMap::new();
        for name in all.keys() {
            tables.insert(name.clone(), content(&session, name).await);
        }
        contents.push(tables);
    }
    let (a, b) = (&contents[0], &contents[1]);
    // Durations are whole seconds and decimals derived from them: no model has a float column
    // left, whose sums (and averages) would depend on the order rows are added in.
    let floats: Vec<String> = a
        .iter()
        .flat_map(|(name, (schema, _))| {
            schema
                .split(", ")
                .filter(|c| c.ends_with(":Float16") || c.ends_with(":Float32") || c.ends_with(":Float64"))
                .map(move |c| format!("{name}.{c}"))
        })
        .collect();
    assert!(floats.is_empty(), "float columns: {floats:?}");
    let empty: Vec<&String> = a.iter().filter(|(_, (_, rows))| rows.is_empty()).map(|(n, _)| n).collect();
    assert!(empty.is_empty(), "the generated data leave these models empty, so they prove nothing: {empty:?}");
    let mut differ = vec![];
    for (name, (schema, rows)) in a {
        let (other_schema, other_rows) = &b[name];
        if schema != other_schema {
            differ.push(format!("{name}: schema\n  {schema}\n  {other_schema}"));
            continue;
        }
        let only_a: Vec<&String> = rows.iter().filter(|r| other_rows.binary_search(r).is_err()).collect();
        let only_b: Vec<&String> = other_rows.iter().filter(|r| rows.binary_search(r).is_err()).collect();
        if rows.len() != other_rows.len() || !only_a.is_empty() || !only_b.is_empty() {
            differ.push(format!(
                "{name}: {} of {} rows differ, e.g.\n  first build:  {}\n  second build: {}",
                only_a.len().max(only_b.len()),
                rows.len(),
                only_a.first().map_or("-", |s| s.as_str()),
                only_b.first().map_or("-", |s| s.as_str()),
            ));
        }
    }
    assert!(differ.is_empty(), "two builds of the same rows differ:\n{}", differ.join("\n"));
}
