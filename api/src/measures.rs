//! The semantic layer's endpoints: `GET /api/v1/metrics`, business measures from `semantic.rs` at
//! a requested grain (not to be confused with the Prometheus `/metrics`, `prometheus.rs`), and
//! `GET /api/v1/metrics/catalog`, their definitions.
//!
//! Each table's measures are aggregated in one subquery at the requested dimensions; several
//! tables are joined on those dimensions. Identifiers in the SQL come only from the definitions;
//! request values enter as bound parameters.
//!
//! Periods to date: `through=DAY` ends the data at that day (tables with a `day` dimension count
//! only days up to it, every table only months up to its month), so a month to date is
//! compared like for like by asking for the other period with its same day (the 6th of the
//! previous month, or of the same month last year). Tables without a day cannot be cut; the
//! answer lists their measures in `not_cut`, and a client must not compare them across a
//! partial period.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::Query;
use axum::routing::get;
use chrono::Datelike;
use serde_json::{Value, json};

use crate::query::{Args, FROM, Kind, Param, Session, Sql, TO, bad_request, parse_month, where_all};
use crate::route::{JSON, Route};
use crate::semantic::{Aggregation, Catalog, DAY_DIMENSION, DimensionKind, Measure, PERIOD_DIMENSION, Table, catalog};
use crate::{ApiError, ErrorCode};

/// The route.
pub const PATH: &str = "/api/v1/metrics";

/// Most rows one answer carries; `truncated` says when there were more.
pub const MAX_ROWS: usize = 10_000;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: PATH,
            served_at: None,
            tag: "metrics",
            content_type: JSON,
            request_body: None,
            summary: "Measures from the semantic layer at a requested grain",
            description: "Measures (GET /api/v1/metrics/catalog lists them with their definitions) grouped by `by` \
                dimensions and filtered by `from`/`to` and any dimension; `through` ends a period to date at a day \
                (like for like: ask for the previous period with its same day). Ratios are computed from summed \
                parts at the requested grain; a measure whose data cannot support it (a rate without a base, an \
                immature cohort) is null with `<measure>_null_reason` beside it. Measures of different tables are joined on the requested dimensions; a \
                measure whose table lacks one is refused with 400. Counts are integers, money exact decimal \
                strings, ratios/hours/days numbers; rows are ordered by the dimensions.",
            params,
            response: response_schema,
            handler: || get(handler),
        },
        Route {
            method: "get",
            path: "/api/v1/metrics/catalog",
            served_at: None,
            tag: "metrics",
            content_type: JSON,
            request_body: None,
            summary: "The semantic layer's definitions",
            description: "Dimensions, tables (with the SQL they read) and measures (unit, description, how they \
                aggregate), as compiled in from api/metrics.toml.",
            params: Vec::new,
            response: catalog_schema,
            handler: || get(catalog_handler),
        },
    ]
}

/// The parameters: measures, by, from, to and one filter per dimension.
pub fn params() -> Vec<Param> {
    let mut out = vec![
        Param::new("measures", Kind::List, "Measures, comma-separated (GET /api/v1/metrics/catalog lists them).")
            .required(),
        Param::new("by", Kind::List, "Dimensions to group by, comma-separated (month, branch, ...)."),
        FROM,
        TO,
        THROUGH,
    ];
    if let Ok(c) = catalog() {
        for (name, d) in &c.dimensions {
            // Every dimension filters by a list of values; their kind is checked in `resolve`.
            out.push(Param::new(name, Kind::List, d.description.as_str()));
        }
    }
    out
}

/// `through`: the last day a period to date counts.
pub const THROUGH: Param = Param::new(
    "through",
    Kind::Date,
    "Last day counted, YYYY-MM-DD: a period to date. Tables with a day count only days up to it, every table \
     only months up to its month; compare like for like by sending the other period's same day. Measures \
     whose table has no day are listed in `not_cut`.",
);

