//! The dashboard definition format (`definitions/<id>.toml`), its validation, and its JSON form
//! (the same structs serialized: `GET /api/v1/dashboards/{id}` serves them to the browser).
//!
//! ```toml
//! id = "overview"            # = the file stem
//! order = 1                  # menu position
//! title = { ru = "Обзор", en = "Overview" }
//! description = { ru = "...", en = "..." }
//!
//! [[panels]]
//! id = "won"
//! title = { ru = "Выиграно", en = "Won" }
//! chart = "kpi"              # kpi, line, bar, funnel, kanban, table, heatmap, sparkline-table
//! width = 1                  # columns of the 4-column grid
//! query = { measures = ["won_amount"] }          # a /api/v1/metrics query ...
//! # query = { endpoint = "funnel", params = { limit = "10" } }   # ... or a named endpoint
//! fields = [{ key = "won_amount", format = "rub" }]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A text in both UI languages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Russian (the default language).
    pub ru: String,
    /// English.
    pub en: String,
}

/// One dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// Id, used in URLs (`#/<id>`); must equal the file stem.
    pub id: String,
    /// Position in the menu (ascending).
    pub order: u32,
    /// Menu and page title.
    pub title: Label,
    /// One or two sentences under the title: what the page answers.
    #[serde(default)]
    pub description: Label,
    /// Panels, laid out left to right, top to bottom on a 4-column grid.
    pub panels: Vec<Panel>,
}

/// How a panel draws its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Chart {
    /// One big number (the first field), with its change vs the previous period and its plan.
    Kpi,
    /// Lines over `x` (usually month or day), one per field.
    Line,
    /// Bars per `x`, one series per field.
    Bar,
    /// Main-path stages with deals and money reaching each and conversions between them.
    Funnel,
    /// Columns of open deals by stage, with the money in each column's header.
    Kanban,
    /// A plain table of the fields.
    Table,
    /// A grid: rows by `y`, columns by `x`, colour by the first field.
    Heatmap,
    /// A table with a small line per row drawn from the row's `series`.
    SparklineTable,
}

/// Which months a panel's query covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The months chosen in the shared period filter.
    #[default]
    Selected,
    /// Twelve months ending with the filter's last month (trend lines, sparklines, cohorts).
    Trend,
    /// No month filter (state now: the pipeline, lifecycle states).
    None,
}

/// A shared filter a panel's query honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// Holding ids.
    Holding,
    /// Branch ids.
    Branch,
    /// Manager ids.
    Manager,
    /// Pipeline ids: panels over stages take it (a pipeline is its own process); unless the user
    /// picks one, or all, the page passes the main pipeline (most deals) when there are several.
    Pipeline,
}

fn all_filters() -> Vec<Filter> {
    vec![Filter::Holding, Filter::Branch, Filter::Manager]
}

/// Where a panel's rows come from: exactly one of `measures` (the semantic layer) or `endpoint`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Measures of `GET /api/v1/metrics`.
    #[serde(default)]
    pub measures: Vec<String>,
    /// Dimensions to group the measures by.
    #[serde(default)]
    pub by: Vec<String>,
    /// A dashboard-data endpoint by its path under `/api/v1/` (`funnel`, `managers/daily`, ...).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The key of the endpoint's answer holding the rows (default `rows`; `totals`, `states`, ...).
    #[serde(default)]
    pub field: Option<String>,
    /// Fixed query parameters added to every request (`stage = "proposal"`, `limit = "20"`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// Which months the query covers.
    #[serde(default)]
    pub period: Period,
    /// The shared filters passed on; the others are dropped (a measure whose table has no branch
    /// grain cannot be filtered by branch), and the panel says so while they are set.
    #[serde(default = "all_filters")]
    pub filters: Vec<Filter>,
}

/// How a value is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Integer count.
    Count,
    /// Money in RUB (`1 234 567 ₽`).
    Rub,
    /// Share, shown as a percentage.
    Ratio,
    /// Days, one decimal.
    Days,
    /// Hours, shown as days when long.
    Hours,
    /// A decimal number.
    Number,
    /// Text as is.
    #[default]
    Text,
    /// A calendar day.
    Date,
    /// A month (`март 2026`).
    Month,
    /// An instant, shown in the row's branch time zone.
    Datetime,
    /// A branch id, shown as its name.
    Branch,
    /// A holding id, shown as its name.
    Holding,
    /// A manager id, shown as the manager's name.
    Manager,
    /// A stage id, shown as its label.
    Stage,
}

