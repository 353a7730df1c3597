//! SQL database sources: one query per canonical table, incremental by a cursor column.
//!
//! Each `[sources.<name>.tables.<canonical table>]` names a query whose result columns are named
//! as the canonical columns. With a `cursor` column the query is wrapped as
//! `select * from (<query>) where <cursor> >= ? order by <cursor>` and resumed from the last
//! committed cursor, minus `lookback_seconds` for timestamps (rows at the boundary and late
//! writes are re-read; the warehouse merge makes that harmless). Without one, everything is
//! read every time.
//!
//! The query, cursor and chunking logic ([`incremental_query`], [`CursorValue`], [`RowChunker`])
//! know nothing of SQLite, so PostgreSQL and MySQL drivers can reuse them; only [`SqliteSource`]
//! talks to rusqlite, on the blocking pool.

use std::path::PathBuf;

use chrono::NaiveDateTime;
use dealhouse_warehouse::config::{SqlConfig, SqlTableConfig};
use dealhouse_warehouse::schema::canonical_tables;
use futures::stream::BoxStream;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tracing::warn;

use crate::mapping::{
    CHUNK_ROWS, ChunkSink, Mapper, MappingOptions, RawValue, Record, blocking_chunks, parse_time_zone,
};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};

/// The last cursor value of a chunk, kept in the commit as `int:17`, `real:1.5` or
/// `text:2025-01-02 03:04:05` so the next run binds the same SQL type.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorValue {
    /// An integer column (an increasing id, a unix time).
    Int(i64),
    /// A real column.
    Real(f64),
    /// A text column (timestamps as text, text ids).
    Text(String),
}

impl CursorValue {
    /// The stored form.
    pub fn encode(&self) -> String {
        match self {
            CursorValue::Int(i) => format!("int:{i}"),
            CursorValue::Real(r) => format!("real:{r}"),
            CursorValue::Text(s) => format!("text:{s}"),
        }
    }

    /// Reads the stored form back.
    pub fn decode(s: &str) -> Option<Self> {
        let (kind, value) = s.split_once(':')?;
        match kind {
            "int" => value.parse().ok().map(CursorValue::Int),
            "real" => value.parse().ok().map(CursorValue::Real),
            "text" => Some(CursorValue::Text(value.to_string())),
            _ => None,
        }
    }

    /// The cursor value of a raw column value (null and other kinds have none).
    pub fn from_raw(raw: &RawValue) -> Option<Self> {
        match raw {
            RawValue::Int(i) => Some(CursorValue::Int(*i)),
            RawValue::Float(f) if f.is_finite() => Some(CursorValue::Real(*f)),
            RawValue::Text(s) => Some(CursorValue::Text(s.clone())),
            _ => None,
        }
    }

    /// Where the next read starts: a text timestamp moves back by `lookback_seconds` (written
    /// in the same shape so text comparison still orders it), anything else (ids) stays.
    pub fn start_from(&self, lookback_seconds: u64) -> Self {
        let CursorValue::Text(s) = self else { return self.clone() };
        let back = chrono::Duration::seconds(i64::try_from(lookback_seconds).unwrap_or(i64::MAX / 1_000_000));
        if let Some(head) = s.get(..19) {
            for (format, sep) in [("%Y-%m-%d %H:%M:%S", ' '), ("%Y-%m-%dT%H:%M:%S", 'T')] {
                if let Ok(t) = NaiveDateTime::parse_from_str(head, format) {
                    let start = t.checked_sub_signed(back).unwrap_or(t);
                    return CursorValue::Text(start.format(&format!("%Y-%m-%d{sep}%H:%M:%S")).to_string());
                }
            }
        }
        if let Some(head) = s.get(..10)
            && let Ok(d) = chrono::NaiveDate::parse_from_str(head, "%Y-%m-%d")
        {
            // A date-only cursor moves back by whole days, at least the look-back.
            let midnight = d.and_time(chrono::NaiveTime::MIN);
            let start = midnight.checked_sub_signed(back).unwrap_or(midnight);
            return CursorValue::Text(start.date().format("%Y-%m-%d").to_string());
        }
        self.clone()
    }
}

/// A double-quoted SQL identifier (standard SQL, SQLite and PostgreSQL; MySQL in ANSI_QUOTES mode).
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The query actually run: the configured one, or (with a cursor) it wrapped to read in cursor
/// order from `placeholder` on (`?` in SQLite/MySQL, `$1` in PostgreSQL).
pub fn incremental_query(query: &str, cursor: Option<&str>, from_start: bool, placeholder: &str) -> String {
    let query = query.trim().trim_end_matches(';').trim_end();
    match cursor {
        None => query.to_string(),
        Some(c) => {
            let c = quote_identifier(c);
            if from_start {
                format!("select * from ({query}) as dealhouse_q order by {c}")
            } else {
                format!("select * from ({query}) as dealhouse_q where {c} >= {placeholder} order by {c}")
            }
        }
    }
}

