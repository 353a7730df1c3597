//! The semantic layer's definitions: dimensions, tables and measures, read from `api/metrics.toml`
//! (compiled in) and validated once. The SQL built from them lives in `measures.rs`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The definitions file, compiled into the binary.
pub const METRICS_TOML: &str = include_str!("../metrics.toml");

/// The dimension that `from`/`to` filter.
pub const PERIOD_DIMENSION: &str = "month";

/// The dimension that `through` cuts a period to date on.
pub const DAY_DIMENSION: &str = "day";

/// How a dimension's values are written in filters and answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionKind {
    /// A month: filtered by `from`/`to` as `YYYY-MM`, answered as its first day.
    Month,
    /// A calendar day, `YYYY-MM-DD`.
    Date,
    /// Text (ids, stage names).
    Text,
}

/// A way to group and filter measures.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// How values are written.
    pub kind: DimensionKind,
    /// What it is.
    pub description: String,
}

/// Where measures read from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// What the rows are, and which event each dimension dates.
    pub description: String,
    /// A warehouse table name (exclusive with `sql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A SELECT over warehouse tables (exclusive with `from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Dimension name -> SQL expression over the source's columns.
    pub dimensions: BTreeMap<String, String>,
}

impl Table {
    /// The source as a FROM item body: `(SELECT ...)`.
    pub fn source_sql(&self) -> String {
        match (&self.from, &self.sql) {
            (Some(t), _) => format!("(select * from {t})"),
            (None, Some(sql)) => format!("({})", sql.trim()),
            // Validation refuses a table with neither.
            (None, None) => "(select 1)".into(),
        }
    }
}

/// The unit of a measure, which also fixes its JSON type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
// `MetricUnit` is the name metrics.toml uses (`unit = "metric_unit"`).
#[allow(clippy::enum_variant_names)]
pub enum Unit {
    /// A count: a JSON integer.
    Count,
    /// Roubles: an exact decimal as a JSON string.
    Rub,
    /// A share (0..1 for most): a JSON number.
    Ratio,
    /// Hours: a JSON number.
    Hours,
    /// Days: a JSON number.
    Days,
    /// The unit of the planned metric the row is about (RUB or a count): an exact decimal string.
    MetricUnit,
    /// Yes or no (a cohort is mature): a JSON boolean.
    Flag,
}

/// One measure: a number defined once.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// The table it reads.
    pub table: String,
    /// Its unit.
    pub unit: Unit,
    /// What it means, for the people reading the number.
    pub description: String,
    /// Additive: `sum(EXPR)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<String>,
    /// Any aggregate expression over the source's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<String>,
    /// Ratio: `sum(numerator) / sum(denominator)` at the requested grain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numerator: Option<String>,
    /// The ratio's denominator (see `numerator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denominator: Option<String>,
    /// A stock: its value at the period's last month unless grouped by month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    /// An SQL expression over the source's rows: text when a row's data cannot support the
    /// measure (a rate whose base the history does not cover, a cohort too young to judge),
    /// null otherwise. Where any row of a result's group has one, the measure is null there and
    /// the answer carries the reason as `<measure>_null_reason` (the first in sort order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_reason: Option<String>,
    /// Dimensions the request must group by or filter to one value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Dimensions the request must neither group nor filter by.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
}

/// How a measure aggregates, resolved from the exclusive fields.
#[derive(Debug, Clone, Copy)]
pub enum Aggregation<'a> {
    /// `sum(expr)`.
    Sum(&'a str),
    /// The expression as written.
    Aggregate(&'a str),
    /// `sum(num) / sum(den)`.
    Ratio(&'a str, &'a str),
    /// Value at the period's last month.
    Last(&'a str),
}

impl Measure {
    /// How it aggregates (validation guarantees exactly one form is set).
    pub fn aggregation(&self) -> Aggregation<'_> {
        match (&self.sum, &self.aggregate, &self.numerator, &self.denominator, &self.last) {
            (Some(e), ..) => Aggregation::Sum(e),
            (None, Some(e), ..) => Aggregation::Aggregate(e),
            (None, None, Some(n), Some(d), _) => Aggregation::Ratio(n, d),
            (.., Some(e)) => Aggregation::Last(e),
            _ => Aggregation::Aggregate("null"),
        }
    }
}

/// The whole semantic layer.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Dimensions by name.
    pub dimensions: BTreeMap<String, Dimension>,
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
    /// Measures by name.
    pub measures: BTreeMap<String, Measure>,
}

/// Names in the definitions become SQL identifiers and JSON keys: keep them plain.
fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