/// A value a panel shows: a column of a table, a line or a bar series, a KPI's number.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Key in the answer's rows.
    pub key: String,
    /// Column or series label (defaults to the key).
    #[serde(default)]
    pub label: Option<Label>,
    /// How the value is shown.
    #[serde(default)]
    pub format: Format,
    /// A flag key in the same rows (`cohort_mature`): where it is false the value is not final
    /// yet (a young creation cohort), so its point is drawn hollow and its KPI carries a note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mature: Option<String>,
}

/// Whether a larger KPI is good news.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// More is better (won amount).
    #[default]
    Up,
    /// Less is better (churn).
    Down,
}

/// What a panel compares its figures with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// The period of the same length just before the selected one.
    PreviousPeriod,
    /// The user picks: the previous period or another branch, drawn side by side.
    Choice,
}

/// When a panel is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Show {
    /// Always.
    #[default]
    Always,
    /// Only when exactly one manager is selected (the manager's own page).
    OneManager,
    /// Only when no single manager is selected.
    NotOneManager,
}

/// One panel of a dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    /// Id, unique within the dashboard (DOM ids and tests use it).
    pub id: String,
    /// Heading.
    pub title: Label,
    /// How it is drawn.
    pub chart: Chart,
    /// Columns of the 4-column grid it spans.
    #[serde(default = "default_width")]
    pub width: u8,
    /// Where its rows come from.
    pub query: Query,
    /// The values it shows, in order.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// Key of the x axis (line, bar, heatmap columns).
    #[serde(default)]
    pub x: Option<String>,
    /// Key of the heatmap rows.
    #[serde(default)]
    pub y: Option<String>,
    /// Key rows are grouped under (sparkline-table: `holding_id`).
    #[serde(default)]
    pub group: Option<String>,
    /// Sparkline: the key of each row's series array and the key plotted in it, `series.key`.
    #[serde(default)]
    pub spark: Option<String>,
    /// KPI: the planned metric its plan comes from (`won_amount`, `calls`, ...).
    #[serde(default)]
    pub plan: Option<String>,
    /// KPI: which direction is good.
    #[serde(default)]
    pub better: Better,
    /// What the figures are compared with.
    #[serde(default)]
    pub compare: Option<Compare>,
    /// Drill-down: `/api/v1/deals` parameters for the deals behind a number; `{key}` takes the
    /// clicked row's value. The shared filters are added.
    #[serde(default)]
    pub drill: Option<BTreeMap<String, String>>,
    /// Clicking a row sets these shared filters from row keys (`branch = "branch_id"`).
    #[serde(default)]
    pub click_filter: BTreeMap<String, String>,
    /// When the panel is shown.
    #[serde(default)]
    pub show: Show,
    /// A short note under the panel (a definition, a caveat).
    #[serde(default)]
    pub note: Option<Label>,
    /// Sums the count fields of rows whose `x` (a day) falls in the same ISO week.
    #[serde(default)]
    pub rollup: Option<Rollup>,
    /// Keeps only rows whose numeric value at each key is at least the given one
    /// (`at_least = { won_deals = 2 }`: returning clients), applied in the browser.
    #[serde(default)]
    pub at_least: BTreeMap<String, f64>,
    /// Shows at most this many rows (after `at_least`).
    #[serde(default)]
    pub top: Option<usize>,
}

/// How rows are summed in the browser before drawing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollup {
    /// By ISO week (Monday first), keyed by the week's Monday.
    Week,
}

fn default_width() -> u8 {
    2
}

/// Shared filters a click may set.
const CLICK_FILTERS: &[&str] = &["holding", "branch", "manager"];

