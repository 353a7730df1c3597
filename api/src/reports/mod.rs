//! Reports and `dealhouse export`: report definitions (built-in `api/reports/*.toml`, a
//! project's `reports/*.toml`), periods, computing sections on a (possibly branch-scoped) query
//! session, rendering XLSX/CSV/Parquet/JSON, and atomic writes to a folder or an object store.
//!
//! [`export`] is the one entry point: a report, a period, filters, a format and a destination
//! in, the files written out. The CLI calls it; a scheduler can call it the same way.
//!
//! - `definition.rs`: the file format and its validation (file:line:key errors);
//! - `period.rs`: months, ISO weeks, days, and the default (last complete) period;
//! - `run.rs`: sections -> Arrow batches and totals; `cells.rs`: typed cell values;
//! - `render.rs` (CSV, JSON, Parquet) and `xlsx.rs`: bytes of one file;
//! - `write.rs`: destinations and atomic writes.

pub(crate) mod cells;
mod definition;
mod period;
mod render;
mod run;
mod write;
pub(crate) mod xlsx;

use std::collections::BTreeMap;

use chrono::NaiveDate;
use dealhouse_warehouse::scope::Scope;
use dealhouse_warehouse::session::QuerySession;
use dealhouse_warehouse::{Project, Warehouse};

pub use cells::Cell;
pub use definition::{Column, ColumnFormat, PROJECT_REPORTS_DIR, Parameter, Report, Section, Titles, load_reports};
pub use period::{PERIOD_SYNTAX, Period, PeriodKind};
pub use render::{CsvOptions, Format, Language, ReportData};
pub use run::reference_date;
pub use run::{Filters, SectionData};
pub use write::Destination;
pub use xlsx::{COUNT_FORMAT, DATE_FORMAT, MONEY_FORMAT, PERCENT_FORMAT};

use crate::{Error, Result};

/// What to export, and where.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// The report id.
    pub report: String,
    /// The period; `None` for the last complete one of the report's kind before the data's
    /// reference day.
    pub period: Option<Period>,
    /// Holding, branch and manager filters (the report must take each one given).
    pub filters: Filters,
    /// The file format.
    pub format: Format,
    /// Where to write.
    pub destination: Destination,
    /// One file per branch (each computed in that branch's scope) instead of one file.
    pub per_branch: bool,
    /// Titles' language.
    pub language: Language,
    /// CSV options.
    pub csv: CsvOptions,
}

/// One file written.
#[derive(Debug, Clone)]
pub struct Written {
    /// Where (a path or URL).
    pub location: String,
    /// The branch whose file it is (`--per-branch`).
    pub branch: Option<String>,
    /// Its size.
    pub bytes: usize,
    /// Rows over all sections (totals rows not counted).
    pub rows: usize,
}

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportOutcome {
    /// The report.
    pub report: String,
    /// The period exported.
    pub period: Period,
    /// Whether it was the default (not given).
    pub period_is_default: bool,
    /// The data's reference day.
    pub reference_date: Option<NaiveDate>,
    /// The files, in the order written.
    pub files: Vec<Written>,
}

/// Progress of a run: called once with the number of files planned, then after each file.
pub trait ExportProgress: Sync {
    /// `files` will be written.
    fn planned(&self, files: usize);
    /// One is written.
    fn written(&self, file: &Written);
}

/// No progress reporting.
pub struct NoProgress;

impl ExportProgress for NoProgress {
    fn planned(&self, _: usize) {}
    fn written(&self, _: &Written) {}
}

/// The file name under a folder destination: `<report>/[<branch>/]<period>.<ext>`.
pub fn relative_name(report: &str, branch: Option<&str>, period: &Period, format: Format) -> String {
    match branch {
        Some(b) => format!("{report}/{b}/{}.{}", period.label(), format.extension()),
        None => format!("{report}/{}.{}", period.label(), format.extension()),
    }
}

