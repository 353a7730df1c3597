//! What every data endpoint shares: the query session it reads through ([`Session`], scoped to
//! the caller), its documented query parameters (checked against the route's own list, so an
//! unknown name is a 400 naming the valid ones), SQL with user values bound as parameters (`$1`,
//! never pasted into the text), paging ([`paged`]), and Arrow rows as JSON with decimals as exact
//! strings.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use chrono::{Datelike, NaiveDate};
use dealhouse_warehouse::datafusion::arrow::array::RecordBatch;
use dealhouse_warehouse::datafusion::arrow::compute::cast;
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema};
use dealhouse_warehouse::datafusion::arrow::json::ArrayWriter;
use dealhouse_warehouse::datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use dealhouse_warehouse::datafusion::common::ScalarValue;
use dealhouse_warehouse::datafusion::dataframe::DataFrame;
use dealhouse_warehouse::session::QuerySession;
use serde_json::Value;

use crate::auth::Principal;
use crate::{ApiError, AppState, ErrorCode};

/// The query session a handler reads through. Every data endpoint takes it as an extractor, so
/// this impl is the single place sessions are scoped to the caller.
pub struct Session(pub QuerySession);

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // The caller's token decides what the session holds: a branch-scoped principal gets
        // tables already filtered to its branches.
        let principal = Principal::from_request_parts(parts, state).await?;
        Ok(Session(state.session_for(&principal).await?))
    }
}

/// `{rows, total, limit, offset}` plus extra fields.
pub fn paged(total: usize, args: &Args, rows: Vec<Value>, extra: Value) -> Result<Json<Value>, ApiError> {
    let page = args.page()?;
    let mut out = serde_json::json!({ "total": total, "limit": page.limit, "offset": page.offset, "rows": rows });
    if let (Some(o), Value::Object(e)) = (out.as_object_mut(), extra) {
        o.extend(e);
    }
    Ok(Json(out))
}

/// Default page size of list endpoints.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest page a list endpoint returns.
pub const MAX_LIMIT: usize = 1000;
/// Most values one list filter takes (`branch=a,b,...`).
const MAX_VALUES: usize = 200;
/// Longest filter value accepted.
const MAX_VALUE_LEN: usize = 200;

/// The type of a query parameter: how it is parsed, and how the OpenAPI document describes it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A month, `YYYY-MM`.
    Month,
    /// A day, `YYYY-MM-DD`.
    Date,
    /// Text values, comma-separated and/or repeated (`branch=msk,spb&branch=ekb`).
    List,
    /// A non-negative integer up to the bound.
    Integer(usize),
    /// One of the listed values.
    Enum(&'static [&'static str]),
}

/// A documented query parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Name in the query string.
    pub name: &'static str,
    /// Type.
    pub kind: Kind,
    /// Whether the request must carry it.
    pub required: bool,
    /// What it does.
    pub description: &'static str,
}

impl Param {
    /// An optional parameter.
    pub const fn new(name: &'static str, kind: Kind, description: &'static str) -> Self {
        Self { name, kind, required: false, description }
    }

    /// The same, required.
    pub const fn required(self) -> Self {
        Self { required: true, ..self }
    }
}

/// `from`: first month of the period.
pub const FROM: Param = Param::new("from", Kind::Month, "First month of the period, YYYY-MM (inclusive).");
/// `to`: last month of the period.
pub const TO: Param = Param::new("to", Kind::Month, "Last month of the period, YYYY-MM (inclusive).");
/// `holding` filter.
pub const HOLDING: Param = Param::new("holding", Kind::List, "Holding ids, comma-separated.");
/// `branch` filter.
pub const BRANCH: Param = Param::new("branch", Kind::List, "Branch ids, comma-separated.");
/// `manager` filter.
pub const MANAGER: Param = Param::new("manager", Kind::List, "Manager ids, comma-separated.");
/// `pipeline` filter: deals of these pipelines only.
pub const PIPELINE: Param = Param::new(
    "pipeline",
    Kind::List,
    "Pipeline (category) ids upstream, comma-separated; every pipeline when absent (/api/v1/dimensions lists them, the main one first).",
);
/// `limit`: page size.
pub const LIMIT: Param = Param::new("limit", Kind::Integer(MAX_LIMIT), "Rows per page (default 100, at most 1000).");
/// `offset`: rows to skip.
pub const OFFSET: Param = Param::new("offset", Kind::Integer(usize::MAX), "Rows to skip (default 0).");

