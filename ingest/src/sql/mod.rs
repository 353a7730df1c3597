//! SQL database sources: one query per canonical table, incremental by a cursor column.
//!
//! Each `[sources.<name>.tables.<canonical table>]` names a query whose result columns are named
//! as the canonical columns. With a `cursor` column the query is wrapped as
//! `select * from (<query>) where <cursor> >= ? order by <cursor>` and resumed from the last
//! committed cursor, minus `lookback_seconds` for timestamps (rows at the boundary and late
//! writes are re-read; the warehouse merge makes that harmless). Without one, everything is
//! read every time.
//!
//! This module holds what every engine shares: the query wrapping ([`incremental_query`] in an
//! engine's [`Dialect`]), the stored cursor ([`CursorValue`]) and the cutting of mapped rows into
//! chunks ([`RowChunker`]). [`sqlite`] reads files through rusqlite on the blocking pool;
//! [`server`] reads PostgreSQL and MySQL/MariaDB through sqlx, with [`values`] turning their typed
//! values into the mapper's raw values.

pub mod config;
pub mod server;
pub mod sqlite;
pub mod values;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;

use crate::Result;
use dealhouse_warehouse::schema::QuarantineRecord;

use crate::Error;
use crate::column_specs::ColumnRule;
use crate::mapping::{CHUNK_ROWS, ChunkSink, MappingOptions, RawValue, Record, RecordMapper};
use crate::source::{Chunk, SourceContext};
use dealhouse_warehouse::Project;

pub use server::{Engine, ServerSource};
pub use sqlite::SqliteSource;

/// The last cursor value of a chunk, kept in the commit as `int:17`, `text:2025-01-02 03:04:05`,
/// `ts:2025-01-02T03:04:05.250` ... so the next run binds a value of the column's own SQL type.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    /// An integer column (an increasing id, a unix time).
    Int(i64),
    /// A real column.
    Real(f64),
    /// An exact numeric column.
    Decimal(Decimal),
    /// A text column (timestamps as text, text ids).
    Text(String),
    /// A timestamp without zone (PostgreSQL `timestamp`, MySQL `DATETIME`) or a date.
    Timestamp(NaiveDateTime),
    /// An instant (PostgreSQL `timestamptz`, MySQL `TIMESTAMP`).
    Instant(DateTime<Utc>),
}

const NAIVE_CURSOR: &str = "%Y-%m-%dT%H:%M:%S%.f";

impl CursorValue {
    /// The stored form.
    pub fn encode(&self) -> String {
        match self {
            CursorValue::Int(i) => format!("int:{i}"),
            CursorValue::Real(r) => format!("real:{r}"),
            CursorValue::Decimal(d) => format!("dec:{d}"),
            CursorValue::Text(s) => format!("text:{s}"),
            CursorValue::Timestamp(t) => format!("ts:{}", t.format(NAIVE_CURSOR)),
            CursorValue::Instant(t) => format!("tstz:{}", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        }
    }

    /// Reads the stored form back.
    pub fn decode(s: &str) -> Option<Self> {
        let (kind, value) = s.split_once(':')?;
        match kind {
            "int" => value.parse().ok().map(CursorValue::Int),
            "real" => value.parse().ok().map(CursorValue::Real),
            "dec" => Decimal::from_str_exact(value).ok().map(CursorValue::Decimal),
            "text" => Some(CursorValue::Text(value.to_string())),
            "ts" => NaiveDateTime::parse_from_str(value, NAIVE_CURSOR).ok().map(CursorValue::Timestamp),
            "tstz" => DateTime::parse_from_rfc3339(value).ok().map(|t| CursorValue::Instant(t.with_timezone(&Utc))),
            _ => None,
        }
    }

    /// The cursor value of a raw column value (null and other kinds have none).
    pub fn from_raw(raw: &RawValue) -> Option<Self> {
        match raw {
            RawValue::Int(i) => Some(CursorValue::Int(*i)),
            RawValue::Float(f) if f.is_finite() => Some(CursorValue::Real(*f)),
            RawValue::Decimal(d) => Some(CursorValue::Decimal(*d)),
            RawValue::Text(s) => Some(CursorValue::Text(s.clone())),
            RawValue::DateTime(t) => Some(CursorValue::Timestamp(*t)),
            // Compared with the column as the engine's midnight of the day, as before dates had
            // their own kind.
            RawValue::Date(d) => Some(CursorValue::Timestamp(d.and_time(NaiveTime::MIN))),
            RawValue::Utc(t) => Some(CursorValue::Instant(*t)),
            _ => None,
        }
    }

    /// Where the next read starts: a timestamp moves back by `lookback_seconds` (a text one is
    /// written in the same shape so text comparison still orders it), anything else (ids) stays.
    pub fn start_from(&self, lookback_seconds: u64) -> Self {
        let back = chrono::Duration::seconds(i64::try_from(lookback_seconds).unwrap_or(i64::MAX / 1_000_000));
        match self {
            CursorValue::Timestamp(t) => CursorValue::Timestamp(t.checked_sub_signed(back).unwrap_or(*t)),
            CursorValue::Instant(t) => CursorValue::Instant(t.checked_sub_signed(back).unwrap_or(*t)),
            CursorValue::Text(s) => CursorValue::Text(text_start_from(s, back)),
            other => other.clone(),
        }
    }
}

/// A timestamp or date written as text, moved back by `back` in the same shape.
fn text_start_from(s: &str, back: chrono::Duration) -> String {
    if let Some(head) = s.get(..19) {
        for (format, sep) in [("%Y-%m-%d %H:%M:%S", ' '), ("%Y-%m-%dT%H:%M:%S", 'T')] {
            if let Ok(t) = NaiveDateTime::parse_from_str(head, format) {
                let start = t.checked_sub_signed(back).unwrap_or(t);
                return start.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string();
            }
        }
    }
    if let Some(head) = s.get(..10)
        && let Ok(d) = NaiveDate::parse_from_str(head, "%Y-%m-%d")
    {
        // A date-only cursor moves back by whole days, at least the look-back.
        let midnight = d.and_time(NaiveTime::MIN);
        let start = midnight.checked_sub_signed(back).unwrap_or(midnight);
        return start.date().format("%Y-%m-%d").to_string();
    }
    s.to_string()
}

/// How an engine writes identifiers and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: `"name"`, `?`.
    Sqlite,
    /// PostgreSQL: `"name"`, `$1`.
    Postgres,
    /// MySQL/MariaDB: `` `name` `` (double quotes are strings there unless ANSI_QUOTES), `?`.
    Mysql,
}