impl Catalog {
    /// Parses and validates a definitions file; errors name the entry and the fix.
    pub fn parse(text: &str) -> Result<Self, String> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| format!("metrics.toml: {e}"))?;
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), String> {
        if !self.dimensions.contains_key(PERIOD_DIMENSION) {
            return Err(format!("metrics.toml: dimension `{PERIOD_DIMENSION}` must be defined (from/to filter it)"));
        }
        for name in self.dimensions.keys().chain(self.tables.keys()).chain(self.measures.keys()) {
            if !is_identifier(name) {
                return Err(format!(
                    "metrics.toml: `{name}` is not a plain name (a-z, 0-9, _; starting with a letter)"
                ));
            }
        }
        for (name, t) in &self.tables {
            match (&t.from, &t.sql) {
                (Some(f), None) if is_identifier(f) => {}
                (Some(f), None) => {
                    return Err(format!("metrics.toml: table `{name}`: `from = \"{f}\"` is not a table name"));
                }
                (None, Some(_)) => {}
                _ => return Err(format!("metrics.toml: table `{name}`: set exactly one of `from` and `sql`")),
            }
            for d in t.dimensions.keys() {
                if !self.dimensions.contains_key(d) {
                    return Err(format!(
                        "metrics.toml: table `{name}`: dimension `{d}` is not defined in [dimensions]"
                    ));
                }
            }
        }
        for (name, m) in &self.measures {
            let Some(table) = self.tables.get(&m.table) else {
                return Err(format!("metrics.toml: measure `{name}`: no table `{}`", m.table));
            };
            let forms = [m.sum.is_some(), m.aggregate.is_some(), m.numerator.is_some(), m.last.is_some()];
            if forms.iter().filter(|f| **f).count() != 1 || m.numerator.is_some() != m.denominator.is_some() {
                return Err(format!(
                    "metrics.toml: measure `{name}`: set exactly one of `sum`, `aggregate`, `numerator` + `denominator`, `last`"
                ));
            }
            if m.numerator.is_some() && !matches!(m.unit, Unit::Ratio | Unit::Hours | Unit::Days) {
                return Err(format!(
                    "metrics.toml: measure `{name}`: a ratio is a float, so its unit must be ratio, hours or days (money never passes through a float)"
                ));
            }
            if m.last.is_some() && !table.dimensions.contains_key(PERIOD_DIMENSION) {
                return Err(format!(
                    "metrics.toml: measure `{name}`: `last` needs a table with a `{PERIOD_DIMENSION}` dimension"
                ));
            }
            for d in m.requires.iter().chain(&m.excludes) {
                if !table.dimensions.contains_key(d) {
                    return Err(format!(
                        "metrics.toml: measure `{name}`: requires/excludes `{d}`, which table `{}` does not have",
                        m.table
                    ));
                }
            }
        }
        Ok(())
    }

    /// Measure names, sorted, comma-separated (for error messages).
    pub fn measure_names(&self) -> String {
        self.measures.keys().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Dimension names, sorted, comma-separated (for error messages).
    pub fn dimension_names(&self) -> String {
        self.dimensions.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The compiled-in catalog. Its validity is pinned by a unit test, so the error branch only
/// guards a broken build from panicking at request time.
pub fn catalog() -> Result<&'static Catalog, &'static str> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::parse(METRICS_TOML)).as_ref().map_err(|e| e.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_definitions_are_valid_and_cover_the_kpis() {
        let c = Catalog::parse(METRICS_TOML).unwrap();
        for m in [
            "deals_created",
            "deals_won",
            "deals_lost",
            "win_rate",
            "won_amount",
            "commission",
            "conversion",
            "pipeline_amount",
            "pipeline_deals",
            "weighted_forecast",
            "stalled_deals",
            "churn_rate",
            "inflow_rate",
            "active_clients",
            "new_clients",
            "calls",
            "meetings",
            "proposals",
            "contracts",
            "plan_completion",
            "sales_cycle_median_days",
        ] {
            assert!(c.measures.contains_key(m), "measure {m} is missing");
        }
    }

    #[test]
    fn broken_definitions_are_refused_with_the_entry_named() {
        let base = "[dimensions.month]\nkind = \"month\"\ndescription = \"m\"\n[tables.t]\ndescription = \"t\"\nfrom = \"x\"\ndimensions = { month = \"month\" }\n";
        let cases = [
            ("[measures.a]\ntable = \"nope\"\nunit = \"count\"\ndescription = \"d\"\nsum = \"x\"\n", "no table `nope`"),
            (
                "[measures.a]\ntable = \"t\"\nunit = \"count\"\ndescription = \"d\"\nsum = \"x\"\naggregate = \"count(*)\"\n",
                "exactly one",
            ),
            (
                "[measures.a]\ntable = \"t\"\nunit = \"rub\"\ndescription = \"d\"\nnumerator = \"x\"\ndenominator = \"y\"\n",
                "never passes through a float",
            ),
            (
                "[measures.a]\ntable = \"t\"\nunit = \"count\"\ndescription = \"d\"\nsum = \"x\"\nrequires = [\"stage\"]\n",
                "does not have",
            ),
            ("[measures.A]\ntable = \"t\"\nunit = \"count\"\ndescription = \"d\"\nsum = \"x\"\n", "not a plain name"),
            ("[measures.a]\ntable = \"t\"\nunit = \"euro\"\ndescription = \"d\"\nsum = \"x\"\n", "unknown variant"),
        ];
        for (measure, expected) in cases {
            let e = Catalog::parse(&format!("{base}{measure}")).unwrap_err();
            assert!(e.contains(expected), "{measure}: {e}");
        }
    }
}
