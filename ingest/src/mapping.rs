//! Maps loosely typed records (SQL rows, file rows) onto canonical rows, quarantining what
//! does not parse.
//!
//! This is the one place that decides how a raw value (text, integer, real, Excel date, bool,
//! empty) becomes a canonical value: exact money, UTC instants from local wall-clock times,
//! first-of-month dates, booleans in English and Russian, branch codes translated to branch ids.
//! A [`RecordMapper`] is driven by the canonical table's [`TableDef`] and builds Arrow arrays straight
//! from it; a value that does not fit sends its whole row to quarantine with a reason naming
//! the column, the value and the fix, and never stops the other rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use dealhouse_warehouse::Project;
use dealhouse_warehouse::datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, TimeUnit};
use dealhouse_warehouse::datafusion::arrow::record_batch::RecordBatch;
use dealhouse_warehouse::schema::{QuarantineRecord, TableDef, canonical_table, date_to_days};
use futures::StreamExt;
use futures::stream::BoxStream;
use rust_decimal::Decimal;

use crate::currency;
use crate::source::Chunk;
use crate::vocabulary::Vocabulary;
use crate::{Error, Result};

/// Rows per chunk: big enough that commits are few, small enough to bound memory.
pub const CHUNK_ROWS: usize = 5_000;

/// The input column translated to `branch_id` through the branches' `codes`.
pub const BRANCH_CODE: &str = "branch_code";

/// The key of a `values` map that maps every value not listed.
pub const VALUES_DEFAULT: &str = "*";

/// A value as a source hands it over, before it is given a canonical type.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// SQL NULL, an empty cell, a missing column.
    Null,
    /// Text (CSV fields are always text).
    Text(String),
    /// An integer (SQL INTEGER, an Excel integer cell).
    Int(i64),
    /// A binary floating-point number (SQL REAL, an Excel number cell); money goes through its
    /// shortest decimal text, so `0.1` stays `0.1`.
    Float(f64),
    /// An exact decimal (SQL NUMERIC/DECIMAL), kept exact all the way to money columns.
    Decimal(Decimal),
    /// A boolean cell.
    Bool(bool),
    /// A wall-clock time in the source's `time_zone`: an Excel date-time cell, a SQL
    /// `timestamp without time zone` or `DATETIME`.
    DateTime(NaiveDateTime),
    /// A calendar day without a time of day: a SQL `DATE`, an Excel cell holding a whole day.
    Date(NaiveDate),
    /// An instant (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`): no zone applies to it.
    Utc(DateTime<Utc>),
    /// A cell that holds something that is never a value (`#N/A`, a BLOB); the text says what.
    Invalid(String),
}

impl RawValue {
    /// True for null and for text that is blank.
    pub fn is_empty(&self) -> bool {
        match self {
            RawValue::Null => true,
            RawValue::Text(s) => s.trim().is_empty(),
            _ => false,
        }
    }

    /// The value as text, as a template or a value map sees it (`None` when empty).
    pub fn to_text(&self) -> Option<String> {
        match self {
            RawValue::Null => None,
            RawValue::Text(s) => {
                let s = s.trim();
                (!s.is_empty()).then(|| s.to_string())
            }
            RawValue::Int(i) => Some(i.to_string()),
            // Display of f64 is the shortest text that reads back as the same number, never
            // with an exponent: 17.0 -> "17", 0.1 -> "0.1".
            RawValue::Float(f) => Some(f.to_string()),
            // Display of Decimal is plain digits, never an exponent.
            RawValue::Decimal(d) => Some(d.to_string()),
            RawValue::Bool(b) => Some(b.to_string()),
            RawValue::Date(d) => Some(d.format("%Y-%m-%d").to_string()),
            RawValue::DateTime(t) if t.time() == chrono::NaiveTime::MIN => Some(t.format("%Y-%m-%d").to_string()),
            RawValue::DateTime(t) => Some(t.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
            RawValue::Utc(t) => Some(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            RawValue::Invalid(s) => Some(s.clone()),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            RawValue::Null => serde_json::Value::Null,
            RawValue::Int(i) => (*i).into(),
            RawValue::Float(f) => serde_json::Number::from_f64(*f).map_or_else(|| f.to_string().into(), Into::into),
            RawValue::Bool(b) => (*b).into(),
            other => other.to_text().unwrap_or_default().into(),
        }
    }

    /// How the value is quoted in a reason.
    fn show(&self) -> String {
        match self {
            RawValue::Text(s) => format!("`{s}`"),
            RawValue::Null => "empty".into(),
            other => format!("`{}`", other.to_text().unwrap_or_default()),
        }
    }
}

/// A record of named raw values, in the order the source gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    fields: Vec<(String, RawValue)>,
}

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a field (a later field of the same name is ignored by [`Record::get`]).
    pub fn push(&mut self, name: impl Into<String>, value: RawValue) {
        self.fields.push((name.into(), value));
    }

    /// The first field named `name`.
    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The fields in order.
    pub fn fields(&self) -> &[(String, RawValue)] {
        &self.fields
    }

    /// The record as a JSON object (what the quarantine keeps).
    pub fn to_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> =
            self.fields.iter().map(|(n, v)| (n.clone(), v.to_json())).collect();
        serde_json::Value::Object(map).to_string()
    }
}

/// Where a source's records come from, so a reason names what the user can change there: a
/// query can convert a value, a file can only be fixed or mapped in dealhouse.toml, a pushed
/// record is fixed by its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOrigin {
    /// Rows of a configured SQL query (`sqlite`, `postgres`, `mysql`).
    Query,
    /// Rows of a file (`csv`, `xlsx`, `jsonl`).
    File,
    /// Records POSTed to the server (`push`).
    Push,
}

impl RecordOrigin {
    /// Where else than `values` a value outside a vocabulary can be mapped.
    fn vocabulary_fix(self) -> &'static str {
        match self {
            RecordOrigin::Query => " or in the query",
            RecordOrigin::File => "",
            RecordOrigin::Push => ", or send one of these",
        }
    }

    /// What to do about a number given for a date-time.
    fn number_as_date_fix(self) -> &'static str {
        match self {
            RecordOrigin::Query => {
                "convert it in the query (SQLite: datetime(col, 'unixepoch'), PostgreSQL: to_timestamp(col), \
                 MySQL: FROM_UNIXTIME(col))"
            }
            RecordOrigin::File => {
                "write it as a date in the file (2024-12-31 or 2024-12-31 18:30:00; in Excel, format the column as \
                 a date) or map another column"
            }
            RecordOrigin::Push => "send it as ISO 8601 text (2024-12-31T18:30:00+03:00)",
        }
    }
}

/// How a source's raw values are read.
#[derive(Debug, Clone)]
pub struct MappingOptions {
    /// What kind of source the records come from (how reasons word the fix).
    pub origin: RecordOrigin,
    /// Zone of wall-clock times without an offset.
    pub time_zone: Tz,
    /// Numbers are written `1 234,56` (decimal comma, space or no-break space thousands).
    pub decimal_comma: bool,
    /// chrono format of dates and timestamps in text, tried before ISO 8601.
    pub date_format: Option<String>,
    /// Canonical column -> (raw value -> canonical value); the key `"*"` maps every other
    /// non-empty value.
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Where the user supplies a column, for reasons (`[sources.x.columns]`).
    pub columns_hint: String,
    /// Canonical column -> the fallbacks its spec tries, as written (`["{a}", "{b}"]`), for the
    /// reason of a required column they all left empty.
    pub alternatives: BTreeMap<String, String>,
    /// The source describes its own branches (a file source filling `branches`): a
    /// `branch_code` no [[organisation.branches]] claims names the source's branch
    /// `{source}:{code}`, the id its `branches` rows get by default.
    pub own_branches: bool,
    /// The source fills several tables from the same records: quarantine ids carry the table
    /// (`agents.csv:3#managers`), so a record bad for two tables keeps both reasons.
    pub quarantine_per_table: bool,
    /// The config table holding `values` when it is not `sources.<source>` (a file source's
    /// `sources.x.tables.<table>`), for reasons.
    pub values_section: Option<String>,
    /// The source's `currency`: what a deal row that names none is in (None: the reporting
    /// currency).
    pub currency: Option<String>,
}