/// Computes `request.report` and writes its file (or one per branch); the project's reports
/// are loaded from `project.dir`.
pub async fn export(
    project: &Project,
    warehouse: &Warehouse,
    request: &ExportRequest,
    progress: &dyn ExportProgress,
) -> Result<ExportOutcome> {
    let reports = load_reports(&project.dir)?;
    let fail = |message: String| Error::Report { report: request.report.clone(), section: None, message };
    let Some(report) = reports.get(&request.report) else {
        return Err(fail(format!(
            "no such report; reports: {} (a project's own go in {}/<id>.toml)",
            reports.keys().cloned().collect::<Vec<_>>().join(", "),
            PROJECT_REPORTS_DIR
        )));
    };
    for p in [Parameter::Holding, Parameter::Branch, Parameter::Manager] {
        if !request.filters.get(p).is_empty() && !report.takes(p) {
            return Err(fail(format!(
                "it does not take `--{}`; it takes: {} ({})",
                p.name(),
                report.parameters.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
                report.origin
            )));
        }
    }
    if request.per_branch && request.destination.is_single_file() {
        return Err(fail("--per-branch writes one file per branch: give --out a folder, not a file name".into()));
    }
    if request.per_branch && !report.takes(Parameter::Branch) {
        return Err(fail("it takes no `branch`, so it cannot be split --per-branch".into()));
    }
    let session = QuerySession::open(warehouse).await?;
    let reference_date = run::reference_date(&session).await?;
    let (period, period_is_default) = match request.period {
        Some(p) => (p, false),
        None => match reference_date {
            Some(day) => (Period::last_complete(report.period, day), true),
            None => {
                return Err(fail(format!(
                    "the warehouse has no reference date yet (no deals built), so there is no default period: \
                     run `dealhouse build`, or give --period ({PERIOD_SYNTAX})"
                )));
            }
        },
    };
    let mut outcome =
        ExportOutcome { report: report.id.clone(), period, period_is_default, reference_date, files: vec![] };
    let branches: Vec<Option<String>> = if request.per_branch {
        branches_of(project, &request.filters).into_iter().map(Some).collect()
    } else {
        vec![None]
    };
    progress.planned(branches.len());
    for branch in branches {
        let scoped = match &branch {
            Some(b) => session.scoped(&Scope::for_branches(&project.config, std::slice::from_ref(b))?).await?,
            None => session.clone(),
        };
        let sections = run::compute(report, &scoped, &period, &request.filters).await?;
        let rows = sections.iter().map(|s| s.batch.num_rows()).sum();
        let data = ReportData {
            report: report.id.clone(),
            title: report.title.clone(),
            period,
            reference_date,
            filters: request.filters.clone(),
            branch: branch.clone(),
            sections,
        };
        let bytes = match request.format {
            Format::Xlsx => xlsx::xlsx(&data, request.language),
            Format::Csv => render::csv(&data, request.language, request.csv),
            Format::Parquet => render::parquet(&data),
            Format::Json => render::json(&data),
        }
        .map_err(|e| fail(format!("cannot render {}: {e}", request.format.extension())))?;
        let size = bytes.len();
        let name = relative_name(&report.id, branch.as_deref(), &period, request.format);
        let location = request.destination.write(&name, bytes).await.map_err(fail)?;
        let written = Written { location, branch, bytes: size, rows };
        progress.written(&written);
        outcome.files.push(written);
    }
    Ok(outcome)
}

/// The branches `--per-branch` splits into: every configured branch, narrowed by the holding
/// and branch filters.
fn branches_of(project: &Project, filters: &Filters) -> Vec<String> {
    let mut out: BTreeMap<String, ()> = BTreeMap::new();
    for b in &project.config.organisation.branches {
        let b = b.get_ref();
        let holding_ok = filters.holding.is_empty() || filters.holding.contains(&b.holding);
        let branch_ok = filters.branch.is_empty() || filters.branch.contains(&b.id);
        if holding_ok && branch_ok {
            out.insert(b.id.clone(), ());
        }
    }
    out.into_keys().collect()
}