fn catalog_or_500() -> Result<&'static Catalog, ApiError> {
    catalog().map_err(|e| {
        tracing::error!(error = e, "metrics.toml is invalid");
        ApiError::internal()
    })
}

/// `GET /api/v1/metrics/catalog`: the definitions, as analysts read them.
async fn catalog_handler() -> Result<Json<Value>, ApiError> {
    let c = catalog_or_500()?;
    Ok(Json(serde_json::to_value(c).unwrap_or(Value::Null)))
}

/// `GET /api/v1/metrics`.
async fn handler(
    Session(session): Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let c = catalog_or_500()?;
    let args = Args::parse(PATH, pairs, &params())?;
    let plan = MetricsQuery::resolve(c, &args)?;
    let (sql, text) = plan.sql()?;
    let df = sql.plan(&session, &text).await?;
    let df = df.limit(0, Some(MAX_ROWS + 1)).map_err(dealhouse_warehouse::Error::from)?;
    let mut rows = crate::query::collect_json(df).await?;
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    let measures: Vec<Value> = plan
        .measures
        .iter()
        .map(|(n, m)| json!({ "name": n, "unit": m.unit, "table": m.table, "description": m.description }))
        .collect();
    Ok(Json(json!({
        "measures": measures,
        "by": plan.by,
        "rows": rows,
        "truncated": truncated,
        "through": plan.through.map(|d| d.to_string()),
        "not_cut": plan.not_cut(),
    })))
}

/// A validated request: known measures, dimensions every measure's table has, typed filters.
pub struct MetricsQuery<'a> {
    catalog: &'a Catalog,
    /// Measures in request order.
    pub measures: Vec<(&'a str, &'a Measure)>,
    /// Group-by dimensions in request order.
    pub by: Vec<&'a str>,
    /// Dimension -> values it is filtered to.
    filters: BTreeMap<&'a str, Vec<FilterValue>>,
    /// from/to as first days of months.
    period: (Option<chrono::NaiveDate>, Option<chrono::NaiveDate>),
    /// The last day a period to date counts.
    pub through: Option<chrono::NaiveDate>,
}

enum FilterValue {
    Text(String),
    Date(chrono::NaiveDate),
}

impl<'a> MetricsQuery<'a> {
    /// Checks names and compatibility; every refusal names the valid choices.
    pub fn resolve(catalog: &'a Catalog, args: &Args) -> Result<Self, ApiError> {
        let mut measures = vec![];
        for name in args.list("measures") {
            let Some((n, m)) = catalog.measures.get_key_value(name.as_str()) else {
                return Err(bad_request(
                    ErrorCode::UnknownMeasure,
                    format!("unknown measure `{name}`; valid measures: {}", catalog.measure_names()),
                ));
            };
            if !measures.iter().any(|(seen, _)| *seen == n.as_str()) {
                measures.push((n.as_str(), m));
            }
        }
        let mut by = vec![];
        for name in args.list("by") {
            let Some((n, _)) = catalog.dimensions.get_key_value(name.as_str()) else {
                return Err(bad_request(
                    ErrorCode::UnknownDimension,
                    format!("unknown dimension `{name}` in `by`; valid dimensions: {}", catalog.dimension_names()),
                ));
            };
            if !by.contains(&n.as_str()) {
                by.push(n.as_str());
            }
        }
        let mut filters: BTreeMap<&str, Vec<FilterValue>> = BTreeMap::new();
        for (name, dim) in &catalog.dimensions {
            let values = args.list(name);
            if values.is_empty() {
                continue;
            }
            let parsed = values
                .iter()
                .map(|v| match dim.kind {
                    DimensionKind::Text => Ok(FilterValue::Text(v.clone())),
                    DimensionKind::Month => parse_month(name, v).map(FilterValue::Date),
                    DimensionKind::Date => {
                        chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").map(FilterValue::Date).map_err(|_| {
                            bad_request(
                                ErrorCode::BadParameter,
                                format!("`{name}` takes days as YYYY-MM-DD; got `{v}`"),
                            )
                        })
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            filters.insert(name.as_str(), parsed);
        }
        let period = (args.month("from")?, args.month("to")?);
        let through = args.date("through")?;
        let q = Self { catalog, measures, by, filters, period, through };
        q.check()?;
        Ok(q)
    }

    fn table(&self, m: &Measure) -> &'a Table {
        // Validation of the catalog guarantees the table exists.
        &self.catalog.tables[&m.table]
    }