/// Maps result rows of one table and cuts them into chunks, each carrying its largest cursor
/// value. Driver-independent: a driver turns its rows into [`Record`]s and pushes them here.
pub struct RowChunker {
    mapper: Mapper,
    location_prefix: String,
    cursor_column: Option<String>,
    max_cursor: Option<CursorValue>,
    row_number: u64,
}

impl RowChunker {
    /// Chunks for `mapper`'s table; quarantine locations read `{kind}:{table}:source_id={id}`.
    pub fn new(mapper: Mapper, kind: &str, cursor_column: Option<String>) -> Self {
        let location_prefix = format!("{kind}:{}", mapper.table());
        Self { mapper, location_prefix, cursor_column, max_cursor: None, row_number: 0 }
    }

    /// Maps one row; sends a chunk when enough rows are pending. False when the reader is gone.
    pub fn push(&mut self, record: Record, sink: &ChunkSink) -> Result<bool> {
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
        self.mapper.push(&record, &location, &record);
        if self.mapper.pending() >= CHUNK_ROWS {
            return self.flush(sink);
        }
        Ok(true)
    }

    /// Sends what is pending (if anything).
    pub fn flush(&mut self, sink: &ChunkSink) -> Result<bool> {
        if self.mapper.pending() == 0 {
            return Ok(true);
        }
        let cursor = self.max_cursor.as_ref().map(CursorValue::encode);
        sink.flush(&mut self.mapper, cursor)
    }
}

/// A SQLite database file.
pub struct SqliteSource {
    ctx: SourceContext,
    config: SqlConfig,
    path: PathBuf,
    options: MappingOptions,
}

impl SqliteSource {
    /// Builds the source.
    pub fn new(ctx: SourceContext, config: SqlConfig) -> Result<Self> {
        let time_zone = parse_time_zone(&ctx.source_name, config.time_zone.as_deref())?;
        let path = ctx.project.path(&config.path);
        let options = MappingOptions { time_zone, ..MappingOptions::default() };
        Ok(Self { ctx, config, path, options })
    }

    fn config_error(&self, message: String) -> Error {
        Error::Config { source_name: self.ctx.source_name.clone(), message }
    }

    fn table(&self, table: &str) -> Result<&SqlTableConfig> {
        self.config.tables.get(table).ok_or_else(|| {
            self.config_error(format!("no [sources.{}.tables.{table}] in dealhouse.toml", self.ctx.source_name))
        })
    }
}

