//! The report file format (`api/reports/<id>.toml` built in, `<project>/reports/<id>.toml` for a
//! project's own or overriding ones) and its validation. A report has ru/en titles, the period
//! kind it is naturally about, the parameters it takes and one or more sections, each either a
//! SQL query over the warehouse or a query of the semantic layer (`api/metrics.toml`), with
//! titled, formatted columns and an optional totals row.
//!
//! Every mistake is reported as `file:line: key `sections[1].columns[0].format`: what and the
//! fix`, placed by the same span lookup as `dealhouse.toml` ([`ConfigText`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dealhouse_warehouse::config::{ConfigText, KeyPath};
use serde::{Deserialize, Serialize};

use super::period::PeriodKind;
use crate::semantic::{Catalog, catalog};
use crate::{Error, Result};

/// The built-in reports, compiled in (a project file with the same id replaces one).
const BUILT_IN: &[(&str, &str)] = &[
    ("daily-managers", include_str!("../../reports/daily-managers.toml")),
    ("weekly-branch", include_str!("../../reports/weekly-branch.toml")),
    ("monthly-holding", include_str!("../../reports/monthly-holding.toml")),
    ("stalled", include_str!("../../reports/stalled.toml")),
];

/// The folder of a project's own reports.
pub const PROJECT_REPORTS_DIR: &str = "reports";

/// A text in both languages of the UI.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Titles {
    /// Russian.
    pub ru: String,
    /// English.
    pub en: String,
}

/// A parameter a report can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// The period (`--period`).
    Period,
    /// Holdings (`--holding`).
    Holding,
    /// Branches (`--branch`, and `--per-branch`).
    Branch,
    /// Managers (`--manager`).
    Manager,
}

impl Parameter {
    /// Its name, also the semantic layer's dimension it filters.
    pub fn name(self) -> &'static str {
        match self {
            Self::Period => "period",
            Self::Holding => "holding",
            Self::Branch => "branch",
            Self::Manager => "manager",
        }
    }
}

/// How a column's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnFormat {
    /// Text as is.
    Text,
    /// Roubles, exact decimals.
    Money,
    /// A share (0.25 is 25 %).
    Percent,
    /// A calendar day.
    Date,
    /// A whole number; summed in the totals row.
    Count,
    /// Any other number (hours, days); summed in the totals row.
    Number,
}

impl ColumnFormat {
    /// Whether the totals row sums it (a share or a text has no meaningful sum).
    pub fn is_summed(self) -> bool {
        matches!(self, Self::Money | Self::Count | Self::Number)
    }
}

/// One column of a section.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The query's output column.
    pub name: String,
    /// Its header.
    pub title: Titles,
    /// How its values are shown.
    pub format: ColumnFormat,
}

/// Which period filter a metrics section gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsPeriod {
    /// `from`/`to`: the months the period touches (monthly measures; a week in two months reads both).
    #[default]
    Months,
    /// `day`: every day of the period (measures with a `day` dimension).
    Days,
    /// None: measures of the state now (stalled deals, the pipeline).
    None,
}

/// A query of the semantic layer, as `GET /api/v1/metrics` takes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// Measures.
    pub measures: Vec<String>,
    /// Dimensions to group by.
    #[serde(default)]
    pub by: Vec<String>,
    /// Fixed filters: dimension -> values.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<String>>,
    /// How the report's period filters it.
    #[serde(default)]
    pub period: MetricsPeriod,
}

/// One section: a sheet of the XLSX, a block of the CSV.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    /// Short id (`[a-z0-9_]`), unique in the report.
    pub id: String,
    /// Its title (the sheet name: at most 31 characters, none of `[]:*?/\`).
    pub title: Titles,
    /// A SELECT over the warehouse; `:period_start`, `:period_end` (days, inclusive),
    /// `:first_month`, `:last_month` (first days of the months the period touches) are bound.
    #[serde(default)]
    pub sql: Option<String>,
    /// Or a semantic-layer query.
    #[serde(default)]
    pub metrics: Option<MetricsSpec>,
    /// SQL sections: which output column each filter parameter (holding, branch, manager) filters.
    #[serde(default)]
    pub filters: BTreeMap<Parameter, String>,
    /// Row order: output columns, each optionally followed by `desc`.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Whether a totals row sums the money, count and number columns.
    #[serde(default)]
    pub totals: bool,
    /// The columns shown, in order.
    pub columns: Vec<Column>,
}

/// A report file as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ReportFile {
    title: Titles,
    description: Titles,
    period: PeriodKind,
    parameters: Vec<Parameter>,
    sections: Vec<Section>,
}

