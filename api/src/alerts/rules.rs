//! What each kind of rule returns now: the rows of an SQL rule, a measure's groups past its
//! threshold, the sources synced too long ago, the failing data tests. Each becomes a [`Found`]:
//! its key, branch, message and row.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use dealhouse_warehouse::config::{Alert, AlertKind, Comparison};
use dealhouse_warehouse::datafusion::scalar::ScalarValue;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse, models, schema};
use serde_json::{Map, Value};

use crate::measures::{self, MetricsQuery};
use crate::query::{Args, Sql, batches_to_json};
use crate::semantic::catalog;

/// One occurrence as a rule returns it.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// `column=value; ...` of the key columns.
    pub key: String,
    /// The branch it concerns.
    pub branch_id: Option<String>,
    /// The row, as JSON.
    pub values: Map<String, Value>,
}

/// What the rule of `alert` returns now. `reference_day` is the data's (for measures);
/// `now` is the clock (for freshness).
pub(crate) async fn find(
    name: &str,
    alert: &Alert,
    project: &Project,
    warehouse: &Warehouse,
    session: &QuerySession,
    reference_day: Option<chrono::NaiveDate>,
    now: DateTime<Utc>,
) -> Result<Vec<Found>, String> {
    let rows = match alert.kind() {
        AlertKind::Sql => sql_rows(alert, session).await?,
        AlertKind::Measure => measure_rows(alert, session, reference_day).await?,
        AlertKind::Freshness => freshness_rows(alert, project, warehouse, now).await?,
        AlertKind::DataTests => test_rows(alert, project, warehouse).await?,
    };
    let key_columns = alert.key_columns();
    rows.into_iter().map(|row| found(name, &key_columns, row)).collect()
}

fn found(name: &str, key_columns: &[String], row: Map<String, Value>) -> Result<Found, String> {
    let mut key = vec![];
    for k in key_columns {
        let Some(v) = row.get(k) else {
            return Err(format!(
                "the rule returns no column `{k}` named in `key`; its columns: {} (alert `{name}`)",
                row.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        };
        key.push(format!("{k}={}", text(v)));
    }
    let branch_id = ["branch_id", "branch"].iter().find_map(|c| row.get(*c)).and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        _ => None,
    });
    Ok(Found { key: key.join("; "), branch_id, values: row })
}