/// A 400 with a stable code.
pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// A request's query parameters, checked against the route's documented list.
#[derive(Debug, Default)]
pub struct Args {
    values: BTreeMap<&'static str, Vec<String>>,
    /// The route's parameters, given or not: their kinds type the values query files bind.
    params: Vec<Param>,
}

impl Args {
    /// Checks every name against `params` (unknown -> 400 listing the valid names), splits lists,
    /// parses typed values early so a bad one is reported by name, and checks required ones.
    pub fn parse(path: &str, pairs: Vec<(String, String)>, params: &[Param]) -> Result<Self, ApiError> {
        let mut values: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for (name, value) in pairs {
            let Some(p) = params.iter().find(|p| p.name == name) else {
                return Err(bad_request(
                    ErrorCode::UnknownParameter,
                    format!(
                        "{path} has no parameter `{}`; valid parameters: {}",
                        clip(&name),
                        params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                    ),
                ));
            };
            let entry = values.entry(p.name).or_default();
            match p.kind {
                Kind::List => {
                    entry.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_string))
                }
                _ if !entry.is_empty() => {
                    return Err(bad_request(ErrorCode::BadParameter, format!("`{}` is given more than once", p.name)));
                }
                _ => entry.push(value),
            }
            if entry.len() > MAX_VALUES {
                return Err(bad_request(
                    ErrorCode::BadParameter,
                    format!("`{}` takes at most {MAX_VALUES} values", p.name),
                ));
            }
            for v in entry.iter() {
                if v.len() > MAX_VALUE_LEN || v.chars().any(char::is_control) {
                    return Err(bad_request(
                        ErrorCode::BadParameter,
                        format!("`{}`: values are at most {MAX_VALUE_LEN} bytes of printable text", p.name),
                    ));
                }
            }
        }
        let args = Self { values, params: params.to_vec() };
        for p in params {
            match p.kind {
                Kind::Month => {
                    args.month(p.name)?;
                }
                Kind::Date => {
                    args.date(p.name)?;
                }
                Kind::Integer(max) => {
                    args.integer(p.name, max)?;
                }
                Kind::Enum(allowed) => {
                    if let Some(v) = args.one(p.name)
                        && !allowed.contains(&v)
                    {
                        return Err(bad_request(
                            ErrorCode::BadParameter,
                            format!("`{}` must be one of {}; got `{}`", p.name, allowed.join(", "), clip(v)),
                        ));
                    }
                }
                Kind::List => {}
            }
            if p.required && args.values.get(p.name).is_none_or(|v| v.is_empty()) {
                return Err(bad_request(
                    ErrorCode::MissingParameter,
                    format!("{path} needs `{}`: {}", p.name, p.description),
                ));
            }
        }
        if let (Some(from), Some(to)) = (args.month("from")?, args.month("to")?)
            && from > to
        {
            return Err(bad_request(ErrorCode::BadParameter, format!("`from` ({from}) is after `to` ({to})")));
        }
        Ok(args)
    }

    /// The route's parameter of this name.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether the request gave this parameter a value.
    pub fn is_given(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|v| !v.is_empty())
    }

    /// Gives a parameter the request left out this value (a default the answer shows).
    pub fn or_default(&mut self, name: &str, value: String) {
        if let Some(p) = self.params.iter().find(|p| p.name == name) {
            self.values.entry(p.name).or_insert_with(|| vec![value]);
        }
    }

    /// The values of a list parameter (empty when absent).
    pub fn list(&self, name: &str) -> &[String] {
        self.values.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The value of a single-valued parameter.
    pub fn one(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// A month parameter as its first day.
    pub fn month(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.one(name).map(|v| parse_month(name, v)).transpose()
    }

    /// A day parameter.
    pub fn date(&self, name: &str) -> Result<Option<NaiveDate>, ApiError> {
        self.one(name)
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
                    bad_request(
                        ErrorCode::BadParameter,
                        format!("`{name}` must be a day as YYYY-MM-DD; got `{}`", clip(v)),
                    )
                })
            })
            .transpose()
    }

    /// An integer parameter, at most `max`.
    pub fn integer(&self, name: &str, max: usize) -> Result<Option<usize>, ApiError> {
        self.one(name)
            .map(|v| match v.parse::<usize>() {
                Ok(n) if n <= max => Ok(n),
                _ => Err(bad_request(
                    ErrorCode::BadParameter,
                    format!("`{name}` must be an integer from 0 to {max}; got `{}`", clip(v)),
                )),
            })
            .transpose()
    }

    /// `limit` and `offset`.
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            limit: self.integer("limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
            offset: self.integer("offset", usize::MAX)?.unwrap_or(0),
        })
    }
}