impl Default for MappingOptions {
    fn default() -> Self {
        Self {
            origin: RecordOrigin::File,
            time_zone: Tz::UTC,
            decimal_comma: false,
            date_format: None,
            values: BTreeMap::new(),
            columns_hint: "the source's columns".into(),
            alternatives: BTreeMap::new(),
            own_branches: false,
            quarantine_per_table: false,
            values_section: None,
            currency: None,
        }
    }
}

/// Parses a configured `time_zone` (None = UTC).
pub fn parse_time_zone(source_name: &str, tz: Option<&str>) -> Result<Tz> {
    match tz {
        None => Ok(Tz::UTC),
        Some(name) => name.trim().parse::<Tz>().map_err(|_| Error::Config {
            source_name: source_name.to_string(),
            message: format!("time_zone `{name}` is not an IANA time zone (e.g. Europe/Moscow)"),
        }),
    }
}

/// A typed value ready for its Arrow builder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Str(String),
    Bool(bool),
    I32(i32),
    Days(i32),
    Micros(i64),
    Scaled(i128),
}

/// Turns records into one canonical table's rows; collects rows and quarantined records until
/// [`RecordMapper::finish`] makes a batch of them.
pub struct RecordMapper {
    project: Arc<Project>,
    source: String,
    def: TableDef,
    /// Index of the table's own id column (`deal_id` in deals), which defaults to
    /// `{source}:{source_id}`.
    own_id: Option<usize>,
    options: MappingOptions,
    /// Per column of `def`, the vocabulary its values must belong to.
    vocabulary: Vec<Option<Vocabulary>>,
    rows: Vec<Vec<Cell>>,
    quarantined: Vec<QuarantineRecord>,
    /// Records a row filter left out since the last chunk (see [`Chunk::skipped`]).
    skipped: u64,
    /// Quarantine keys of the records pushed since the last chunk (see [`Chunk::settled`]).
    settled: Vec<String>,
    settled_prefixes: Vec<String>,
}

impl RecordMapper {
    /// A mapper for `table` fed by `source`.
    pub fn new(project: Arc<Project>, source: &str, table: &str, options: MappingOptions) -> Result<Self> {
        let config_error = |message: String| Error::Config { source_name: source.to_string(), message };
        let def = canonical_table(table).ok_or_else(|| config_error(format!("`{table}` is not a canonical table")))?;
        for c in &def.columns {
            let supported = match &c.data_type {
                DataType::Utf8 | DataType::Boolean | DataType::Int32 | DataType::Date32 => true,
                DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => true,
                DataType::Decimal128(_, s) => *s >= 0,
                _ => false,
            };
            if !supported {
                return Err(config_error(format!(
                    "column `{}.{}` has type {} which the record mapper cannot fill",
                    def.name, c.name, c.data_type
                )));
            }
        }
        let own_id = own_id_column(&def);
        let vocabulary = def.columns.iter().map(|c| Vocabulary::of(&project.config, def.name, c.name)).collect();
        Ok(Self {
            project,
            source: source.to_string(),
            def,
            own_id,
            options,
            vocabulary,
            rows: vec![],
            quarantined: vec![],
            skipped: 0,
            settled: vec![],
            settled_prefixes: vec![],
        })
    }