    fn check(&self) -> Result<(), ApiError> {
        if self.measures.is_empty() {
            return Err(bad_request(
                ErrorCode::MissingParameter,
                format!("`measures` is empty; valid measures: {}", self.catalog.measure_names()),
            ));
        }
        let period_used = self.period.0.is_some() || self.period.1.is_some() || self.through.is_some();
        for (name, m) in &self.measures {
            let t = self.table(m);
            let has = |d: &str| t.dimensions.contains_key(d);
            let dims = || t.dimensions.keys().cloned().collect::<Vec<_>>().join(", ");
            for d in &self.by {
                if !has(d) {
                    return Err(bad_request(
                        ErrorCode::IncompatibleDimensions,
                        format!(
                            "measure `{name}` (table `{}`) cannot be grouped by `{d}`: its dimensions are {}; \
                             ask for it in a separate request or drop `{d}`",
                            m.table,
                            dims()
                        ),
                    ));
                }
            }
            for d in self.filters.keys() {
                if !has(d) {
                    return Err(bad_request(
                        ErrorCode::IncompatibleDimensions,
                        format!(
                            "measure `{name}` (table `{}`) cannot be filtered by `{d}`: its dimensions are {}",
                            m.table,
                            dims()
                        ),
                    ));
                }
            }
            if period_used && !has(PERIOD_DIMENSION) {
                return Err(bad_request(
                    ErrorCode::IncompatibleDimensions,
                    format!(
                        "measure `{name}` (table `{}`) has no month, so `from`/`to`/`through` do not apply to it",
                        m.table
                    ),
                ));
            }
            for d in &m.requires {
                let filtered_to_one = self.filters.get(d.as_str()).is_some_and(|v| v.len() == 1);
                if !self.by.contains(&d.as_str()) && !filtered_to_one {
                    return Err(bad_request(
                        ErrorCode::DimensionRequired,
                        format!(
                            "measure `{name}` must be grouped by `{d}` (by={d}) or filtered to one `{d}` ({d}=...): \
                             summing it across {d} values means nothing"
                        ),
                    ));
                }
            }
            for d in &m.excludes {
                if self.by.contains(&d.as_str()) || self.filters.contains_key(d.as_str()) {
                    return Err(bad_request(
                        ErrorCode::DimensionExcluded,
                        format!("measure `{name}` cannot be grouped or filtered by `{d}`: {}", m.description),
                    ));
                }
            }
        }
        Ok(())
    }

