//! Computing a report's sections on a query session: each section's SQL (or semantic-layer
//! query, built by the same code as `GET /api/v1/metrics`) with the period and filters bound as
//! parameters, wrapped to select the declared columns in a total order, and collected into one
//! Arrow batch per section with its totals row.
//!
//! The session decides which rows a section sees: the unscoped one, or a branch's scoped
//! session (`QuerySession::scoped`, the code behind branch tokens) for `--per-branch`.

use chrono::NaiveDate;
use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::compute::{cast, concat_batches};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Date32Type};
use dealhouse_warehouse::session::QuerySession;

use super::cells::{Cell, totals};
use super::definition::{MetricsPeriod, MetricsSpec, Parameter, Report, Section};
use super::period::Period;
use crate::measures::{self, MetricsQuery};
use crate::query::{Args, Sql};
use crate::semantic::catalog;
use crate::{Error, Result};

/// The filter parameters of one run (empty lists filter nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Holding ids.
    pub holding: Vec<String>,
    /// Branch ids.
    pub branch: Vec<String>,
    /// Manager ids.
    pub manager: Vec<String>,
}

impl Filters {
    /// The values given for `p`.
    pub fn get(&self, p: Parameter) -> &[String] {
        match p {
            Parameter::Holding => &self.holding,
            Parameter::Branch => &self.branch,
            Parameter::Manager => &self.manager,
            Parameter::Period => &[],
        }
    }
}

/// One computed section: its rows (the declared columns, in order) and totals.
#[derive(Debug, Clone)]
pub struct SectionData {
    /// The definition.
    pub section: Section,
    /// The rows.
    pub batch: RecordBatch,
    /// The totals row (a cell per column; `Null` under the columns that are not summed).
    pub totals: Option<Vec<Cell>>,
}

impl SectionData {
    /// The cells of column `i`.
    pub fn column_cells(&self, i: usize) -> Result<Vec<Cell>, String> {
        super::cells::cells(self.batch.column(i))
    }
}

/// The data's reference day (the UTC day of the latest deal update), which default periods
/// are counted back from; `None` before the first build.
pub async fn reference_date(session: &QuerySession) -> Result<Option<NaiveDate>> {
    if !session.tables().iter().any(|t| t == "stg_reference_time") {
        return Ok(None);
    }
    let batches = session.query("select cast(max(reference_time) as date) as d from stg_reference_time").await?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    for b in &batches {
        let a = cast(b.column(0), &DataType::Date32).map_err(dealhouse_warehouse::Error::from)?;
        let a = a.as_primitive::<Date32Type>();
        if !a.is_empty() && !a.is_null(0) {
            return Ok(Some(epoch + chrono::Duration::days(i64::from(a.value(0)))));
        }
    }
    Ok(None)
}

/// Computes every section of `report` for `period` and `filters` on `session`.
pub async fn compute(
    report: &Report,
    session: &QuerySession,
    period: &Period,
    filters: &Filters,
) -> Result<Vec<SectionData>> {
    let mut out = vec![];
    for section in &report.sections {
        out.push(compute_section(report, section, session, period, filters).await?);
    }
    Ok(out)
}