/// A loaded, validated report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Its id: the file's stem.
    pub id: String,
    /// Where it was read from: `built-in` or the file's path.
    pub origin: String,
    /// Its title.
    pub title: Titles,
    /// What it is for.
    pub description: Titles,
    /// The kind of period it is naturally about (the default period is the last complete one).
    pub period: PeriodKind,
    /// The parameters it takes.
    pub parameters: Vec<Parameter>,
    /// Its sections.
    pub sections: Vec<Section>,
}

impl Report {
    /// Whether it takes `p`.
    pub fn takes(&self, p: Parameter) -> bool {
        self.parameters.contains(&p)
    }

    /// Parses and validates `text`, read from `path` (errors name its lines).
    pub fn parse(id: &str, path: &Path, text: &str) -> Result<Self> {
        let file = ConfigText::new(path, text);
        let raw: ReportFile = file.deserialize()?;
        let catalog = catalog().map_err(|e| Error::Config(format!("api/metrics.toml is invalid: {e}")))?;
        if let Some(issue) = validate(id, &raw, catalog) {
            return Err(file.error(issue).into());
        }
        let origin = if path.is_absolute() { path.display().to_string() } else { "built-in".to_string() };
        Ok(Self {
            id: id.to_string(),
            origin,
            title: raw.title,
            description: raw.description,
            period: raw.period,
            parameters: raw.parameters,
            sections: raw.sections,
        })
    }
}

/// The reports of a project: the built-in ones, replaced or joined by `<dir>/reports/*.toml`.
pub fn load_reports(project_dir: &Path) -> Result<BTreeMap<String, Report>> {
    let mut out = BTreeMap::new();
    for (id, text) in BUILT_IN {
        out.insert(id.to_string(), Report::parse(id, &PathBuf::from(format!("api/reports/{id}.toml")), text)?);
    }
    let dir = project_dir.join(PROJECT_REPORTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(out) };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    for path in files {
        let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::Config(format!("cannot read report file {}: {e}", path.display())))?;
        let path = std::path::absolute(&path).unwrap_or(path);
        out.insert(id.clone(), Report::parse(&id, &path, &text)?);
    }
    Ok(out)
}

fn is_id(s: &str, extra: char) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == extra)
}

/// Names of the bound values a SQL section may use.
pub const SQL_PLACEHOLDERS: [&str; 4] = ["period_start", "period_end", "first_month", "last_month"];