/// A JSON value as message text: strings bare, null as `-`.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The message of an occurrence: the alert's template with `{column}` (and `{alert}`) filled,
/// else the alert's name and the key.
pub(crate) fn message(name: &str, alert: &Alert, f: &Found) -> Result<String, String> {
    let Some(template) = &alert.message else { return Ok(format!("{name}: {}", f.key)) };
    let mut out = String::new();
    let mut rest = template.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let column = &after[..close];
        match (column, f.values.get(column)) {
            (_, Some(v)) => out.push_str(&text(v)),
            ("alert", None) => out.push_str(name),
            (_, None) => {
                return Err(format!(
                    "`message` names {{{column}}}, which the rule does not return; its columns: {}",
                    f.values.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn rows_of(
    batches: &[dealhouse_warehouse::datafusion::arrow::array::RecordBatch],
) -> Result<Vec<Map<String, Value>>, String> {
    let rows = batches_to_json(batches).map_err(|e| e.message)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

async fn sql_rows(alert: &Alert, session: &QuerySession) -> Result<Vec<Map<String, Value>>, String> {
    let sql = alert.sql.as_deref().unwrap_or_default();
    let batches = session.query(sql).await.map_err(|e| {
        format!("its `sql` failed: {e} (read-only SQL over the warehouse's tables; has `dealhouse build` run?)")
    })?;
    rows_of(&batches)
}

/// The measure by `by` for the month of the reference day, through that day, compared with the
/// threshold; nothing before `from_day`.
async fn measure_rows(
    alert: &Alert,
    session: &QuerySession,
    reference_day: Option<chrono::NaiveDate>,
) -> Result<Vec<Map<String, Value>>, String> {
    let Some(day) = reference_day else { return Ok(vec![]) };
    if alert.from_day.is_some_and(|from| day.day() < from) {
        return Ok(vec![]);
    }
    let measure = alert.measure.clone().unwrap_or_default();
    let Some((comparison, threshold)) = alert.threshold() else {
        return Err("no threshold (`below` or `above`)".into());
    };
    let month = day.format("%Y-%m").to_string();
    let mut pairs: Vec<(String, String)> = vec![
        ("measures".into(), measure.clone()),
        ("from".into(), month.clone()),
        ("to".into(), month),
        ("through".into(), day.format("%Y-%m-%d").to_string()),
    ];
    if !alert.by.is_empty() {
        pairs.push(("by".into(), alert.by.join(",")));
    }
    for (dim, values) in &alert.filters {
        pairs.push((dim.clone(), values.join(",")));
    }
    let catalog = catalog().map_err(|e| format!("api/metrics.toml is invalid: {e}"))?;
    let args = Args::parse(measures::PATH, pairs, &measures::params()).map_err(|e| e.message)?;
    let query = MetricsQuery::resolve(catalog, &args).map_err(|e| e.message)?;
    let (mut sql, inner) = query.sql().map_err(|e| e.message)?;
    let bound = sql.bind(ScalarValue::Decimal128(
        Some(threshold.mantissa()),
        38,
        i8::try_from(threshold.scale()).unwrap_or(28),
    ));
    let op = match comparison {
        Comparison::Below => "<",
        Comparison::Above => ">",
    };
    // `measure` is a name the catalog just resolved, not free text.
    let text = format!("select * from ({inner}) r where r.{measure} {op} {bound}");
    let batches = collect(session, sql, &text).await?;
    rows_of(&batches)
}

async fn collect(
    session: &QuerySession,
    sql: Sql,
    text: &str,
) -> Result<Vec<dealhouse_warehouse::datafusion::arrow::array::RecordBatch>, String> {
    let params = sql.into_params();
    let df = session.plan_read_only(text).await.map_err(|e| format!("{e} (has `dealhouse build` run?)"))?;
    let df = if params.is_empty() { df } else { df.with_param_values(params).map_err(|e| e.to_string())? };
    df.collect().await.map_err(|e| e.to_string())
}

/// Sources whose latest commit to any canonical table is older than `max_age` (or never made).
async fn freshness_rows(
    alert: &Alert,
    project: &Project,
    warehouse: &Warehouse,
    now: DateTime<Utc>,
) -> Result<Vec<Map<String, Value>>, String> {
    let max_age = alert.max_age().unwrap_or(Duration::from_secs(7200));
    let sources: Vec<String> =
        if alert.sources.is_empty() { project.config.sources.keys().cloned().collect() } else { alert.sources.clone() };
    let mut out = vec![];
    for source in sources {
        let mut last: Option<DateTime<Utc>> = None;
        for table in schema::canonical_tables() {
            let mark = warehouse.last_commit(table.name, &source, false).await.map_err(|e| e.to_string())?;
            if let Some(at) = mark.and_then(|m| m.at) {
                last = Some(last.map_or(at, |l| l.max(at)));
            }
        }
        let age = last.map(|at| (now - at).to_std().unwrap_or_default());
        if age.is_some_and(|a| a <= max_age) {
            continue;
        }
        let mut row = Map::new();
        row.insert("source".into(), Value::String(source));
        row.insert(
            "last_sync_at".into(),
            last.map_or(Value::Null, |t| Value::String(t.format("%Y-%m-%d %H:%M:%S UTC").to_string())),
        );
        row.insert("age_minutes".into(), age.map_or(Value::Null, |a| Value::from(a.as_secs() / 60)));
        row.insert("max_age".into(), Value::String(alert.max_age.clone().unwrap_or_default()));
        out.push(row);
    }
    Ok(out)
}

/// The data tests (of `models`, or all) that find offending rows or fail to run.
async fn test_rows(alert: &Alert, project: &Project, warehouse: &Warehouse) -> Result<Vec<Map<String, Value>>, String> {
    let all = models::load_models(Some(&project.dir.join("models"))).map_err(|e| e.to_string())?;
    let only: Option<BTreeSet<String>> = (!alert.models.is_empty()).then(|| alert.models.iter().cloned().collect());
    if let Some(unknown) = only.iter().flatten().find(|m| !all.contains_key(*m)) {
        return Err(format!("`models` names `{unknown}`, which is not a model"));
    }
    let runs = models::run_tests(warehouse, &all, only.as_ref(), &project.config.vocabularies)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = vec![];
    for t in runs {
        let (failing, error) = match &t.result {
            Ok(0) => continue,
            Ok(n) => (Value::from(*n), Value::Null),
            Err(e) => (Value::Null, Value::String(e.clone())),
        };
        let mut row = Map::new();
        row.insert("model".into(), Value::String(t.model.clone()));
        row.insert("test".into(), Value::String(t.test.clone()));
        row.insert("failing_rows".into(), failing);
        row.insert("error".into(), error);
        row.insert("first_row".into(), t.first_row.clone().map_or(Value::Null, Value::String));
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn alert(extra: &str) -> Alert {
        let text = format!("[alerts.a]\nsql = \"select 1\"\nkey = [\"manager_id\"]\n{extra}\n");
        let c = dealhouse_warehouse::ProjectConfig::parse(&text, std::path::Path::new("/p/dealhouse.toml")).unwrap();
        c.alerts["a"].get_ref().clone()
    }

    fn row(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn an_occurrence_is_its_key_its_branch_and_its_message() {
        let f =
            found("a", &["manager_id".into()], row(json!({ "manager_id": "m-7", "branch_id": "spb", "stalled": 6 })))
                .unwrap();
        assert_eq!((f.key.as_str(), f.branch_id.as_deref()), ("manager_id=m-7", Some("spb")));
        let a = alert("message = \"{alert}: {manager_id} has {stalled} stalled deals ({missing_ok})\"");
        let e = message("a", &a, &f).unwrap_err();
        assert!(e.contains("{missing_ok}") && e.contains("branch_id, manager_id, stalled"), "{e}");
        let a = alert("message = \"{alert}: {manager_id} has {stalled} stalled deals\"");
        assert_eq!(message("a", &a, &f).unwrap(), "a: m-7 has 6 stalled deals");
        assert_eq!(message("a", &alert(""), &f).unwrap(), "a: manager_id=m-7");
        // A measure's rows name the branch `branch`; a row without the key column is refused.
        let m = found("a", &["branch".into()], row(json!({ "branch": "msk", "plan_completion": 0.4 }))).unwrap();
        assert_eq!(m.branch_id.as_deref(), Some("msk"));
        let e = found("a", &["deal_id".into()], row(json!({ "branch": "msk" }))).unwrap_err();
        assert!(e.contains("`deal_id`") && e.contains("branch"), "{e}");
    }
}