/// A value echoed in an error is clipped, so a huge input does not come back whole.
fn clip(s: &str) -> String {
    if s.chars().count() > 60 { format!("{}...", s.chars().take(60).collect::<String>()) } else { s.to_string() }
}

/// `YYYY-MM` (or a `YYYY-MM-DD` inside it) -> the month's first day.
pub fn parse_month(name: &str, v: &str) -> Result<NaiveDate, ApiError> {
    let day = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(v, "%Y-%m-%d"))
        .map_err(|_| {
            bad_request(
                ErrorCode::BadParameter,
                format!("`{name}` must be a month as YYYY-MM (e.g. 2025-01); got `{}`", clip(v)),
            )
        })?;
    Ok(day.with_day(1).unwrap_or(day))
}

/// Paging of a list.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Rows per page.
    pub limit: usize,
    /// Rows skipped.
    pub offset: usize,
}

/// SQL text under construction with its bound values: user input only ever enters as a `$n`.
#[derive(Debug, Default)]
pub struct Sql {
    params: Vec<ScalarValue>,
}

impl Sql {
    /// Binds a value; returns its placeholder.
    pub fn bind(&mut self, v: ScalarValue) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }

    /// How many values are bound.
    #[cfg(test)]
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Binds a text value.
    pub fn text(&mut self, v: &str) -> String {
        self.bind(ScalarValue::Utf8(Some(v.to_string())))
    }

    /// Binds a date.
    pub fn date(&mut self, d: NaiveDate) -> String {
        self.bind(date_value(Some(d)))
    }

    /// The bound values, `$1` first.
    pub fn into_params(self) -> Vec<ScalarValue> {
        self.params
    }

    /// Plans `text` (read-only) with the bound values.
    pub async fn plan(&self, session: &QuerySession, text: &str) -> Result<DataFrame, ApiError> {
        let df = session.plan_read_only(text).await?;
        if self.params.is_empty() {
            return Ok(df);
        }
        Ok(df.with_param_values(self.params.clone()).map_err(dealhouse_warehouse::Error::from)?)
    }

    /// Runs `text` and returns every row as JSON.
    pub async fn rows(&self, session: &QuerySession, text: &str) -> Result<Vec<Value>, ApiError> {
        collect_json(self.plan(session, text).await?).await
    }

    /// Runs `text` and returns one page of its rows and the total row count.
    pub async fn page(&self, session: &QuerySession, text: &str, page: Page) -> Result<(usize, Vec<Value>), ApiError> {
        let df = self.plan(session, text).await?;
        let total = df.clone().count().await.map_err(dealhouse_warehouse::Error::from)?;
        let rows =
            collect_json(df.limit(page.offset, Some(page.limit)).map_err(dealhouse_warehouse::Error::from)?).await?;
        Ok((total, rows))
    }
}

/// A date as Arrow's `Date32` (days since 1970-01-01); None is a typed null.
pub fn date_value(d: Option<NaiveDate>) -> ScalarValue {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    ScalarValue::Date32(d.map(|d| (d - epoch).num_days() as i32))
}

/// `WHERE a AND b`, or nothing.
pub fn where_all(conditions: &[String]) -> String {
    if conditions.is_empty() { String::new() } else { format!("where {}", conditions.join(" and ")) }
}

/// Collects a plan as JSON objects, nulls explicit, decimals as exact strings.
pub async fn collect_json(df: DataFrame) -> Result<Vec<Value>, ApiError> {
    let batches = df.collect().await.map_err(dealhouse_warehouse::Error::from)?;
    batches_to_json(&batches)
}

