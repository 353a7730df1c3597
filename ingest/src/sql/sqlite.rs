//! SQLite database files, read through rusqlite on the blocking pool.

use std::path::PathBuf;

use super::config::{SqlConfig, SqlTableConfig};
use dealhouse_warehouse::schema::canonical_tables;
use futures::stream::BoxStream;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags};
use tracing::warn;

use super::{CursorValue, Dialect, RowChunker, incremental_query, replay_groups, replay_query};
use crate::column_specs::ColumnRule;
use crate::mapping::{MappingOptions, RawValue, Record, RecordMapper, RecordOrigin, blocking_chunks, parse_time_zone};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};
use dealhouse_warehouse::schema::QuarantineRecord;

const DIALECT: Dialect = Dialect::Sqlite;

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
        let path = config.path.as_deref().map(|p| ctx.project.path(p)).ok_or_else(|| Error::Config {
            source_name: ctx.source_name.clone(),
            message: format!("set [sources.{}].path to the database file", ctx.source_name),
        })?;
        let options = MappingOptions {
            origin: RecordOrigin::Query,
            time_zone,
            currency: config.currency.clone(),
            ..MappingOptions::default()
        };
        Ok(Self { ctx, config, path, options })
    }

    fn config_error(&self, message: String) -> Error {
        Error::Config { source_name: self.ctx.source_name.clone(), message }
    }

    fn mapper(&self, table: &str) -> Result<(RecordMapper, Vec<(String, ColumnRule)>)> {
        let config = self.table(table)?;
        super::table_mapper(self.ctx.project.clone(), &self.ctx.source_name, table, config, &self.options)
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
        // SQLite hands out only the kinds above; the others are bound as the text SQLite keeps.
        CursorValue::Decimal(d) => Value::Text(d.to_string()),
        CursorValue::Timestamp(t) => Value::Text(t.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
        CursorValue::Instant(t) => Value::Text(t.format("%Y-%m-%d %H:%M:%S%.f").to_string()),
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
                let sql = incremental_query(DIALECT, &config.query, config.cursor.as_deref(), true);
                let fix = format!("fix [sources.{name}.tables.{table}].query");
                let stmt = conn.prepare(&sql).map_err(|e| Error::Config {
                    source_name: name.clone(),
                    message: format!("the query for `{table}` fails on {}: {e}; {fix}", path.display()),
                })?;
                let columns = stmt.column_names();
                for c in config.needed_columns() {
                    if !columns.contains(&c.as_str()) {
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
            let sql = format!(
                "select count(*) from ({}) as dealhouse_q",
                incremental_query(DIALECT, &config.query, None, true)
            );
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

    fn mapping_fingerprint(&self) -> Option<String> {
        Some(super::fingerprint(&self.ctx, &self.config))
    }

    fn replay(&self, table: &'static str, held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        let (config, mapper) = match self.table(table).and_then(|c| Ok((c.clone(), self.mapper(table)?))) {
            Ok(x) => x,
            Err(e) => return Box::pin(futures::stream::once(async { Err(e) })),
        };
        let groups = replay_groups(&held);
        let name = self.ctx.source_name.clone();
        let path = self.path.clone();
        let location = format!("{} ({table})", self.path.display());
        blocking_chunks(name.clone(), move |sink| {
            let conn = open_read_only(&name, &path)?;
            let fail = |e: rusqlite::Error| Error::Read {
                source_name: name.clone(),
                location: location.clone(),
                message: format!("{e}; check [sources.{name}.tables.{table}]"),
            };
            let mut chunker = RowChunker::new(mapper, "sqlite", None);
            for (ids, keys) in groups {
                let mut stmt = conn.prepare(&replay_query(DIALECT, &config.query, ids.len())).map_err(fail)?;
                let columns: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
                let mut rows = stmt.query(rusqlite::params_from_iter(ids.iter())).map_err(fail)?;
                while let Some(row) = rows.next().map_err(fail)? {
                    let mut record = Record::new();
                    for (i, c) in columns.iter().enumerate() {
                        record.push(c.clone(), row.get_ref(i).map(raw_value).map_err(fail)?);
                    }
                    if !chunker.push(record, sink)? {
                        return Ok(());
                    }
                }
                // Ids asked for and not found are no longer in the database: their rows give way.
                let mut chunk = chunker.rest()?;
                chunk.settled.extend(keys);
                if !sink.send(chunk) {
                    return Ok(());
                }
            }
            Ok(())
        })
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        let (config, mapper) = match self.table(table).and_then(|c| Ok((c.clone(), self.mapper(table)?))) {
            Ok(x) => x,
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
            let sql = incremental_query(DIALECT, &config.query, config.cursor.as_deref(), start.is_none());
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