impl Dashboard {
    /// Parses and validates `definitions/<stem>.toml`.
    pub fn parse(stem: &str, text: &str) -> Result<Self> {
        let fail = |message: String| Error::Definition { file: stem.to_string(), message };
        let d: Dashboard = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            fail(format!("{}{}", line.map(|l| format!("line {l}: ")).unwrap_or_default(), e.message()))
        })?;
        d.validate().map_err(fail)?;
        if d.id != stem {
            return Err(fail(format!("id `{}` differs from the file name; rename the file to {}.toml", d.id, d.id)));
        }
        Ok(d)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ident(&self.id) {
            return Err(format!("id `{}` must be lowercase letters, digits and _", self.id));
        }
        if self.title.ru.is_empty() || self.title.en.is_empty() {
            return Err("title needs both ru and en".into());
        }
        if self.panels.is_empty() {
            return Err("a dashboard needs at least one [[panels]]".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &self.panels {
            let at = |m: String| format!("panel `{}`: {m}", p.id);
            if !ident(&p.id) {
                return Err(at("id must be lowercase letters, digits and _".into()));
            }
            if !seen.insert(p.id.as_str()) {
                return Err(at("two panels have this id; ids must be unique within a dashboard".into()));
            }
            if p.title.ru.is_empty() || p.title.en.is_empty() {
                return Err(at("title needs both ru and en".into()));
            }
            if !(1..=4).contains(&p.width) {
                return Err(at(format!("width {} is not 1..4 (columns of the 4-column grid)", p.width)));
            }
            let q = &p.query;
            match (q.measures.is_empty(), &q.endpoint) {
                (true, None) => return Err(at("query needs `measures` (a metrics query) or `endpoint`".into())),
                (false, Some(e)) => {
                    return Err(at(format!("query has both `measures` and `endpoint = \"{e}\"`; keep one")));
                }
                (true, Some(_)) if !q.by.is_empty() => {
                    return Err(at("`by` applies to `measures` only; pass grouping to an endpoint in `params`".into()));
                }
                _ => {}
            }
            if !q.measures.is_empty() && q.field.is_some() {
                return Err(at("`field` applies to `endpoint` answers only".into()));
            }
            let needs_fields = !matches!(p.chart, Chart::Funnel | Chart::Kanban);
            if needs_fields && p.fields.is_empty() {
                return Err(at("list the values to show in `fields`".into()));
            }
            if matches!(p.chart, Chart::Line | Chart::Bar | Chart::Heatmap) && p.x.is_none() {
                return Err(at("a line, bar or heatmap needs `x` (the key of its axis)".into()));
            }
            if p.chart == Chart::Heatmap && p.y.is_none() {
                return Err(at("a heatmap needs `y` (the key of its rows)".into()));
            }
            if p.chart == Chart::SparklineTable && p.spark.as_deref().is_none_or(|s| !s.contains('.')) {
                return Err(at("a sparkline-table needs `spark = \"<series key>.<value key>\"`".into()));
            }
            if p.rollup.is_some() && p.x.is_none() {
                return Err(at("`rollup` needs `x`, the day key it groups by".into()));
            }
            if p.plan.is_some() && p.chart != Chart::Kpi {
                return Err(at("`plan` applies to kpi panels only".into()));
            }
            for f in p.click_filter.keys() {
                if !CLICK_FILTERS.contains(&f.as_str()) {
                    return Err(at(format!("click_filter `{f}` is not one of {}", CLICK_FILTERS.join(", "))));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
id = "t"
order = 9
title = { ru = "Т", en = "T" }
[[panels]]
id = "a"
title = { ru = "А", en = "A" }
chart = "kpi"
query = { measures = ["won_amount"] }
fields = [{ key = "won_amount", format = "rub" }]
"#;

    fn error(text: &str) -> String {
        Dashboard::parse("t", text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let d = Dashboard::parse("t", GOOD).unwrap();
        let p = &d.panels[0];
        assert_eq!((p.width, p.query.period, p.show), (2, Period::Selected, Show::Always));
        assert_eq!(p.query.filters, all_filters());
        assert_eq!(p.fields[0].format, Format::Rub);
    }

    #[test]
    fn mistakes_are_named_with_the_file_and_the_fix() {
        let e = error(&GOOD.replace("chart = \"kpi\"", "chart = \"pie\""));
        assert!(e.contains("definitions/t.toml") && e.contains("pie"), "{e}");
        let e = error(&GOOD.replace("id = \"t\"", "id = \"u\""));
        assert!(e.contains("rename the file to u.toml"), "{e}");
        let e =
            error(&GOOD.replace("measures = [\"won_amount\"]", "measures = [\"won_amount\"], endpoint = \"funnel\""));
        assert!(e.contains("keep one"), "{e}");
        let e = error(&GOOD.replace("query = { measures = [\"won_amount\"] }", "query = {}"));
        assert!(e.contains("`measures`") && e.contains("`endpoint`"), "{e}");
        let e = error(&format!(
            "{GOOD}\n[[panels]]\nid = \"a\"\ntitle = {{ ru = \"Б\", en = \"B\" }}\nchart = \"table\"\nquery = {{ endpoint = \"funnel\" }}\nfields = [{{ key = \"stage\" }}]\n"
        ));
        assert!(e.contains("unique"), "{e}");
        let e = error(&GOOD.replace("chart = \"kpi\"", "chart = \"line\""));
        assert!(e.contains("needs `x`"), "{e}");
        let e = error(&GOOD.replace("format = \"rub\"", "format = \"rub\", colour = \"red\""));
        assert!(e.contains("colour") && e.contains("line 10"), "{e}");
    }
}