/// Arrow rows as JSON objects, nulls explicit, decimals as exact strings.
pub fn batches_to_json(batches: &[RecordBatch]) -> Result<Vec<Value>, ApiError> {
    let mut buf = Vec::new();
    {
        let mut w = WriterBuilder::new().with_explicit_nulls(true).build::<_, JsonArray>(&mut buf);
        for b in batches {
            w.write(&decimals_as_text(b)?).map_err(dealhouse_warehouse::Error::from)?;
        }
        w.finish().map_err(dealhouse_warehouse::Error::from)?;
    }
    if buf.is_empty() {
        return Ok(vec![]);
    }
    serde_json::from_slice(&buf).map_err(|e| {
        tracing::error!(error = %e, "arrow json output does not parse");
        ApiError::internal()
    })
}

/// Rows as a JSON array of objects (`[]` when there are none), decimals as exact strings with
/// their scale (`"100.00"`): what `POST /api/v1/sql` answers and `dealhouse query --format json`
/// prints, one representation for both.
pub fn write_json_rows(out: &mut Vec<u8>, batches: &[RecordBatch]) -> Result<(), dealhouse_warehouse::Error> {
    let start = out.len();
    {
        let mut w = ArrayWriter::new(&mut *out);
        for b in batches {
            w.write(&decimals_as_text(b)?)?;
        }
        w.finish()?;
    }
    if out.len() == start {
        out.extend_from_slice(b"[]");
    }
    Ok(())
}

/// Money must not pass through a JSON float: decimal columns become exact strings (the same
/// conversion as `POST /api/v1/sql`).
pub fn decimals_as_text(batch: &RecordBatch) -> Result<RecordBatch, dealhouse_warehouse::Error> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..))) {
        return Ok(batch.clone());
    }
    let mut fields = vec![];
    let mut columns = vec![];
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        if matches!(f.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..)) {
            columns.push(cast(c, &DataType::Utf8)?);
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
        } else {
            columns.push(c.clone());
            fields.push(f.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dealhouse_warehouse::datafusion::arrow::array::{Decimal128Array, Int64Array};

    #[test]
    fn json_rows_keep_decimals_exact_as_strings_with_their_scale() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("amount", DataType::Decimal128(18, 2), true),
        ]));
        // 1234567 and 10000 hundredths: 12345.67 and 100.00.
        let amounts =
            Decimal128Array::from(vec![Some(1_234_567), Some(10_000), None]).with_precision_and_scale(18, 2).unwrap();
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2, 3])), Arc::new(amounts)])
                .unwrap();
        let mut out = Vec::new();
        write_json_rows(&mut out, &[batch]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"[{"n":1,"amount":"12345.67"},{"n":2,"amount":"100.00"},{"n":3}]"#
        );
        let mut out = Vec::new();
        write_json_rows(&mut out, &[RecordBatch::new_empty(schema)]).unwrap();
        assert_eq!(out, b"[]");
    }

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn unknown_names_are_refused_with_the_valid_ones_listed() {
        let e = Args::parse("/x", pairs(&[("brnch", "msk")]), &[FROM, BRANCH]).unwrap_err();
        assert_eq!(e.code, "unknown_parameter");
        assert!(e.message.contains("`brnch`") && e.message.contains("from, branch"), "{}", e.message);
    }

    #[test]
    fn lists_split_and_values_parse() {
        let a = Args::parse(
            "/x",
            pairs(&[("branch", "msk, spb"), ("branch", "ekb"), ("from", "2025-02"), ("to", "2025-03-15")]),
            &[FROM, TO, BRANCH],
        )
        .unwrap();
        assert_eq!(a.list("branch"), ["msk", "spb", "ekb"]);
        assert_eq!(a.month("from").unwrap(), NaiveDate::from_ymd_opt(2025, 2, 1));
        assert_eq!(a.month("to").unwrap(), NaiveDate::from_ymd_opt(2025, 3, 1));
        for bad in [("from", "2025-13"), ("from", "jan"), ("limit", "5000"), ("limit", "-1")] {
            let e = Args::parse("/x", pairs(&[bad]), &[FROM, LIMIT]).unwrap_err();
            assert_eq!(e.code, "bad_parameter", "{bad:?}");
            assert!(e.message.contains(bad.0), "{}", e.message);
        }
        let e = Args::parse("/x", pairs(&[("from", "2025-05"), ("to", "2025-01")]), &[FROM, TO]).unwrap_err();
        assert!(e.message.contains("after"), "{}", e.message);
    }
}