impl Dialect {
    /// A quoted identifier.
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
            Dialect::Sqlite | Dialect::Postgres => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// The first (only) query parameter.
    pub fn placeholder(self) -> &'static str {
        match self {
            Dialect::Postgres => "$1",
            Dialect::Sqlite | Dialect::Mysql => "?",
        }
    }
}

/// The query actually run: the configured one, or (with a cursor) it wrapped to read in cursor
/// order, from the dialect's placeholder on unless `from_start`. The configured query sits on
/// lines of its own so a trailing `-- comment` in it cannot swallow the wrapping.
pub fn incremental_query(dialect: Dialect, query: &str, cursor: Option<&str>, from_start: bool) -> String {
    let query = query.trim().trim_end_matches(';').trim_end();
    match cursor {
        None => query.to_string(),
        Some(c) => {
            let c = dialect.quote(c);
            if from_start {
                format!("select * from (\n{query}\n) as dealhouse_q order by {c}")
            } else {
                let p = dialect.placeholder();
                format!("select * from (\n{query}\n) as dealhouse_q where {c} >= {p} order by {c}")
            }
        }
    }
}

/// Source ids asked for in one replay query.
pub const REPLAY_IDS: usize = 500;

/// The query that reads again the rows whose `source_id` (compared as text, whatever its SQL
/// type) is one of `count` bound values: a replay of quarantined rows by primary key.
pub fn replay_query(dialect: Dialect, query: &str, count: usize) -> String {
    let query = query.trim().trim_end_matches(';').trim_end();
    let id = dialect.quote("source_id");
    let as_text = match dialect {
        Dialect::Mysql => format!("cast({id} as char)"),
        Dialect::Sqlite | Dialect::Postgres => format!("cast({id} as text)"),
    };
    let params: Vec<String> = (1..=count)
        .map(|n| match dialect {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite | Dialect::Mysql => "?".to_string(),
        })
        .collect();
    format!("select * from (\n{query}\n) as dealhouse_q where {as_text} in ({})", params.join(", "))
}

/// The held rows a SQL source can read again (those with a `source_id`), in groups of
/// [`REPLAY_IDS`]: each group's ids and the quarantine keys it answers for.
pub fn replay_groups(held: &[QuarantineRecord]) -> Vec<(Vec<String>, Vec<String>)> {
    let by_id: Vec<(String, String)> =
        held.iter().filter_map(|q| Some((crate::quarantine::record_id(q)?, q.source_id.clone()))).collect();
    by_id
        .chunks(REPLAY_IDS)
        .map(|group| group.iter().cloned().unzip::<String, String, Vec<String>, Vec<String>>())
        .collect()
}