    /// The canonical table.
    pub fn table(&self) -> &'static str {
        self.def.name
    }

    /// Rows and quarantined records waiting for [`RecordMapper::finish`].
    pub fn pending(&self) -> usize {
        self.rows.len() + self.quarantined.len()
    }

    /// Maps one record read at `location`; a record that does not map goes to quarantine with
    /// `raw` (the record as the source holds it).
    pub fn push(&mut self, record: &Record, location: &str, raw: &Record) {
        self.push_with(record, location, || raw.to_json());
    }

    /// [`RecordMapper::push`] with the raw record as text (a JSON Lines line), made only when the
    /// record is quarantined.
    pub fn push_with(&mut self, record: &Record, location: &str, raw: impl FnOnce() -> String) {
        self.push_as(record, location, None, raw);
    }

    /// [`RecordMapper::push_with`] with a quarantine key other than the location (a pushed
    /// record's place in its request says nothing about which record it is; its id does).
    pub fn push_as(&mut self, record: &Record, location: &str, key: Option<&str>, raw: impl FnOnce() -> String) {
        let key = self.key(key.unwrap_or(location));
        self.settled.push(key.clone());
        match self.map(record) {
            Ok(row) => self.rows.push(row),
            Err(reason) => {
                let record_id = record.get("source_id").and_then(RawValue::to_text);
                self.quarantined.push(self.quarantine_record(location, key, raw(), reason, record_id));
            }
        }
    }

    /// Counts a record the table's row filter (`where`) leaves out: neither loaded nor
    /// quarantined.
    pub fn skip(&mut self) {
        self.skipped += 1;
    }

    /// Quarantines a record that never got as far as mapping (a CSV row with too few fields).
    pub fn quarantine(&mut self, location: &str, raw: String, reason: String) {
        let key = self.key(location);
        self.settled.push(key.clone());
        self.quarantined.push(self.quarantine_record(location, key, raw, reason, None));
    }

    /// The quarantine key of a record: stable run to run (a file's line, a row's `source_id`),
    /// so a re-read replaces the entry, with the table when one record feeds several.
    fn key(&self, place: &str) -> String {
        if self.options.quarantine_per_table { format!("{place}#{}", self.def.name) } else { place.to_string() }
    }

    fn quarantine_record(
        &self,
        location: &str,
        key: String,
        raw: String,
        reason: String,
        record_id: Option<String>,
    ) -> QuarantineRecord {
        QuarantineRecord {
            entity: self.def.name.to_string(),
            location: location.to_string(),
            raw,
            reason,
            quarantined_at: Utc::now(),
            record_id,
            // The sync runner stamps the source's mapping fingerprint when it writes the row.
            mapping: None,
            source_system: self.source.clone(),
            source_id: key,
        }
    }

    /// Marks every quarantine key starting with `prefix` as answered for by the next chunk (a
    /// whole file was read again).
    pub fn settle_prefix(&mut self, prefix: String) {
        self.settled_prefixes.push(prefix);
    }

    /// What was mapped since the last chunk as one, with `cursor` and the keys it settles.
    pub fn chunk(&mut self, cursor: Option<String>) -> Result<Chunk> {
        let settled = std::mem::take(&mut self.settled);
        let settled_prefixes = std::mem::take(&mut self.settled_prefixes);
        let skipped = std::mem::take(&mut self.skipped);
        let (batch, quarantined) = self.finish()?;
        Ok(Chunk { settled, settled_prefixes, skipped, ..Chunk::new(self.def.name, batch, quarantined, cursor) })
    }

    /// The batch of rows mapped so far and the quarantined records; the mapper starts empty again
    /// (what was pushed is forgotten, settled keys and skipped counts included).
    pub fn finish(&mut self) -> Result<(RecordBatch, Vec<QuarantineRecord>)> {
        self.settled.clear();
        self.settled_prefixes.clear();
        self.skipped = 0;
        let rows = std::mem::take(&mut self.rows);
        let quarantined = std::mem::take(&mut self.quarantined);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.def.columns.len());
        for (i, c) in self.def.columns.iter().enumerate() {
            let n = rows.len();
            let values = rows.iter().map(|r| &r[i]);
            let array: ArrayRef = match &c.data_type {
                DataType::Utf8 => {
                    let mut b = StringBuilder::with_capacity(n, n * 16);
                    values.for_each(|v| b.append_option(if let Cell::Str(s) = v { Some(s) } else { None }));
                    ArrayBuilder::finish(&mut b)
                }
                DataType::Boolean => {
                    let mut b = BooleanBuilder::with_capacity(n);
                    values.for_each(|v| b.append_option(if let Cell::Bool(x) = v { Some(*x) } else { None }));
                    ArrayBuilder::finish(&mut b)
                }
                DataType::Int32 => {
                    let mut b = Int32Builder::with_capacity(n);
                    values.for_each(|v| b.append_option(if let Cell::I32(x) = v { Some(*x) } else { None }));
                    ArrayBuilder::finish(&mut b)
                }
                DataType::Date32 => {
                    let mut b = Date32Builder::with_capacity(n);
                    values.for_each(|v| b.append_option(if let Cell::Days(x) = v { Some(*x) } else { None }));
                    ArrayBuilder::finish(&mut b)
                }
                DataType::Timestamp(_, tz) => {
                    let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone_opt(tz.clone());
                    values.for_each(|v| b.append_option(if let Cell::Micros(x) = v { Some(*x) } else { None }));
                    ArrayBuilder::finish(&mut b)
                }
                DataType::Decimal128(p, s) => {
                    let mut b = Decimal128Builder::with_capacity(n).with_precision_and_scale(*p, *s)?;
                    values.for_each(|v| b.append_option(if let Cell::Scaled(x) = v { Some(*x) } else { None }));
                    ArrayBuilder::finish(&mut b)
                }
                other => {
                    return Err(Error::Config {
                        source_name: self.source.clone(),
                        message: format!("column `{}` has unsupported type {other}", c.name),
                    });
                }
            };
            columns.push(array);
        }
        let batch = RecordBatch::try_new(self.def.schema(), columns)?;
        Ok((batch, quarantined))
    }

    /// One record -> typed cells, or the reason it does not map.
    fn map(&self, record: &Record) -> std::result::Result<Vec<Cell>, String> {
        let source_id = match record.get("source_id").map(|v| (v, v.to_text())) {
            Some((RawValue::Invalid(s), _)) => return Err(format!("column `source_id` holds {s}")),
            Some((_, Some(id))) => id,
            _ => {
                return Err(format!(
                    "column `source_id` is missing or empty: every row needs its upstream id; supply it in {}",
                    self.options.columns_hint
                ));
            }
        };
        let mut row = Vec::with_capacity(self.def.columns.len());
        for (i, c) in self.def.columns.iter().enumerate() {
            let cell = match c.name {
                "source_system" => Cell::Str(self.source.clone()),
                "source_id" => Cell::Str(source_id.clone()),
                "branch_id" if self.def.name == "branches" => self.own_branch_id(record, &source_id)?,
                "branch_id" => self.branch_id(record)?,
                name => {
                    let raw = self.value_mapped(name, record.get(name).unwrap_or(&RawValue::Null))?;
                    self.convert(name, &c.data_type, &raw)?
                }
            };
            let cell = match cell {
                Cell::Null if Some(i) == self.own_id => Cell::Str(format!("{}:{source_id}", self.source)),
                // Sources rarely say "not deleted"; deletions are found by reconciliation.
                Cell::Null if c.name == "deleted" => Cell::Bool(false),
                Cell::Null if c.name == "currency" && self.def.name == "deals" => Cell::Str(self.default_currency()),
                cell => cell,
            };
            if cell == Cell::Null
                && !c.nullable
                && let Some(tried) = self.options.alternatives.get(c.name)
            {
                return Err(format!(
                    "column `{}` is empty in every alternative tried ({tried}) but `{}` requires it; add a fallback \
                     (another `{{column}}`, or a `=constant` last) to {} {} or fix the row",
                    c.name, self.def.name, self.options.columns_hint, c.name
                ));
            }
            currency::check_cell(self.def.name, c.name, &cell, || self.values_section())?;
            if cell == Cell::Null && !c.nullable {
                return Err(format!(
                    "column `{}` is missing or empty but `{}` requires it; supply it in {} or fix the row",
                    c.name, self.def.name, self.options.columns_hint
                ));
            }
            if let Cell::Str(s) = &cell
                && self.def.name == "branches"
            {
                self.check_branch_value(c.name, s)?;
            }
            if let Cell::Str(s) = &cell
                && let Some(vocabulary) = &self.vocabulary[i]
                && !vocabulary.accepts(s)
            {
                return Err(vocabulary.reason(c.name, s, &self.values_section(), self.options.origin.vocabulary_fix()));
            }
            row.push(cell);
        }
        Ok(row)
    }

    /// Applies the column's value map, if it has one: mapped values are replaced, values that
    /// are already canonical pass, any other value takes the `"*"` default when the map has one
    /// and is a row error when it has not (a new upstream value must be mapped, not guessed).
    /// An empty value stays empty (a default maps values, it does not invent them).
    fn value_mapped(&self, column: &str, raw: &RawValue) -> std::result::Result<RawValue, String> {
        let Some(map) = self.options.values.get(column) else { return Ok(raw.clone()) };
        let text = raw.to_text().unwrap_or_default();
        if let Some(v) = map.get(&text).filter(|_| text != VALUES_DEFAULT) {
            return Ok(RawValue::Text(v.clone()));
        }
        if text.is_empty() || map.iter().any(|(k, v)| k != VALUES_DEFAULT && *v == text) {
            return Ok(raw.clone());
        }
        if let Some(default) = map.get(VALUES_DEFAULT) {
            return Ok(RawValue::Text(default.clone()));
        }
        Err(format!(
            "column `{column}`: value `{text}` is not in [{}.values.{column}]; add `\"{text}\" = \"...\"` there \
             (or `\"*\" = \"...\"` for every value not listed)",
            self.values_section()
        ))
    }

    /// The currency of a deal row that names none: the source's, else the reporting currency.
    fn default_currency(&self) -> String {
        self.options.currency.clone().unwrap_or_else(|| self.project.config.reporting.currency.clone())
    }

    /// The config table whose `values` map this table's raw values.
    fn values_section(&self) -> String {
        self.options.values_section.clone().unwrap_or_else(|| format!("sources.{}", self.source))
    }

    /// `branch_id` from a `branch_code` (through the branches' `codes`) or given directly.
    fn branch_id(&self, record: &Record) -> std::result::Result<Cell, String> {
        let config = &self.project.config;
        let direct = record.get("branch_id").and_then(RawValue::to_text);
        if let Some(id) = direct {
            let own = self.options.own_branches && id.starts_with(&format!("{}:", self.source));
            if !own && !config.organisation.branches.is_empty() && config.branch(&id).is_none() {
                return Err(format!(
                    "column `branch_id`: `{id}` is not a branch id in [[organisation.branches]]; use one of them or map a `branch_code`"
                ));
            }
            return Ok(Cell::Str(id));
        }
        let code = self.value_mapped(BRANCH_CODE, record.get(BRANCH_CODE).unwrap_or(&RawValue::Null))?;
        let Some(code) = code.to_text() else { return Ok(Cell::Null) };
        match config.branch_by_code(&self.source, &code) {
            Some(b) => Ok(Cell::Str(b.id.clone())),
            None if self.options.own_branches => Ok(Cell::Str(format!("{}:{code}", self.source))),
            None => Err(format!(
                "column `branch_code`: unknown branch code `{code}` for source `{src}`; add `{src} = \"{code}\"` to the \
                 `codes` of its branch in [[organisation.branches]]",
                src = self.source
            )),
        }
    }

    /// The id of a branch the source describes itself (a file's `branches` rows): given, or
    /// `{source}:{source_id}`; never one [[organisation.branches]] declares, whose row comes from
    /// the project file.
    fn own_branch_id(&self, record: &Record, source_id: &str) -> std::result::Result<Cell, String> {
        let id = match record.get("branch_id") {
            Some(RawValue::Invalid(what)) => return Err(format!("column `branch_id` holds {what}")),
            Some(v) => v.to_text(),
            None => None,
        };
        let id = id.unwrap_or_else(|| format!("{}:{source_id}", self.source));
        if self.project.config.branch(&id).is_some() {
            return Err(format!(
                "column `branch_id`: branch `{id}` is declared in [[organisation.branches]], which its row comes \
                 from; leave it out of this source or give it another id"
            ));
        }
        Ok(Cell::Str(id))
    }

    /// A branch's holding must be declared and its time zone real: every "per day" figure of
    /// the branch is counted in that zone.
    fn check_branch_value(&self, column: &str, value: &str) -> std::result::Result<(), String> {
        let holdings = &self.project.config.organisation.holdings;
        match column {
            "holding_id" if !holdings.iter().any(|h| h.id == value) => Err(format!(
                "column `holding_id`: `{value}` is not declared in [[organisation.holdings]] (declared: {})",
                holdings.iter().map(|h| h.id.as_str()).collect::<Vec<_>>().join(", ")
            )),
            "time_zone" if value.parse::<Tz>().is_err() => Err(format!(
                "column `time_zone`: `{value}` is not an IANA time zone (e.g. Europe/Moscow); fix the value or map it in \
                 the table's `values`"
            )),
            _ => Ok(()),
        }
    }

    fn convert(&self, column: &str, ty: &DataType, raw: &RawValue) -> std::result::Result<Cell, String> {
        if let RawValue::Invalid(what) = raw {
            return Err(format!("column `{column}` holds {what}; fix the cell at the source"));
        }
        if raw.is_empty() {
            return Ok(Cell::Null);
        }
        let bad = |what: &str| format!("column `{column}`: {} {what}", raw.show());
        match ty {
            DataType::Utf8 => Ok(raw.to_text().map_or(Cell::Null, Cell::Str)),
            DataType::Boolean => parse_bool(raw)
                .map(Cell::Bool)
                .ok_or_else(|| bad("is not a boolean; use true/false, 1/0, yes/no, Y/N or да/нет")),
            DataType::Int32 => parse_decimal(raw, self.options.decimal_comma)
                .and_then(|d| {
                    if d.fract().is_zero() { i32::try_from(d.mantissa() / 10i128.pow(d.scale())).ok() } else { None }
                })
                .map(Cell::I32)
                .ok_or_else(|| bad("is not a whole number")),
            DataType::Decimal128(precision, scale) => {
                parse_money(raw, self.options.decimal_comma, *precision, *scale as u32)
                    .map(Cell::Scaled)
                    .map_err(|e| bad(&e))
            }
            DataType::Date32 => {
                let date = match raw {
                    RawValue::Date(d) => *d,
                    RawValue::DateTime(t) => t.date(),
                    // The day it was where the source is.
                    RawValue::Utc(t) => t.with_timezone(&self.options.time_zone).date_naive(),
                    _ => match parse_time(raw, self.options.date_format.as_deref()) {
                        Some(Instant::Date(d)) => d,
                        Some(Instant::Naive(t)) => t.date(),
                        Some(Instant::Fixed(t)) => t.date_naive(),
                        None if column == "month" => parse_month(raw).ok_or_else(|| bad(&self.date_help()))?,
                        None => return Err(bad(&self.date_help())),
                    },
                };
                // Plans are per calendar month: any day of it names the month.
                let date = if column == "month" { date.with_day(1).unwrap_or(date) } else { date };
                Ok(Cell::Days(date_to_days(date)))
            }
            DataType::Timestamp(..) => {
                let utc = match raw {
                    RawValue::Date(d) => bare_date_instant(*d, self.options.time_zone),
                    RawValue::DateTime(t) => local_to_utc(*t, self.options.time_zone),
                    RawValue::Utc(t) => Some(*t),
                    RawValue::Int(_) | RawValue::Float(_) | RawValue::Decimal(_) => {
                        return Err(bad(&format!(
                            "is a number, not a date-time; {}",
                            self.options.origin.number_as_date_fix()
                        )));
                    }
                    _ => match parse_time(raw, self.options.date_format.as_deref()) {
                        Some(Instant::Fixed(t)) => Some(t.with_timezone(&Utc)),
                        Some(Instant::Naive(t)) => local_to_utc(t, self.options.time_zone),
                        Some(Instant::Date(d)) => bare_date_instant(d, self.options.time_zone),
                        None => return Err(bad(&self.date_help())),
                    },
                };
                utc.map(|t| Cell::Micros(t.timestamp_micros()))
                    .ok_or_else(|| bad(&format!("does not exist in {}", self.options.time_zone)))
            }
            other => Err(format!("column `{column}` has unsupported type {other}")),
        }
    }

    fn date_help(&self) -> String {
        match &self.options.date_format {
            Some(f) => format!(
                "is not a date in `{f}` (date_format) or ISO 8601 (2024-12-31, 2024-12-31 18:30:00+03:00); fix the value or date_format"
            ),
            None => "is not an ISO 8601 date (2024-12-31, 2024-12-31 18:30:00, 2024-12-31T18:30:00+03:00); \
                     set date_format (e.g. \"%d.%m.%Y\") if the source writes dates differently"
                .into(),
        }
    }
}