    /// With `through`, the measures whose table has no day, so a period to date cannot cut them.
    pub fn not_cut(&self) -> Vec<&'a str> {
        match self.through {
            Some(_) => self
                .measures
                .iter()
                .filter(|(_, m)| !self.table(m).dimensions.contains_key(DAY_DIMENSION))
                .map(|(n, _)| *n)
                .collect(),
            None => vec![],
        }
    }

    /// The SQL and its bound values.
    pub fn sql(&self) -> Result<(Sql, String), ApiError> {
        let mut sql = Sql::default();
        // Tables in order of their first measure, each with its measures.
        let mut tables: Vec<(&str, Vec<(&str, &Measure)>)> = vec![];
        for (n, m) in &self.measures {
            match tables.iter_mut().find(|(t, _)| *t == m.table) {
                Some((_, ms)) => ms.push((*n, *m)),
                None => tables.push((m.table.as_str(), vec![(*n, *m)])),
            }
        }
        let mut ctes = vec![];
        for (i, (tname, ms)) in tables.iter().enumerate() {
            let t = &self.catalog.tables[*tname];
            ctes.push(format!("t{i} as ({})", self.table_sql(&mut sql, t, ms)));
        }
        let dims = self.by.join(", ");
        let order = if self.by.is_empty() { String::new() } else { format!(" order by {dims}") };
        let body = if tables.len() == 1 {
            format!("select * from t0{order}")
        } else {
            let mut cols: Vec<String> = vec![];
            let mut from = String::new();
            if self.by.is_empty() {
                from.push_str("t0");
                for i in 1..tables.len() {
                    from.push_str(&format!(" cross join t{i}"));
                }
            } else {
                let keys: Vec<String> = (0..tables.len()).map(|i| format!("select {dims} from t{i}")).collect();
                ctes.push(format!("keys as ({})", keys.join(" union ")));
                cols.extend(self.by.iter().map(|d| format!("keys.{d}")));
                from.push_str("keys");
                for i in 0..tables.len() {
                    let on: Vec<String> =
                        self.by.iter().map(|d| format!("(keys.{d} is not distinct from t{i}.{d})")).collect();
                    from.push_str(&format!(" left join t{i} on {}", on.join(" and ")));
                }
            }
            for (i, (_, ms)) in tables.iter().enumerate() {
                for (n, m) in ms {
                    cols.push(format!("t{i}.{n}"));
                    if m.null_reason.is_some() {
                        cols.push(format!("t{i}.{n}_null_reason"));
                    }
                }
            }
            let order = if self.by.is_empty() {
                String::new()
            } else {
                format!(" order by {}", self.by.iter().map(|d| format!("keys.{d}")).collect::<Vec<_>>().join(", "))
            };
            format!("select {} from {from}{order}", cols.join(", "))
        };
        Ok((sql, format!("with {} {body}", ctes.join(", "))))
    }

    /// One table's measures at the requested grain.
    fn table_sql(&self, sql: &mut Sql, t: &Table, measures: &[(&str, &Measure)]) -> String {
        let source = t.source_sql();
        // Dimensions are computed under reserved names first, so filters, grouping and the
        // measures' own column references never collide.
        let dim_cols: Vec<String> = t.dimensions.iter().map(|(d, e)| format!("{e} as __dim_{d}")).collect();
        let src = format!("(select s.*, {} from {source} s)", dim_cols.join(", "));
        let mut conds = vec![];
        if let Some(from) = self.period.0 {
            conds.push(format!("__dim_{PERIOD_DIMENSION} >= {}", sql.date(from)));
        }
        if let Some(to) = self.period.1 {
            conds.push(format!("__dim_{PERIOD_DIMENSION} <= {}", sql.date(to)));
        }
        if let Some(through) = self.through {
            let month = through.with_day(1).unwrap_or(through);
            conds.push(format!("__dim_{PERIOD_DIMENSION} <= {}", sql.date(month)));
            if t.dimensions.contains_key(DAY_DIMENSION) {
                conds.push(format!("__dim_{DAY_DIMENSION} <= {}", sql.date(through)));
            }
        }
        for (d, values) in &self.filters {
            let list: Vec<String> = values
                .iter()
                .map(|v| match v {
                    FilterValue::Text(s) => sql.text(s),
                    FilterValue::Date(day) => sql.date(*day),
                })
                .collect();
            conds.push(format!("__dim_{d} in ({})", list.join(", ")));
        }
        let filter = where_all(&conds);
        let by_month = self.by.contains(&PERIOD_DIMENSION);
        let needs_period_end =
            !by_month && measures.iter().any(|(_, m)| matches!(m.aggregation(), Aggregation::Last(_)));
        let mut select: Vec<String> = self.by.iter().map(|d| format!("__dim_{d} as {d}")).collect();
        for (n, m) in measures {
            let agg = match m.aggregation() {
                Aggregation::Sum(e) => format!("sum({e})"),
                Aggregation::Aggregate(e) => e.to_string(),
                Aggregation::Ratio(num, den) => {
                    format!("cast(sum({num}) as double) / nullif(cast(sum({den}) as double), 0)")
                }
                Aggregation::Last(e) if by_month => format!("sum({e})"),
                Aggregation::Last(e) => {
                    format!("sum(case when __dim_{PERIOD_DIMENSION} = __period.period_end then {e} end)")
                }
            };
            match &m.null_reason {
                // Null where any row of the group cannot support it (a sum over a month without a
                // base would look like a rate), with the reason beside it.
                Some(reason) => {
                    select.push(format!("case when count({reason}) > 0 then null else {agg} end as {n}"));
                    select.push(format!("min({reason}) as {n}_null_reason"));
                }
                None => select.push(format!("{agg} as {n}")),
            }
        }
        let period_join = if needs_period_end {
            format!(" cross join (select max(__dim_{PERIOD_DIMENSION}) as period_end from {src} p {filter}) __period")
        } else {
            String::new()
        };
        let group = if self.by.is_empty() {
            String::new()
        } else {
            format!(" group by {}", self.by.iter().map(|d| format!("__dim_{d}")).collect::<Vec<_>>().join(", "))
        };
        format!("select {} from {src} src{period_join} {filter}{group}", select.join(", "))
    }
}