async fn compute_section(
    report: &Report,
    section: &Section,
    session: &QuerySession,
    period: &Period,
    filters: &Filters,
) -> Result<SectionData> {
    let fail = |message: String| Error::Report {
        report: report.id.clone(),
        section: Some(section.id.clone()),
        message: format!("{message} (defined in {})", report.origin),
    };
    let (sql, inner) = match (&section.sql, &section.metrics) {
        (Some(text), _) => sql_section(report, section, text, period, filters),
        (None, Some(spec)) => metrics_section(report, spec, period, filters).map_err(&fail)?,
        (None, None) => return Err(fail("has neither `sql` nor `metrics`".into())),
    };
    let columns: Vec<String> = section.columns.iter().map(|c| format!("r.{}", c.name)).collect();
    // Every column after the declared order, so equal keys still come out in one order and a
    // re-export is byte-identical.
    let mut order: Vec<String> = section
        .order_by
        .iter()
        .map(|o| {
            let mut w = o.split_whitespace();
            let col = w.next().unwrap_or_default();
            match w.next() {
                Some("desc") => format!("r.{col} desc nulls last"),
                _ => format!("r.{col} asc nulls last"),
            }
        })
        .collect();
    order.extend(section.columns.iter().map(|c| format!("r.{} asc nulls last", c.name)));
    let text = format!("select {} from ({inner}) r order by {}", columns.join(", "), order.join(", "));
    let params = sql.into_params();
    let df = session.plan_read_only(&text).await.map_err(|e| {
        fail(format!(
            "{e}; the section's columns must be output columns of its query, and its query read-only SQL over the \
             warehouse's tables (has `dealhouse build` run?)"
        ))
    })?;
    let df = if params.is_empty() { df } else { df.with_param_values(params).map_err(|e| fail(e.to_string()))? };
    let planned = df.schema().inner().clone();
    let batches = df.collect().await.map_err(|e| fail(e.to_string()))?;
    let schema = batches.first().map_or(planned, |b| b.schema());
    let batch = concat_batches(&schema, &batches).map_err(|e| fail(e.to_string()))?;
    let totals = if section.totals {
        let cols: Vec<_> = section.columns.iter().map(|c| c.format).zip(batch.columns().iter().cloned()).collect();
        Some(totals(&cols).map_err(fail)?)
    } else {
        None
    };
    Ok(SectionData { section: section.clone(), batch, totals })
}

/// A SQL section: its placeholders bound, the filters the report takes applied to the columns
/// the section names for them.
fn sql_section(report: &Report, section: &Section, text: &str, period: &Period, filters: &Filters) -> (Sql, String) {
    let mut sql = Sql::default();
    let (first_month, last_month) = period.months();
    let mut body = String::new();
    let mut at = 0;
    for (offset, name) in super::definition::placeholders(text) {
        body.push_str(&text[at..offset]);
        let day = match name {
            "period_start" => period.start,
            "period_end" => period.end,
            "first_month" => first_month,
            _ => last_month,
        };
        body.push_str(&sql.date(day));
        at = offset + 1 + name.len();
    }
    body.push_str(&text[at..]);
    let mut conds = vec![];
    for (p, column) in &section.filters {
        let values = filters.get(*p);
        if values.is_empty() || !report.takes(*p) {
            continue;
        }
        let list: Vec<String> = values.iter().map(|v| sql.text(v)).collect();
        conds.push(format!("f.{column} in ({})", list.join(", ")));
    }
    let inner =
        if conds.is_empty() { body } else { format!("select * from ({body}) f {}", crate::query::where_all(&conds)) };
    (sql, inner)
}

/// A metrics section: the same request `GET /api/v1/metrics` would get, resolved and planned
/// by the same code, so its numbers are the endpoint's.
fn metrics_section(
    report: &Report,
    spec: &MetricsSpec,
    period: &Period,
    filters: &Filters,
) -> Result<(Sql, String), String> {
    let mut pairs: Vec<(String, String)> = vec![("measures".into(), spec.measures.join(","))];
    if !spec.by.is_empty() {
        pairs.push(("by".into(), spec.by.join(",")));
    }
    match spec.period {
        MetricsPeriod::Months => {
            let (from, to) = period.months();
            pairs.push(("from".into(), from.format("%Y-%m").to_string()));
            pairs.push(("to".into(), to.format("%Y-%m").to_string()));
        }
        MetricsPeriod::Days => {
            let days: Vec<String> = period.days().iter().map(|d| d.format("%Y-%m-%d").to_string()).collect();
            pairs.push(("day".into(), days.join(",")));
        }
        MetricsPeriod::None => {}
    }
    for (dim, values) in &spec.filters {
        pairs.push((dim.clone(), values.join(",")));
    }
    for p in [Parameter::Holding, Parameter::Branch, Parameter::Manager] {
        let values = filters.get(p);
        if !values.is_empty() && report.takes(p) {
            pairs.push((p.name().to_string(), values.join(",")));
        }
    }
    let catalog = catalog().map_err(|e| format!("api/metrics.toml is invalid: {e}"))?;
    let args = Args::parse(measures::PATH, pairs, &measures::params()).map_err(|e| e.message)?;
    let query = MetricsQuery::resolve(catalog, &args).map_err(|e| e.message)?;
    query.sql().map_err(|e| e.message)
}