/// Opens the database read-only, with a clear error when it is not there.
fn open_read_only(source_name: &str, path: &std::path::Path) -> Result<Connection> {
    if !path.is_file() {
        return Err(Error::Config {
            source_name: source_name.to_string(),
            message: format!(
                "database file {} does not exist; fix [sources.{source_name}].path (relative to the project directory)",
                path.display()
            ),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    Connection::open_with_flags(path, flags).map_err(|e| Error::Config {
        source_name: source_name.to_string(),
        message: format!("cannot open {} as a SQLite database: {e}", path.display()),
    })
}

fn raw_value(v: ValueRef<'_>) -> RawValue {
    match v {
        ValueRef::Null => RawValue::Null,
        ValueRef::Integer(i) => RawValue::Int(i),
        ValueRef::Real(f) => RawValue::Float(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => RawValue::Text(s.to_string()),
            Err(_) => RawValue::Invalid("text that is not valid UTF-8".into()),
        },
        ValueRef::Blob(b) => RawValue::Invalid(format!("a BLOB of {} bytes; cast it to text in the query", b.len())),
    }
}

fn bind_value(c: &CursorValue) -> Value {
    match c {
        CursorValue::Int(i) => Value::Integer(*i),
        CursorValue::Real(r) => Value::Real(*r),
        CursorValue::Text(s) => Value::Text(s.clone()),
    }
}

#[async_trait::async_trait]
impl Source for SqliteSource {
    async fn check(&self) -> Result<()> {
        let name = self.ctx.source_name.clone();
        let path = self.path.clone();
        let tables: Vec<(String, SqlTableConfig)> =
            self.config.tables.iter().map(|(t, c)| (t.clone(), c.clone())).collect();
        let checked = tokio::task::spawn_blocking(move || -> Result<()> {
            let conn = open_read_only(&name, &path)?;
            for (table, config) in &tables {
                let sql = incremental_query(&config.query, config.cursor.as_deref(), true, "?");
                let fix = format!("fix [sources.{name}.tables.{table}].query");
                let stmt = conn.prepare(&sql).map_err(|e| Error::Config {
                    source_name: name.clone(),
                    message: format!("the query for `{table}` fails on {}: {e}; {fix}", path.display()),
                })?;
                let columns = stmt.column_names();
                let mut required = vec!["source_id"];
                required.extend(config.cursor.as_deref());
                for c in required {
                    if !columns.contains(&c) {
                        return Err(Error::Config {
                            source_name: name.clone(),
                            message: format!(
                                "the query for `{table}` has no `{c}` column (it returns {}); {fix}",
                                columns.join(", ")
                            ),
                        });
                    }
                }
            }
            Ok(())
        })
        .await;
        checked.map_err(|e| self.config_error(format!("the check stopped unexpectedly: {e}")))?
    }

    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        let mut streams = vec![];
        for def in canonical_tables() {
            let Some(config) = self.config.tables.get(def.name) else { continue };
            let name = self.ctx.source_name.clone();
            let path = self.path.clone();
            let sql =
                format!("select count(*) from ({}) as dealhouse_q", incremental_query(&config.query, None, true, "?"));
            // Counting is for progress bars only: any failure just leaves the estimate out.
            let estimated_rows = tokio::task::spawn_blocking(move || {
                let conn = open_read_only(&name, &path).ok()?;
                conn.query_row(&sql, [], |r| r.get::<_, i64>(0)).ok().and_then(|n| u64::try_from(n).ok())
            })
            .await
            .ok()
            .flatten();
            streams.push(StreamInfo { table: def.name, estimated_rows });
        }
        for table in self.config.tables.keys() {
            if !streams.iter().any(|s| s.table == table) {
                return Err(self.config_error(format!(
                    "`{table}` in [sources.{}.tables] is not a canonical table",
                    self.ctx.source_name
                )));
            }
        }
        Ok(streams)
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        let config = match self.table(table) {
            Ok(c) => c.clone(),
            Err(e) => return Box::pin(futures::stream::once(async { Err(e) })),
        };
        let mut options = self.options.clone();
        options.columns_hint =
            format!("[sources.{}.tables.{table}].query (a column of that name)", self.ctx.source_name);
        let mapper = match Mapper::new(self.ctx.project.clone(), &self.ctx.source_name, table, options) {
            Ok(m) => m,
            Err(e) => return Box::pin(futures::stream::once(async { Err(e) })),
        };
        let start = match (&config.cursor, cursor) {
            (Some(_), Some(stored)) => match CursorValue::decode(&stored) {
                Some(c) => Some(c.start_from(config.lookback_seconds)),
                None => {
                    // Reading everything again is always safe: the merge drops what is unchanged.
                    warn!(source = %self.ctx.source_name, table, cursor = %stored, "stored cursor not understood; reading everything");
                    None
                }
            },
            _ => None,
        };
        let name = self.ctx.source_name.clone();
        let path = self.path.clone();
        let location = format!("{} ({table})", self.path.display());
        blocking_chunks(name.clone(), move |sink| {
            let conn = open_read_only(&name, &path)?;
            let sql = incremental_query(&config.query, config.cursor.as_deref(), start.is_none(), "?");
            let fail = |e: rusqlite::Error| Error::Read {
                source_name: name.clone(),
                location: location.clone(),
                message: format!("{e}; check [sources.{name}.tables.{table}]"),
            };
            let mut stmt = conn.prepare(&sql).map_err(fail)?;
            let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
            let params: Vec<Value> = start.iter().map(bind_value).collect();
            let mut rows = stmt.query(rusqlite::params_from_iter(params)).map_err(fail)?;
            let mut chunker = RowChunker::new(mapper, "sqlite", config.cursor.clone());
            while let Some(row) = rows.next().map_err(fail)? {
                let mut record = Record::new();
                for (i, c) in columns.iter().enumerate() {
                    record.push(c.clone(), row.get_ref(i).map(raw_value).map_err(fail)?);
                }
                if !chunker.push(record, sink)? {
                    return Ok(());
                }
            }
            chunker.flush(sink)?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_cursor_round_trips_and_looks_back_in_the_same_shape() {
        for c in [CursorValue::Int(17), CursorValue::Real(1.5), CursorValue::Text("2025-01-02 03:04:05".into())] {
            assert_eq!(CursorValue::decode(&c.encode()), Some(c));
        }
        assert_eq!(CursorValue::decode("garbage"), None);
        let text = |s: &str| CursorValue::Text(s.into());
        assert_eq!(text("2025-01-02 03:04:05").start_from(300), text("2025-01-02 02:59:05"));
        assert_eq!(text("2025-01-01T00:02:00+03:00").start_from(300), text("2024-12-31T23:57:00"));
        assert_eq!(text("2025-01-02").start_from(300), text("2025-01-01"));
        assert_eq!(text("2025-01-02").start_from(0), text("2025-01-02"));
        assert_eq!(text("A-0017").start_from(300), text("A-0017"));
        assert_eq!(CursorValue::Int(42).start_from(300), CursorValue::Int(42));
    }

    #[test]
    fn sql_incremental_query_wraps_and_quotes() {
        assert_eq!(incremental_query("select 1 as source_id;", None, false, "?"), "select 1 as source_id");
        assert_eq!(
            incremental_query("select * from t", Some("updated_at"), false, "?"),
            "select * from (select * from t) as dealhouse_q where \"updated_at\" >= ? order by \"updated_at\""
        );
        assert_eq!(
            incremental_query("select * from t", Some("we\"ird"), true, "$1"),
            "select * from (select * from t) as dealhouse_q order by \"we\"\"ird\""
        );
    }
}