/// The table's own id column (`deal_id` of `deals`, `request_id` of `intake_requests`): its
/// first column when it is named `<singular of the table>_id`. `deal_stage_changes.deal_id`
/// refers to another record, so it is not one.
fn own_id_column(def: &TableDef) -> Option<usize> {
    let first = def.columns.first()?;
    let stem = first.name.strip_suffix("_id")?;
    if first.data_type != DataType::Utf8 {
        return None;
    }
    let plural = if let Some(s) = stem.strip_suffix('y') {
        format!("{s}ies")
    } else if stem.ends_with("ch") || stem.ends_with('s') {
        format!("{stem}es")
    } else {
        format!("{stem}s")
    };
    (def.name == plural || def.name.ends_with(&format!("_{plural}"))).then_some(0)
}

fn parse_bool(raw: &RawValue) -> Option<bool> {
    match raw {
        RawValue::Bool(b) => Some(*b),
        RawValue::Int(0) => Some(false),
        RawValue::Int(1) => Some(true),
        RawValue::Float(f) if *f == 0.0 => Some(false),
        RawValue::Float(f) if *f == 1.0 => Some(true),
        RawValue::Text(s) => match s.trim().to_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "да" | "д" => Some(true),
            "false" | "0" | "no" | "n" | "нет" | "н" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A number as an exact decimal: text as written (never through a float), a float through its
/// shortest decimal text.
fn parse_decimal(raw: &RawValue, decimal_comma: bool) -> Option<Decimal> {
    match raw {
        RawValue::Int(i) => Some(Decimal::from(*i)),
        RawValue::Decimal(d) => Some(*d),
        RawValue::Float(f) if f.is_finite() => decimal_text(&f.to_string()),
        RawValue::Text(s) => decimal_text(&normalize_number(s, decimal_comma).ok()?),
        _ => None,
    }
}

/// `1 234,56` -> `1234.56` when the source writes decimal commas; errors explain the mix-up.
fn normalize_number(s: &str, decimal_comma: bool) -> std::result::Result<String, String> {
    let s = s.trim();
    if decimal_comma {
        if s.contains('.') {
            return Err(
                "has a `.` but this source sets decimal_comma = true (1 234,56); fix the value or the setting".into()
            );
        }
        Ok(s.chars()
            .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}'))
            .collect::<String>()
            .replace(',', "."))
    } else if s.contains(',') {
        Err("has a `,`; set decimal_comma = true if the source writes numbers as 1 234,56".into())
    } else {
        Ok(s.to_string())
    }
}

/// Plain decimal text only (`-1234.5`, `+7`, `.5`): no exponents, no `_` separators.
fn decimal_text(s: &str) -> Option<Decimal> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let int = parts.next().unwrap_or("");
    let frac = parts.next().unwrap_or("");
    let ok = !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    Decimal::from_str_exact(s).ok()
}