/// JSON schema of the `/metrics` answer.
fn response_schema() -> Value {
    use crate::route::schema as s;
    s::obj(&[
        (
            "measures",
            s::array(s::obj(&[
                ("name", s::text("Measure.")),
                ("unit", s::text("count, rub, ratio, hours, days, metric_unit or flag.")),
                ("table", s::text("The semantic-layer table it reads.")),
                ("description", s::text("Its definition.")),
            ])),
        ),
        ("by", s::array(s::text("A requested dimension."))),
        (
            "rows",
            s::array(json!({
                "type": "object",
                "description": "One per combination of the requested dimensions: a key per dimension and per \
                    measure. Counts are integers, rub and metric_unit exact decimal strings, ratio/hours/days numbers, \
                    flags booleans; null where a measure's table has no rows for the combination. A measure with a \
                    null reason (catalog `null_reason`) also has `<measure>_null_reason`: why it is null, else null.",
                "additionalProperties": { "type": ["string", "number", "integer", "boolean", "null"] }
            })),
        ),
        ("truncated", s::boolean("True when more than 10000 rows matched and only the first were sent.")),
        ("through", s::nullable(s::text("The `through` day asked for (YYYY-MM-DD), else null."))),
        ("not_cut", s::array(s::text("With `through`: a measure whose table has no day, counted for whole months."))),
    ])
}