/// The mapper of one table of a SQL source and the `columns` specs applied to its result rows:
/// `base` (the source's time zone) with the table's `values` and the places reasons point to.
pub(crate) fn table_mapper(
    project: std::sync::Arc<Project>,
    source: &str,
    table: &str,
    config: &config::SqlTableConfig,
    base: &MappingOptions,
) -> Result<(RecordMapper, Vec<(String, ColumnRule)>)> {
    let section = format!("sources.{source}.tables.{table}");
    let columns = config
        .columns
        .iter()
        .map(|(column, text)| {
            ColumnRule::parse(text).map(|rule| (column.clone(), rule)).map_err(|e| Error::Config {
                source_name: source.to_string(),
                message: format!("[{section}.columns] {column}: {e}"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let options = MappingOptions {
        values: config.values.clone(),
        columns_hint: format!("[{section}].query (a column of that name) or [{section}.columns]"),
        alternatives: config
            .columns
            .iter()
            .filter(|(_, text)| text.alternatives().len() > 1)
            .map(|(column, text)| (column.clone(), text.shown()))
            .collect(),
        values_section: Some(section),
        ..base.clone()
    };
    Ok((RecordMapper::new(project, source, table, options)?, columns))
}

/// What decides how a SQL source's rows map: the queries, `columns`, `values` and the time zone
/// (and the branch codes and vocabularies, see the quarantine's fingerprint). The connection is
/// left out: moving the database does not change a row.
pub(crate) fn fingerprint(ctx: &SourceContext, config: &config::SqlConfig) -> String {
    let mapping = format!("{:?}|{:?}|{:?}", config.time_zone, config.tables, config.currency);
    crate::quarantine::fingerprint(&ctx.project.config, &ctx.source_name, &mapping)
}

/// Maps result rows of one table and cuts them into chunks, each carrying its largest cursor
/// value. Driver-independent: a driver turns its rows into [`Record`]s and adds them here.
///
/// The cursor a chunk carries is safe to resume from only because the rows come ordered by the
/// cursor column (see [`incremental_query`]): every row with a smaller value is in this chunk
/// or an earlier one, and rows with the same value are read again (`>=`).
pub struct RowChunker {
    mapper: RecordMapper,
    /// The table's `columns` specs: canonical column -> result columns, ahead of the result
    /// column of the same name.
    columns: Vec<(String, ColumnRule)>,
    location_prefix: String,
    cursor_column: Option<String>,
    max_cursor: Option<CursorValue>,
    row_number: u64,
}

impl RowChunker {
    /// Chunks for `mapper`'s table, whose result rows go through `columns` first; quarantine
    /// locations read `{kind}:{table}:source_id={id}`.
    pub fn new(
        (mapper, columns): (RecordMapper, Vec<(String, ColumnRule)>),
        kind: &str,
        cursor_column: Option<String>,
    ) -> Self {
        let location_prefix = format!("{kind}:{}", mapper.table());
        Self { mapper, columns, location_prefix, cursor_column, max_cursor: None, row_number: 0 }
    }

    /// The record the mapper sees: each `columns` spec's value first (so it wins over a result
    /// column of the same name), then the result columns as they are.
    fn mapped(&self, record: &Record) -> Option<Record> {
        if self.columns.is_empty() {
            return None;
        }
        let cell = |name: &String| record.get(name).cloned().unwrap_or(RawValue::Null);
        let mut mapped = Record::new();
        for (column, rule) in &self.columns {
            mapped.push(column.clone(), rule.value(&cell));
        }
        for (name, value) in record.fields() {
            mapped.push(name.clone(), value.clone());
        }
        Some(mapped)
    }

    /// Maps one row; returns a chunk when enough rows are pending.
    pub fn add(&mut self, record: Record) -> Result<Option<Chunk>> {
        self.row_number += 1;
        if let Some(c) = &self.cursor_column
            && let Some(v) = record.get(c).and_then(CursorValue::from_raw)
        {
            // Rows arrive in cursor order, so the latest value is the largest.
            self.max_cursor = Some(v);
        }
        let location = match record.get("source_id").and_then(RawValue::to_text) {
            Some(id) => format!("{}:source_id={id}", self.location_prefix),
            None => format!("{}:row={}", self.location_prefix, self.row_number),
        };
        match self.mapped(&record) {
            Some(mapped) => self.mapper.push(&mapped, &location, &record),
            None => self.mapper.push(&record, &location, &record),
        }
        if self.mapper.pending() >= CHUNK_ROWS {
            return self.take();
        }
        Ok(None)
    }

    /// What is pending, as a chunk (None when nothing is).
    pub fn take(&mut self) -> Result<Option<Chunk>> {
        if self.mapper.pending() == 0 {
            return Ok(None);
        }
        let cursor = self.max_cursor.as_ref().map(CursorValue::encode);
        Ok(Some(self.mapper.chunk(cursor)?))
    }

    /// The rest as a chunk, empty or not (a replay's last chunk settles its ids either way).
    pub fn rest(&mut self) -> Result<Chunk> {
        let cursor = self.max_cursor.as_ref().map(CursorValue::encode);
        self.mapper.chunk(cursor)
    }

    /// [`RowChunker::add`] for blocking producers; false when the reader is gone.
    pub fn push(&mut self, record: Record, sink: &ChunkSink) -> Result<bool> {
        Ok(self.add(record)?.is_none_or(|chunk| sink.send(chunk)))
    }

    /// [`RowChunker::take`] for blocking producers; false when the reader is gone.
    pub fn flush(&mut self, sink: &ChunkSink) -> Result<bool> {
        Ok(self.take()?.is_none_or(|chunk| sink.send(chunk)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_cursor_round_trips_and_looks_back_in_the_same_shape() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        for c in [
            CursorValue::Int(17),
            CursorValue::Real(1.5),
            CursorValue::Decimal(Decimal::new(123_456, 2)),
            CursorValue::Text("2025-01-02 03:04:05".into()),
            CursorValue::Timestamp(at("2025-01-02 03:04:05.250")),
            CursorValue::Timestamp(at("2025-01-02 03:04:05")),
            CursorValue::Instant(at("2025-01-02 03:04:05.000001").and_utc()),
        ] {
            assert_eq!(CursorValue::decode(&c.encode()), Some(c));
        }
        assert_eq!(CursorValue::Timestamp(at("2025-01-02 03:04:05.25")).encode(), "ts:2025-01-02T03:04:05.250");
        assert_eq!(CursorValue::Instant(at("2025-01-02 03:04:05").and_utc()).encode(), "tstz:2025-01-02T03:04:05Z");
        assert_eq!(CursorValue::decode("garbage"), None);
        assert_eq!(CursorValue::decode("ts:yesterday"), None);
        let text = |s: &str| CursorValue::Text(s.into());
        assert_eq!(text("2025-01-02 03:04:05").start_from(300), text("2025-01-02 02:59:05"));
        assert_eq!(text("2025-01-01T00:02:00+03:00").start_from(300), text("2024-12-31T23:57:00"));
        assert_eq!(text("2025-01-02").start_from(300), text("2025-01-01"));
        assert_eq!(text("2025-01-02").start_from(0), text("2025-01-02"));
        assert_eq!(text("A-0017").start_from(300), text("A-0017"));
        assert_eq!(CursorValue::Int(42).start_from(300), CursorValue::Int(42));
        assert_eq!(
            CursorValue::Timestamp(at("2025-01-10 00:02:00.5")).start_from(300),
            CursorValue::Timestamp(at("2025-01-09 23:57:00.5"))
        );
        assert_eq!(
            CursorValue::Instant(at("2025-01-10 00:00:00").and_utc()).start_from(60),
            CursorValue::Instant(at("2025-01-09 23:59:00").and_utc())
        );
    }

    #[test]
    fn sql_replay_query_reads_rows_by_source_id_as_text() {
        assert_eq!(
            replay_query(Dialect::Postgres, "select * from t;", 3),
            "select * from (\nselect * from t\n) as dealhouse_q where cast(\"source_id\" as text) in ($1, $2, $3)"
        );
        assert_eq!(
            replay_query(Dialect::Mysql, "select * from t", 2),
            "select * from (\nselect * from t\n) as dealhouse_q where cast(`source_id` as char) in (?, ?)"
        );
        assert_eq!(
            replay_query(Dialect::Sqlite, "select * from t -- all", 1),
            "select * from (\nselect * from t -- all\n) as dealhouse_q where cast(\"source_id\" as text) in (?)"
        );
    }

    #[test]
    fn sql_incremental_query_wraps_and_quotes_per_dialect() {
        assert_eq!(incremental_query(Dialect::Sqlite, "select 1 as source_id;", None, false), "select 1 as source_id");
        assert_eq!(
            incremental_query(Dialect::Sqlite, "select * from t", Some("updated_at"), false),
            "select * from (\nselect * from t\n) as dealhouse_q where \"updated_at\" >= ? order by \"updated_at\""
        );
        assert_eq!(
            incremental_query(Dialect::Postgres, "select * from t -- all of it\n;", Some("we\"ird"), true),
            "select * from (\nselect * from t -- all of it\n) as dealhouse_q order by \"we\"\"ird\""
        );
        assert_eq!(
            incremental_query(Dialect::Postgres, "select * from t", Some("updated_at"), false),
            "select * from (\nselect * from t\n) as dealhouse_q where \"updated_at\" >= $1 order by \"updated_at\""
        );
        assert_eq!(
            incremental_query(Dialect::Mysql, "select * from t", Some("upd`at"), false),
            "select * from (\nselect * from t\n) as dealhouse_q where `upd``at` >= ? order by `upd``at`"
        );
    }
}