/// Money as the scaled integer Arrow's Decimal128(p, s) stores; more decimals than the
/// column keeps is an error, never a rounding.
fn parse_money(raw: &RawValue, decimal_comma: bool, precision: u8, scale: u32) -> std::result::Result<i128, String> {
    let text = match raw {
        RawValue::Int(i) => i.to_string(),
        RawValue::Decimal(d) => d.to_string(),
        RawValue::Float(f) if f.is_finite() => f.to_string(),
        RawValue::Text(s) => normalize_number(s, decimal_comma)?,
        _ => return Err("is not an amount of money".into()),
    };
    let Some(mut d) = decimal_text(&text) else {
        return Err("is not an amount of money (expected digits with an optional sign and decimal separator)".into());
    };
    if d.round_dp(scale) != d {
        return Err(format!(
            "has {} decimals; money is kept to {scale} decimals and never rounded silently: round it at the source",
            d.normalize().scale()
        ));
    }
    d.rescale(scale);
    let m = d.mantissa();
    if m.unsigned_abs() >= 10u128.pow(u32::from(precision)) {
        return Err(format!("exceeds {precision} digits"));
    }
    Ok(m)
}

/// A parsed date or time, before a zone is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Instant {
    Fixed(DateTime<FixedOffset>),
    Naive(NaiveDateTime),
    Date(NaiveDate),
}

const OFFSET_FORMATS: &[&str] =
    &["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z", "%Y-%m-%d %H:%M%#z"];
const NAIVE_FORMATS: &[&str] = &["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"];

/// The configured format first, then ISO 8601 with an offset, naive, date only.
fn parse_time(raw: &RawValue, date_format: Option<&str>) -> Option<Instant> {
    let s = raw.to_text()?;
    let s = s.as_str();
    if let Some(f) = date_format {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(Instant::Fixed(t));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Instant::Naive(t));
        }
        if let Ok(d) = NaiveDate::parse_from_str(s, f) {
            return Some(Instant::Date(d));
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(Instant::Fixed(t));
    }
    // `Z` is an offset too, written where `%#z` expects digits.
    let zulu = s.strip_suffix(['Z', 'z']).map(|p| format!("{p}+00:00"));
    let s_off = zulu.as_deref().unwrap_or(s);
    if let Some(t) = OFFSET_FORMATS.iter().find_map(|f| DateTime::parse_from_str(s_off, f).ok()) {
        return Some(Instant::Fixed(t));
    }
    if let Some(t) = NAIVE_FORMATS.iter().find_map(|f| NaiveDateTime::parse_from_str(s, f).ok()) {
        return Some(Instant::Naive(t));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Instant::Date)
}

/// `2025-01` for a month column.
fn parse_month(raw: &RawValue) -> Option<NaiveDate> {
    let s = raw.to_text()?;
    NaiveDate::parse_from_str(&format!("{}-01", s.trim()), "%Y-%m-%d").ok()
}

/// The instant a bare date (a day without a time of day) is stored as: midday of that day in
/// the source's zone. The models count it in the day and month of the branch's own zone, which
/// may be another: midnight would put a close on the 1st into the previous day and month for
/// every branch west of the source (Kaliningrad for a Moscow export), while midday stays on the
/// same calendar day in every zone less than 12 hours away (all of Russia from Moscow). A duration
/// to or from it is off by at most half a day, as it would be with any time the day left out.
fn bare_date_instant(day: NaiveDate, tz: Tz) -> Option<DateTime<Utc>> {
    local_to_utc(day.and_time(chrono::NaiveTime::from_hms_opt(12, 0, 0)?), tz)
}

/// A wall-clock time in `tz` as UTC. A time repeated when clocks go back is taken at its first
/// occurrence; a time skipped when clocks go forward is read with the offset in force before
/// the jump (02:30 in a 02:00->03:00 gap is 03:30), as calendar apps do.
pub fn local_to_utc(t: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&t) {
        LocalResult::Single(x) => Some(x.with_timezone(&Utc)),
        LocalResult::Ambiguous(earliest, _) => Some(earliest.with_timezone(&Utc)),
        LocalResult::None => {
            let before = tz.from_local_datetime(&(t - chrono::Duration::hours(6))).earliest()?;
            let offset = chrono::Offset::fix(before.offset());
            offset.from_local_datetime(&t).single().map(|x| x.with_timezone(&Utc))
        }
    }
}

/// Sends chunks from blocking code (a database driver, a file parser) to an async stream.
pub struct ChunkSink {
    tx: tokio::sync::mpsc::Sender<Result<Chunk>>,
}

impl ChunkSink {
    /// Sends one chunk; false when the reader is gone (the sync stopped), so the producer can stop.
    pub fn send(&self, chunk: Chunk) -> bool {
        self.tx.blocking_send(Ok(chunk)).is_ok()
    }

    /// Sends the mapper's pending rows as one chunk with `cursor`; false when the reader is gone.
    pub fn flush(&self, mapper: &mut RecordMapper, cursor: Option<String>) -> Result<bool> {
        Ok(self.send(mapper.chunk(cursor)?))
    }
}

enum Producer<F> {
    Waiting(F),
    Running(tokio::sync::mpsc::Receiver<Result<Chunk>>, tokio::task::JoinHandle<()>),
    Done,
}