/// JSON schema of the catalog answer.
fn catalog_schema() -> Value {
    use crate::route::schema as s;
    let map = |d: &str| json!({ "type": "object", "description": d, "additionalProperties": { "type": "object" } });
    s::obj(&[
        ("dimensions", map("Dimension name -> {kind, description}.")),
        ("tables", map("Table name -> {description, from or sql, dimensions: name -> SQL expression}.")),
        (
            "measures",
            map(
                "Measure name -> {table, unit, description, sum | aggregate | numerator + denominator | last, null_reason, requires, excludes}.",
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(q: &[(&str, &str)]) -> Args {
        Args::parse(PATH, q.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(), &params()).unwrap()
    }

    fn refusal(q: &[(&str, &str)]) -> ApiError {
        let c = catalog().unwrap();
        match MetricsQuery::resolve(c, &args(q)) {
            Ok(_) => panic!("{q:?} should be refused"),
            Err(e) => e,
        }
    }

    #[test]
    fn refusals_name_the_valid_choices() {
        let e = refusal(&[("measures", "win_rate,bogus")]);
        assert_eq!(e.code, "unknown_measure");
        assert!(e.message.contains("bogus") && e.message.contains("win_rate") && e.message.contains("churn_rate"));
        let e = refusal(&[("measures", "win_rate"), ("by", "planet")]);
        assert_eq!(e.code, "unknown_dimension");
        assert!(e.message.contains("branch") && e.message.contains("month"));
        let e = refusal(&[("measures", "churn_rate,win_rate"), ("by", "manager")]);
        assert_eq!(e.code, "incompatible_dimensions");
        assert!(e.message.contains("churn_rate") && e.message.contains("branch, holding, month"), "{}", e.message);
        let e = refusal(&[("measures", "conversion")]);
        assert_eq!(e.code, "dimension_required");
        let e = refusal(&[("measures", "created_to_won"), ("by", "stage")]);
        assert_eq!(e.code, "dimension_excluded");
        let e = refusal(&[("measures", "plan_completion"), ("metric", "calls,meetings"), ("level", "manager")]);
        assert_eq!(e.code, "dimension_required");
        let e = Args::parse(PATH, vec![("measure".into(), "x".into())], &params()).unwrap_err();
        assert_eq!(e.code, "unknown_parameter");
        assert!(e.message.contains("measures") && e.message.contains("holding"));
    }

    #[test]
    fn sql_binds_values_and_joins_tables_on_the_requested_dims() {
        let c = catalog().unwrap();
        let q = MetricsQuery::resolve(
            c,
            &args(&[
                ("measures", "win_rate,calls"),
                ("by", "branch,month"),
                ("from", "2025-01"),
                ("branch", "x' or 1=1 --"),
            ]),
        )
        .unwrap();
        let (sql, text) = q.sql().unwrap();
        assert!(!text.contains("x'"), "{text}");
        assert!(text.contains("__dim_branch in ($"), "{text}");
        // Parenthesised: the parser binds IS NOT DISTINCT FROM looser than AND.
        assert!(text.contains("(keys.branch is not distinct from t1.branch) and (keys.month"), "{text}");
        assert!(text.contains("cast(sum(won) as double) / nullif(cast(sum(won + lost) as double), 0) as win_rate"));
        // from and the branch filter, bound once per table
        assert_eq!(sql.param_count(), 4);
    }

    #[test]
    fn through_cuts_tables_with_a_day_and_names_the_others() {
        let c = catalog().unwrap();
        let q = MetricsQuery::resolve(c, &args(&[("measures", "won_amount,new_clients"), ("through", "2026-03-06")]))
            .unwrap();
        let (sql, text) = q.sql().unwrap();
        assert!(text.contains("__dim_day <= $"), "{text}");
        assert_eq!(q.not_cut(), vec!["new_clients"]);
        // The month bound in both tables, the day bound in closed_deals only.
        assert_eq!(sql.param_count(), 3);
        let bad = vec![("measures".into(), "won_amount".into()), ("through".into(), "2026-03".into())];
        let e = match Args::parse(PATH, bad, &params()) {
            Err(e) => e,
            Ok(a) => a.date("through").expect_err("a month is not a day"),
        };
        assert!(e.message.contains("through"), "{}", e.message);
    }

    #[test]
    fn a_measure_with_a_null_reason_is_null_where_a_row_has_one_with_the_reason_beside() {
        let c = catalog().unwrap();
        let q = MetricsQuery::resolve(c, &args(&[("measures", "churn_rate,win_rate"), ("by", "month")])).unwrap();
        let (_, text) = q.sql().unwrap();
        assert!(
            text.contains("case when count(rates_null_reason) > 0 then null else cast(sum(churned_clients)"),
            "{text}"
        );
        assert!(text.contains("min(rates_null_reason) as churn_rate_null_reason"), "{text}");
        assert!(text.contains("t0.churn_rate, t0.churn_rate_null_reason, t1.win_rate"), "{text}");
    }
}