/// Every `:name` in `sql` (not `::type` casts), with its byte offset.
pub fn placeholders(sql: &str) -> Vec<(usize, &str)> {
    let bytes = sql.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b':' if !quoted => {
                let after_colon = i > 0 && bytes[i - 1] == b':';
                let next_colon = bytes.get(i + 1) == Some(&b':');
                if !after_colon && !next_colon {
                    let end = sql[i + 1..]
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(sql.len(), |n| i + 1 + n);
                    if end > i + 1 {
                        out.push((i, &sql[i + 1..end]));
                        i = end;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first issue of a report, if any.
fn validate(id: &str, r: &ReportFile, catalog: &Catalog) -> Option<dealhouse_warehouse::config::ConfigIssue> {
    let root = KeyPath::root();
    if !is_id(id, '-') {
        return Some(
            root.issue(format!("the report id `{id}` (the file name) may hold only a-z, 0-9 and `-`; rename the file")),
        );
    }
    if !r.parameters.contains(&Parameter::Period) {
        return Some(root.key("parameters").issue("every report takes `period` (it names the file); add it"));
    }
    if r.sections.is_empty() {
        return Some(root.key("sections").issue("a report needs at least one [[sections]]"));
    }
    let filters: Vec<Parameter> = r.parameters.iter().copied().filter(|p| *p != Parameter::Period).collect();
    let mut ids = BTreeSet::new();
    for (i, s) in r.sections.iter().enumerate() {
        let at = root.key("sections").index(i);
        if !is_id(&s.id, '_') {
            return Some(at.key("id").issue(format!("section id `{}` may hold only a-z, 0-9 and `_`", s.id)));
        }
        if !ids.insert(s.id.as_str()) {
            return Some(at.key("id").issue(format!("section id `{}` is used twice; ids must be unique", s.id)));
        }
        let sheet = &s.title.ru;
        if sheet.chars().count() > 31 || sheet.contains(['[', ']', ':', '*', '?', '/', '\\']) || sheet.is_empty() {
            return Some(at.keys(["title", "ru"]).issue(format!(
                "`{sheet}` names the section's XLSX sheet: use 1 to 31 characters and none of []:*?/\\"
            )));
        }
        let outputs: Option<BTreeSet<&str>> = match (&s.sql, &s.metrics) {
            (Some(_), Some(_)) | (None, None) => {
                return Some(at.issue(format!(
                    "section `{}` needs exactly one of `sql` (a SELECT over the warehouse) or `metrics` \
                     (measures, by, filters, as GET /api/v1/metrics takes them)",
                    s.id
                )));
            }
            (Some(sql), None) => {
                for (_, name) in placeholders(sql) {
                    if !SQL_PLACEHOLDERS.contains(&name) {
                        return Some(at.key("sql").issue(format!(
                            "unknown placeholder `:{name}`; the bound values are :{}",
                            SQL_PLACEHOLDERS.join(", :")
                        )));
                    }
                }
                for p in &filters {
                    if !s.filters.contains_key(p) {
                        return Some(at.key("filters").issue(format!(
                            "the report takes `{0}`, so this SQL section must say which output column it filters: \
                             filters = {{ {0} = \"{0}_id\" }}",
                            p.name()
                        )));
                    }
                }
                if s.filters.contains_key(&Parameter::Period) {
                    return Some(at.keys(["filters", "period"]).issue(
                        "the period enters SQL as :period_start/:period_end, not as a column filter; remove it",
                    ));
                }
                None
            }
            (None, Some(m)) => {
                if !s.filters.is_empty() {
                    return Some(at.key("filters").issue(
                        "a metrics section is filtered by the semantic layer's dimensions; put fixed filters in \
                         `metrics.filters` and remove `filters`",
                    ));
                }
                if let Some(issue) = validate_metrics(&at.key("metrics"), m, &filters, catalog) {
                    return Some(issue);
                }
                Some(m.by.iter().chain(&m.measures).map(String::as_str).collect())
            }
        };
        if s.columns.is_empty() {
            return Some(at.key("columns").issue("a section needs at least one [[sections.columns]]"));
        }
        let mut names = BTreeSet::new();
        for (j, c) in s.columns.iter().enumerate() {
            if !is_id(&c.name, '_') {
                return Some(
                    at.key("columns")
                        .index(j)
                        .key("name")
                        .issue(format!("column `{}` must be an output column name (a-z, 0-9, `_`)", c.name)),
                );
            }
            if !names.insert(c.name.as_str()) {
                return Some(
                    at.key("columns").index(j).key("name").issue(format!("column `{}` is listed twice", c.name)),
                );
            }
            if let Some(outputs) = &outputs
                && !outputs.contains(c.name.as_str())
            {
                return Some(at.key("columns").index(j).key("name").issue(format!(
                    "`{}` is not an output of this metrics section; its outputs are its `by` and `measures`: {}",
                    c.name,
                    outputs.iter().copied().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        for (col, p) in s.filters.values().zip(s.filters.keys()) {
            if !is_id(col, '_') {
                return Some(at.keys(["filters", p.name()]).issue(format!("`{col}` is not a column name")));
            }
        }
        for (j, o) in s.order_by.iter().enumerate() {
            let mut words = o.split_whitespace();
            let col = words.next().unwrap_or_default();
            let dir = words.next();
            if !names.contains(col) || !matches!(dir, None | Some("asc" | "desc")) || words.next().is_some() {
                return Some(at.key("order_by").index(j).issue(format!(
                    "`{o}` should be one of the section's columns, optionally followed by asc or desc"
                )));
            }
        }
        if s.totals && !s.columns.iter().any(|c| c.format.is_summed()) {
            return Some(at.key("totals").issue(
                "a totals row sums money, count and number columns and this section has none; remove `totals`",
            ));
        }
    }
    None
}

fn validate_metrics(
    at: &KeyPath,
    m: &MetricsSpec,
    filters: &[Parameter],
    catalog: &Catalog,
) -> Option<dealhouse_warehouse::config::ConfigIssue> {
    if m.measures.is_empty() {
        return Some(at.key("measures").issue(format!("no measures; valid measures: {}", catalog.measure_names())));
    }
    for (i, name) in m.measures.iter().enumerate() {
        let Some(measure) = catalog.measures.get(name) else {
            return Some(
                at.key("measures")
                    .index(i)
                    .issue(format!("unknown measure `{name}`; valid measures: {}", catalog.measure_names())),
            );
        };
        let table = catalog.tables.get(&measure.table)?;
        let dims: Vec<&str> =
            m.by.iter()
                .map(String::as_str)
                .chain(m.filters.keys().map(String::as_str))
                .chain(filters.iter().map(|p| p.name()))
                .chain((m.period == MetricsPeriod::Days).then_some("day"))
                .chain((m.period == MetricsPeriod::Months).then_some(crate::semantic::PERIOD_DIMENSION))
                .collect();
        for d in dims {
            if !catalog.dimensions.contains_key(d) {
                return Some(at.issue(format!("unknown dimension `{d}`; valid: {}", catalog.dimension_names())));
            }
            if !table.dimensions.contains_key(d) {
                return Some(at.key("measures").index(i).issue(format!(
                    "measure `{name}` (table `{}`) has no `{d}` dimension (it has {}); the report's parameters, \
                     `by`, `filters` and `period` all need it: drop the measure or what asks for `{d}`",
                    measure.table,
                    table.dimensions.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match Report::parse("r", Path::new("/p/reports/r.toml"), text) {
            Ok(_) => panic!("should be refused:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    const HEAD: &str = "title = { ru = \"Отчёт\", en = \"Report\" }\n\
                        description = { ru = \"о\", en = \"d\" }\n\
                        period = \"month\"\n\
                        parameters = [\"period\", \"branch\"]\n";

    #[test]
    fn every_built_in_report_loads() {
        let all = load_reports(Path::new("/nonexistent")).unwrap();
        assert_eq!(
            all.keys().cloned().collect::<Vec<_>>(),
            ["daily-managers", "monthly-holding", "stalled", "weekly-branch"]
        );
    }

    #[test]
    fn mistakes_name_their_file_line_and_key() {
        // Line 9: the metrics line with an unknown measure.
        let e = error(&format!(
            "{HEAD}\n[[sections]]\nid = \"a\"\ntitle = {{ ru = \"А\", en = \"A\" }}\nmetrics = {{ measures = [\"won_amount\", \"bogus\"] }}\ncolumns = []\n"
        ));
        assert!(e.starts_with("/p/reports/r.toml:9: key `sections[0].metrics.measures[1]`"), "{e}");
        assert!(e.contains("unknown measure `bogus`") && e.contains("win_rate"), "{e}");

        // A SQL section must say which column the report's `branch` filters.
        let e = error(&format!(
            "{HEAD}\n[[sections]]\nid = \"a\"\ntitle = {{ ru = \"А\", en = \"A\" }}\nsql = \"select 1 as x\"\n\
             [[sections.columns]]\nname = \"x\"\ntitle = {{ ru = \"x\", en = \"x\" }}\nformat = \"count\"\n"
        ));
        assert!(e.starts_with("/p/reports/r.toml:6: key `sections[0].filters`") && e.contains("branch = "), "{e}");

        // A format that does not exist: the serde error's own span.
        let e = error(&format!(
            "{HEAD}\n[[sections]]\nid = \"a\"\ntitle = {{ ru = \"А\", en = \"A\" }}\nsql = \"select :period_start as x\"\n\
             filters = {{ branch = \"branch_id\" }}\n[[sections.columns]]\nname = \"x\"\ntitle = {{ ru = \"x\", en = \"x\" }}\n\
             format = \"euro\"\n"
        ));
        assert!(e.starts_with("/p/reports/r.toml:14:") && e.contains("euro") && e.contains("money"), "{e}");

        // A placeholder that is not bound.
        let e = error(&format!(
            "{HEAD}\n[[sections]]\nid = \"a\"\ntitle = {{ ru = \"А\", en = \"A\" }}\nsql = \"select x::int from t where d = :day\"\n\
             filters = {{ branch = \"branch_id\" }}\n[[sections.columns]]\nname = \"x\"\ntitle = {{ ru = \"x\", en = \"x\" }}\nformat = \"count\"\n"
        ));
        assert!(e.starts_with("/p/reports/r.toml:9: key `sections[0].sql`") && e.contains("`:day`"), "{e}");

        // A metrics column that is neither a dimension nor a measure of the section.
        let e = error(&format!(
            "{HEAD}\n[[sections]]\nid = \"a\"\ntitle = {{ ru = \"А\", en = \"A\" }}\nmetrics = {{ measures = [\"won_amount\"], by = [\"branch\"] }}\n\
             [[sections.columns]]\nname = \"branch\"\ntitle = {{ ru = \"x\", en = \"x\" }}\nformat = \"text\"\n\
             [[sections.columns]]\nname = \"won\"\ntitle = {{ ru = \"x\", en = \"x\" }}\nformat = \"money\"\n"
        ));
        assert!(e.starts_with("/p/reports/r.toml:15: key `sections[0].columns[1].name`"), "{e}");
    }

    #[test]
    fn placeholders_skip_casts_and_strings() {
        let found: Vec<&str> =
            placeholders("select a::date, ':x' from t where d between :period_start and :period_end")
                .into_iter()
                .map(|(_, n)| n)
                .collect();
        assert_eq!(found, ["period_start", "period_end"]);
    }
}