/// Runs `produce` on the blocking pool when the stream is first polled and streams what it
/// sends; an error it returns ends the stream with that error, and so does a panic.
pub fn blocking_chunks<F>(source_name: String, produce: F) -> BoxStream<'static, Result<Chunk>>
where
    F: FnOnce(&ChunkSink) -> Result<()> + Send + 'static,
{
    futures::stream::unfold(Producer::Waiting(produce), move |state| {
        let source_name = source_name.clone();
        async move {
            let (mut rx, handle) = match state {
                Producer::Done => return None,
                Producer::Running(rx, handle) => (rx, handle),
                Producer::Waiting(produce) => {
                    let (tx, rx) = tokio::sync::mpsc::channel(2);
                    let handle = tokio::task::spawn_blocking(move || {
                        let sink = ChunkSink { tx };
                        if let Err(e) = produce(&sink) {
                            let _ = sink.tx.blocking_send(Err(e));
                        }
                    });
                    (rx, handle)
                }
            };
            match rx.recv().await {
                Some(item) => Some((item, Producer::Running(rx, handle))),
                None => match handle.await {
                    Ok(()) => None,
                    Err(e) => Some((
                        Err(Error::Read {
                            source_name,
                            location: "reader thread".into(),
                            message: format!("the reader stopped unexpectedly ({e}); this is a bug, please report it"),
                        }),
                        Producer::Done,
                    )),
                },
            }
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use dealhouse_warehouse::ProjectConfig;
    use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray};
    use dealhouse_warehouse::datafusion::arrow::datatypes::{Date32Type, Decimal128Type, TimestampMicrosecondType};

    fn project() -> Arc<Project> {
        let toml = r#"
[[organisation.holdings]]
id = "h"
name = "H"

[[organisation.branches]]
id = "msk"
holding = "h"
name = "Moscow"
city = "Moscow"
time_zone = "Europe/Moscow"
codes = { legacy = "MSK", onec = "12" }
"#;
        let config = ProjectConfig::parse(toml, std::path::Path::new("/p/dealhouse.toml")).unwrap();
        Arc::new(Project { dir: "/p".into(), config })
    }

    fn record(fields: &[(&str, RawValue)]) -> Record {
        let mut r = Record::new();
        for (n, v) in fields {
            r.push(*n, v.clone());
        }
        r
    }

    fn text(s: &str) -> RawValue {
        RawValue::Text(s.into())
    }

    fn money(s: &str, comma: bool) -> std::result::Result<i128, String> {
        parse_money(&text(s), comma, 18, 2)
    }

    #[test]
    fn mapping_money_is_exact_with_decimal_comma_and_no_break_spaces() {
        assert_eq!(money("1 234,56", true), Ok(123_456));
        assert_eq!(money("1\u{a0}234\u{a0}567,8", true), Ok(123_456_780));
        assert_eq!(money("-1234,5", true), Ok(-123_450));
        assert_eq!(money("0,01", true), Ok(1));
        assert_eq!(money("19999.99", false), Ok(1_999_999));
        assert_eq!(money("7", false), Ok(700));
        assert_eq!(money("1.500", false), Ok(150), "trailing zeros are not extra decimals");
        // A float goes via its shortest text: 0.1 + 0.2 is not 0.3 in binary, and must not become 0.30.
        assert_eq!(parse_money(&RawValue::Float(1234.56), false, 18, 2), Ok(123_456));
        assert!(parse_money(&RawValue::Float(0.1 + 0.2), false, 18, 2).is_err());
        assert_eq!(parse_money(&RawValue::Int(-5), false, 18, 2), Ok(-500));
    }

    #[test]
    fn mapping_money_refuses_rounding_and_ambiguity() {
        let e = money("10,555", true).unwrap_err();
        assert!(e.contains("3 decimals") && e.contains("round it at the source"), "{e}");
        assert!(money("1,234.56", false).unwrap_err().contains("decimal_comma"));
        assert!(money("1.234,56", true).unwrap_err().contains("decimal_comma = true"));
        assert!(money("1e5", false).is_err());
        assert!(money("1_000", false).is_err());
        assert!(money("12 руб", true).is_err());
        assert!(money("10000000000000000", false).unwrap_err().contains("18 digits"));
    }

    #[test]
    fn mapping_booleans_in_both_languages() {
        for (s, b) in [("true", true), ("Yes", true), ("Y", true), ("1", true), ("да", true), ("Да", true)] {
            assert_eq!(parse_bool(&text(s)), Some(b), "{s}");
        }
        for s in ["false", "no", "N", "0", "нет", "НЕТ"] {
            assert_eq!(parse_bool(&text(s)), Some(false), "{s}");
        }
        assert_eq!(parse_bool(&RawValue::Int(1)), Some(true));
        assert_eq!(parse_bool(&text("maybe")), None);
        assert_eq!(parse_bool(&RawValue::Int(2)), None);
    }

    #[test]
    fn mapping_local_times_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        let utc = |s: &str| at(s).and_utc();
        // Clocks went forward 02:00 -> 03:00 CET->CEST on 2024-03-31: 02:30 is read at +01:00.
        assert_eq!(local_to_utc(at("2024-03-31 02:30:00"), berlin), Some(utc("2024-03-31 01:30:00")));
        // Clocks went back 03:00 -> 02:00 on 2024-10-27: 02:30 happened twice, first at +02:00.
        assert_eq!(local_to_utc(at("2024-10-27 02:30:00"), berlin), Some(utc("2024-10-27 00:30:00")));
        let vlad: Tz = "Asia/Vladivostok".parse().unwrap();
        assert_eq!(local_to_utc(at("2025-01-10 09:00:00"), vlad), Some(utc("2025-01-09 23:00:00")));
    }

    #[test]
    fn mapping_time_text_forms() {
        let p = |s: &str, f: Option<&str>| parse_time(&text(s), f);
        let fixed = |s: &str| Instant::Fixed(DateTime::parse_from_rfc3339(s).unwrap());
        assert_eq!(p("2025-01-02T03:04:05+03:00", None), Some(fixed("2025-01-02T03:04:05+03:00")));
        assert_eq!(p("2025-01-02 03:04:05+0300", None), Some(fixed("2025-01-02T03:04:05+03:00")));
        assert_eq!(p("2025-01-02 03:04:05Z", None), Some(fixed("2025-01-02T03:04:05Z")));
        let naive = p("2025-01-02 03:04:05", None);
        assert!(matches!(naive, Some(Instant::Naive(t)) if t.hour() == 3 && t.second() == 5), "{naive:?}");
        assert!(matches!(p("2025-01-02 03:04:05.250", None), Some(Instant::Naive(t)) if t.nanosecond() == 250_000_000));
        assert_eq!(p("2025-01-02", None), Some(Instant::Date(NaiveDate::from_ymd_opt(2025, 1, 2).unwrap())));
        assert_eq!(
            p("31.12.2024", Some("%d.%m.%Y")),
            Some(Instant::Date(NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()))
        );
        assert!(matches!(p("31.12.2024 18:30", Some("%d.%m.%Y %H:%M")), Some(Instant::Naive(t)) if t.hour() == 18));
        assert_eq!(p("31.12.2024", None), None);
        assert_eq!(p("32.13.2024", Some("%d.%m.%Y")), None);
    }

    #[test]
    fn mapping_builds_rows_defaults_and_quarantines_per_row() {
        let options = MappingOptions {
            time_zone: "Europe/Moscow".parse().unwrap(),
            decimal_comma: true,
            date_format: Some("%d.%m.%Y".into()),
            values: [("stage".to_string(), [("Оплачен".to_string(), "won".to_string())].into())].into(),
            columns_hint: "[sources.onec.columns]".into(),
            ..MappingOptions::default()
        };
        let mut m = RecordMapper::new(project(), "onec", "deals", options).unwrap();
        let good = record(&[
            ("source_id", RawValue::Int(17)),
            ("branch_code", RawValue::Float(12.0)),
            ("pipeline", text("1c")),
            ("stage", text("Оплачен")),
            ("source_stage", text("Оплачен")),
            ("status", text("won")),
            ("amount", text("1 234,56")),
            ("created_at", text("31.12.2024")),
            (
                "updated_at",
                RawValue::DateTime(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap().and_hms_opt(12, 0, 0).unwrap()),
            ),
            ("ignored_column", text("whatever")),
        ]);
        m.push(&good, "a.csv:2", &good);
        let mut bad_stage = good.clone();
        bad_stage.fields[3].1 = text("Черновик");
        m.push(&bad_stage, "a.csv:3", &bad_stage);
        let mut no_id = good.clone();
        no_id.fields[0].1 = RawValue::Null;
        m.push(&no_id, "a.csv:4", &no_id);
        let mut no_pipeline = good.clone();
        no_pipeline.fields[2].1 = text("  ");
        m.push(&no_pipeline, "a.csv:5", &no_pipeline);
        let mut bad_branch = good.clone();
        bad_branch.fields[1].1 = text("99");
        m.push(&bad_branch, "a.csv:6", &bad_branch);
        assert_eq!(m.pending(), 5);
        let (batch, q) = m.finish().unwrap();
        assert_eq!(m.pending(), 0);
        assert_eq!(batch.num_rows(), 1);
        let s = |name: &str| batch.column_by_name(name).unwrap().as_string::<i32>().value(0).to_string();
        assert_eq!(s("deal_id"), "onec:17");
        assert_eq!(s("source_system"), "onec");
        assert_eq!(s("source_id"), "17");
        assert_eq!(s("branch_id"), "msk");
        assert_eq!(s("stage"), "won");
        assert_eq!(batch.column_by_name("amount").unwrap().as_primitive::<Decimal128Type>().value(0), 123_456);
        assert!(batch.column_by_name("closed_at").unwrap().is_null(0));
        assert!(!batch.column_by_name("deleted").unwrap().as_boolean().value(0));
        let ts = |name: &str| batch.column_by_name(name).unwrap().as_primitive::<TimestampMicrosecondType>().value(0);
        // The bare date 2024-12-31 is midday in Moscow (+03:00) = 09:00 UTC (2024-12-30 21:00 UTC,
        // 1735592400, + 12 h); the wall-clock 2025-01-01 12:00 Moscow = 09:00 UTC.
        assert_eq!(ts("created_at"), 1_735_635_600_000_000);
        assert_eq!(ts("updated_at"), 1_735_722_000_000_000);
        assert_eq!(
            batch.schema(),
            RecordMapper::new(project(), "onec", "deals", MappingOptions::default()).unwrap().def.schema()
        );

        let reasons: Vec<(&str, &str)> = q.iter().map(|r| (r.location.as_str(), r.reason.as_str())).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].0 == "a.csv:3" && reasons[0].1.contains("`stage`") && reasons[0].1.contains("Черновик"));
        assert!(reasons[1].1.contains("`source_id`"), "{reasons:?}");
        assert!(reasons[2].1.contains("`pipeline`") && reasons[2].1.contains("[sources.onec.columns]"));
        assert!(reasons[3].1.contains("`99`") && reasons[3].1.contains("codes"), "{reasons:?}");
        assert!(q.iter().all(|r| r.source_id == r.location && r.entity == "deals" && r.source_system == "onec"));
        let raw: serde_json::Value = serde_json::from_str(&q[0].raw).unwrap();
        assert_eq!(raw["stage"], "Черновик");
        assert_eq!(raw["source_id"], 17);
    }

    #[test]
    fn mapping_a_day_without_a_time_is_midday_in_the_source_zone() {
        let options = MappingOptions { time_zone: "Asia/Vladivostok".parse().unwrap(), ..MappingOptions::default() };
        let mut m = RecordMapper::new(project(), "legacy", "deals", options).unwrap();
        let day = NaiveDate::from_ymd_opt(2025, 11, 1).unwrap();
        let r = record(&[
            ("source_id", RawValue::Int(1)),
            ("pipeline", text("p")),
            ("stage", text("won")),
            ("source_stage", text("won")),
            ("status", text("won")),
            // A SQL DATE or an Excel whole-day cell, a bare date in text, a DATETIME at 00:00.
            ("created_at", RawValue::Date(day)),
            ("closed_at", text("2025-11-01")),
            ("updated_at", RawValue::DateTime(day.and_time(chrono::NaiveTime::MIN))),
        ]);
        m.push(&r, "x:1", &r);
        let (batch, q) = m.finish().unwrap();
        assert!(q.is_empty(), "{q:?}");
        let ts = |name: &str| batch.column_by_name(name).unwrap().as_primitive::<TimestampMicrosecondType>().value(0);
        // 2025-11-01 00:00Z is 1761955200 s. Midday in Vladivostok (UTC+10) is 02:00Z the same
        // day; a time of day, even 00:00, is that instant: 14:00Z the day before.
        assert_eq!(ts("created_at"), (1_761_955_200 + 2 * 3600) * 1_000_000);
        assert_eq!(ts("closed_at"), (1_761_955_200 + 2 * 3600) * 1_000_000);
        assert_eq!(ts("updated_at"), (1_761_955_200 - 10 * 3600) * 1_000_000);
        // A template still sees the day.
        assert_eq!(RawValue::Date(day).to_text().as_deref(), Some("2025-11-01"));
    }

    #[test]
    fn mapping_database_decimals_stay_exact_and_instants_ignore_the_zone() {
        let options = MappingOptions {
            origin: RecordOrigin::Query,
            time_zone: "Asia/Vladivostok".parse().unwrap(),
            ..MappingOptions::default()
        };
        let mut m = RecordMapper::new(project(), "legacy", "deals", options).unwrap();
        let nine = NaiveDate::from_ymd_opt(2025, 1, 10).unwrap().and_hms_opt(9, 0, 0).unwrap();
        let dec = |s: &str| RawValue::Decimal(Decimal::from_str_exact(s).unwrap());
        let r = record(&[
            ("source_id", RawValue::Int(1)),
            ("pipeline", text("p")),
            ("stage", text("new")),
            ("source_stage", text("new")),
            ("status", text("open")),
            ("amount", dec("9999999999999999.99")),
            ("commission", dec("1.500")),
            ("created_at", RawValue::DateTime(nine)),
            ("updated_at", RawValue::Utc(nine.and_utc())),
            ("title", RawValue::Utc(nine.and_utc())),
        ]);
        m.push(&r, "x:1", &r);
        let mut bad = r.clone();
        bad.fields[5].1 = dec("10.555");
        m.push(&bad, "x:2", &bad);
        let mut numeric_time = r.clone();
        numeric_time.fields[7].1 = dec("1736499600");
        m.push(&numeric_time, "x:3", &numeric_time);
        let (batch, q) = m.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let money = |name: &str| batch.column_by_name(name).unwrap().as_primitive::<Decimal128Type>().value(0);
        // 18 digits survive whole: through an f64 this would be 1e16.
        assert_eq!((money("amount"), money("commission")), (999_999_999_999_999_999, 150));
        let ts = |name: &str| batch.column_by_name(name).unwrap().as_primitive::<TimestampMicrosecondType>().value(0);
        // 2025-01-10 00:00Z is 1736467200 s. 09:00 wall-clock in Vladivostok (UTC+10) is 23:00Z the
        // day before: 1736467200 - 3600; the instant 09:00Z is 1736467200 + 32400.
        assert_eq!(ts("created_at"), 1_736_463_600_000_000);
        assert_eq!(ts("updated_at"), 1_736_499_600_000_000);
        assert_eq!(batch.column_by_name("title").unwrap().as_string::<i32>().value(0), "2025-01-10T09:00:00Z");
        assert_eq!(q.len(), 2, "{q:?}");
        assert!(
            q[0].reason.contains("`amount`") && q[0].reason.contains("`10.555`") && q[0].reason.contains("3 decimals")
        );
        assert!(q[1].reason.contains("`created_at`") && q[1].reason.contains("to_timestamp"), "{}", q[1].reason);
        let raw: serde_json::Value = serde_json::from_str(&q[0].raw).unwrap();
        assert_eq!(
            (raw["amount"].as_str(), raw["updated_at"].as_str()),
            (Some("10.555"), Some("2025-01-10T09:00:00Z"))
        );
    }

    #[test]
    fn mapping_month_takes_the_first_day_and_excel_dates() {
        let mut m = RecordMapper::new(project(), "plans", "plans", MappingOptions::default()).unwrap();
        let jan15 = NaiveDate::from_ymd_opt(2025, 1, 15).unwrap();
        for (i, month) in [RawValue::DateTime(jan15.and_hms_opt(0, 0, 0).unwrap()), text("2025-02-20"), text("2025-03")]
            .into_iter()
            .enumerate()
        {
            let r = record(&[
                ("source_id", RawValue::Int(i as i64)),
                ("month", month),
                ("metric", text("calls")),
                ("target", RawValue::Int(10)),
            ]);
            m.push(&r, "x", &r);
        }
        let (batch, q) = m.finish().unwrap();
        assert!(q.is_empty(), "{q:?}");
        let months = batch.column_by_name("month").unwrap().as_primitive::<Date32Type>();
        let days = |y, m| {
            (NaiveDate::from_ymd_opt(y, m, 1).unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
        };
        assert_eq!(months.values().to_vec(), vec![days(2025, 1), days(2025, 2), days(2025, 3)]);
        // plans has no own id column: `month` comes first.
        assert!(batch.column_by_name("plan_id").is_none());
    }

    #[test]
    fn mapping_branches_a_source_describes_itself() {
        let options = MappingOptions { own_branches: true, ..MappingOptions::default() };
        let mut b = RecordMapper::new(project(), "agents", "branches", options.clone()).unwrap();
        let branch = |id: &str, holding: &str, tz: &str| {
            record(&[
                ("source_id", text(id)),
                ("name", text(id)),
                ("holding_id", text(holding)),
                ("city", text(id)),
                ("time_zone", text(tz)),
            ])
        };
        for (i, r) in [
            branch("Central", "h", "America/Chicago"),
            branch("East", "north", "America/New_York"),
            branch("West", "h", "Pacific"),
        ]
        .iter()
        .enumerate()
        {
            b.push(r, &format!("agents.csv:{}", i + 2), r);
        }
        let mut declared = branch("x", "h", "UTC");
        declared.push("branch_id", text("msk"));
        b.push(&declared, "agents.csv:5", &declared);
        let (batch, q) = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        assert_eq!(batch.column_by_name("branch_id").unwrap().as_string::<i32>().value(0), "agents:Central");
        let reasons: Vec<&str> = q.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].contains("`north`") && reasons[0].contains("declared: h"), "{reasons:?}");
        assert!(reasons[1].contains("`Pacific`") && reasons[1].contains("IANA"), "{reasons:?}");
        assert!(reasons[2].contains("`msk`") && reasons[2].contains("[[organisation.branches]]"), "{reasons:?}");

        // The source's other tables: a code [organisation] knows is its branch, any other code
        // names the source's own branch; without `own_branches` an unknown code is quarantined.
        let mut m = RecordMapper::new(project(), "agents", "managers", options).unwrap();
        for (id, code) in [("a", "Central"), ("b", "")] {
            let r = record(&[
                ("source_id", text(id)),
                ("name", text(id)),
                ("active", text("1")),
                ("branch_code", text(code)),
            ]);
            m.push(&r, id, &r);
        }
        let mut onec = RecordMapper::new(
            project(),
            "onec",
            "managers",
            MappingOptions { own_branches: true, ..MappingOptions::default() },
        )
        .unwrap();
        let r = record(&[
            ("source_id", text("c")),
            ("name", text("c")),
            ("active", text("1")),
            ("branch_code", text("12")),
        ]);
        onec.push(&r, "c", &r);
        let (batch, q) = m.finish().unwrap();
        assert!(q.is_empty(), "{q:?}");
        let ids = batch.column_by_name("branch_id").unwrap().as_string::<i32>();
        assert_eq!((ids.value(0), ids.is_null(1)), ("agents:Central", true));
        assert_eq!(onec.finish().unwrap().0.column_by_name("branch_id").unwrap().as_string::<i32>().value(0), "msk");
        let mut strict = RecordMapper::new(project(), "agents", "managers", MappingOptions::default()).unwrap();
        let r = record(&[
            ("source_id", text("a")),
            ("name", text("a")),
            ("active", text("1")),
            ("branch_code", text("Central")),
        ]);
        strict.push(&r, "a", &r);
        assert!(strict.finish().unwrap().1[0].reason.contains("unknown branch code `Central`"));
    }

    #[test]
    fn mapping_own_id_column_only_for_the_tables_own_records() {
        let id = |t: &str| own_id_column(&canonical_table(t).unwrap());
        assert_eq!(id("deals"), Some(0));
        assert_eq!(id("activities"), Some(0));
        assert_eq!(id("intake_requests"), Some(0));
        assert_eq!(id("managers"), Some(0));
        assert_eq!(id("branches"), Some(0));
        assert_eq!(id("deal_stage_changes"), None);
        assert_eq!(id("plans"), None);
    }

    #[test]
    fn mapping_timestamps_refuse_numbers_and_garbage() {
        let sql = MappingOptions { origin: RecordOrigin::Query, ..MappingOptions::default() };
        let mut m = RecordMapper::new(project(), "legacy", "intake_requests", sql.clone()).unwrap();
        let r = record(&[
            ("source_id", text("1")),
            ("department", text("content")),
            ("status", text("new")),
            ("created_at", RawValue::Int(1_700_000_000)),
        ]);
        m.push(&r, "sqlite:intake_requests:source_id=1", &r);
        let r2 = record(&[
            ("source_id", text("2")),
            ("department", text("content")),
            ("status", text("new")),
            ("created_at", text("yesterday")),
        ]);
        m.push(&r2, "sqlite:intake_requests:source_id=2", &r2);
        let (batch, q) = m.finish().unwrap();
        assert_eq!(batch.num_rows(), 0);
        assert!(q[0].reason.contains("unixepoch"), "{}", q[0].reason);
        // The same number from a file or a pushed record: no query to convert it in.
        for (origin, fix) in [(RecordOrigin::File, "in the file"), (RecordOrigin::Push, "ISO 8601")] {
            let options = MappingOptions { origin, ..sql.clone() };
            let mut m = RecordMapper::new(project(), "legacy", "intake_requests", options).unwrap();
            m.push(&r, "x:1", &r);
            let (_, q) = m.finish().unwrap();
            assert!(
                q[0].reason.contains("is a number, not a date-time") && q[0].reason.contains(fix),
                "{}",
                q[0].reason
            );
            assert!(!q[0].reason.contains("query"), "{origin:?}: {}", q[0].reason);
        }
        assert!(
            q[1].reason.contains("`created_at`")
                && q[1].reason.contains("yesterday")
                && q[1].reason.contains("date_format")
        );
    }
}
