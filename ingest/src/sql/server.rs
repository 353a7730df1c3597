//! PostgreSQL and MySQL/MariaDB sources, read over the network through sqlx.
//!
//! A source connects to the URL in its `url_env` variable (or its inline `url`), read-only, and
//! streams each configured query in cursor order, mapping rows as they arrive and committing a
//! chunk every [`crate::mapping::CHUNK_ROWS`] rows, so a table of any size never sits in memory.
//! The URL's password never leaves this module: locations show the URL with `***` in its place,
//! and every error message is scrubbed of it.

use std::time::Duration;

use super::config::{SqlConfig, SqlTableConfig, sql_url_schemes};
use chrono::{DateTime, NaiveDateTime, Utc};
use dealhouse_warehouse::schema::canonical_tables;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use rust_decimal::Decimal;
use sqlx_core::column::Column;
use sqlx_core::connection::{ConnectOptions, Connection};
use sqlx_core::database::Database;
use sqlx_core::encode::Encode;
use sqlx_core::executor::Executor;
use sqlx_core::query::Query;
use sqlx_core::statement::Statement;
use sqlx_core::types::Type;
use sqlx_mysql::{MySql, MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx_postgres::{PgConnectOptions, PgConnection, Postgres};
use tracing::{debug, warn};
use url::Url;

use super::values::{mysql_record, pg_record};
use super::{CursorValue, Dialect, RowChunker, incremental_query, replay_groups, replay_query};
use crate::column_specs::ColumnRule;
use crate::mapping::{MappingOptions, RawValue, Record, RecordMapper, RecordOrigin, parse_time_zone};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};
use dealhouse_warehouse::schema::QuarantineRecord;

/// How long to wait for a server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The database engine a server source talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Engine {
    /// The `kind` in dealhouse.toml (also the prefix of quarantine locations).
    pub fn kind(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }

    fn display(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }

    fn dialect(self) -> Dialect {
        match self {
            Engine::Postgres => Dialect::Postgres,
            Engine::Mysql => Dialect::Mysql,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::Mysql => 3306,
        }
    }
}

/// Where a source connects, and how to name that without the password.
#[derive(Clone)]
struct Target {
    engine: Engine,
    /// The URL with its password; only ever handed to the driver.
    url: Url,
    /// The URL with `***` for the password and without its query string.
    shown: String,
    host_port: String,
    user: String,
    database: String,
    /// Where the URL is configured, for "fix it in ..." hints.
    origin: String,
    /// Password forms to scrub from messages (as written and percent-decoded).
    secrets: Vec<String>,
}

impl Target {
    fn new(engine: Engine, url: Url, origin: String) -> Self {
        let mut shown = url.clone();
        // Never fails for URLs with a host, which validation requires.
        let _ = shown.set_password(url.password().map(|_| "***"));
        shown.set_query(None);
        let host_port =
            format!("{}:{}", url.host_str().unwrap_or("localhost"), url.port().unwrap_or(engine.default_port()));
        let mut secrets = vec![];
        if let Some(p) = url.password().filter(|p| !p.is_empty()) {
            secrets.push(p.to_string());
            secrets.push(percent_decode(p));
        }
        // Drivers also accept a password in the query string.
        for (k, v) in url.query_pairs() {
            if k.to_ascii_lowercase().contains("pass") && !v.is_empty() {
                secrets.push(v.into_owned());
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let user = match url.username() {
            "" => "(the driver's default user)".to_string(),
            u => percent_decode(u),
        };
        Self {
            engine,
            shown: shown.to_string(),
            host_port,
            user,
            database: url.path().trim_start_matches('/').to_string(),
            origin,
            secrets,
            url,
        }
    }

    /// `message` with every form of the password replaced by `***`.
    fn scrub(&self, message: impl Into<String>) -> String {
        let mut message = message.into();
        for s in &self.secrets {
            message = message.replace(s.as_str(), "***");
        }
        message
    }

    /// What a driver error means here, and what to do about it.
    fn explain(&self, e: &sqlx_core::Error) -> String {
        let engine = self.engine.display();
        let (host_port, origin, user, database) = (&self.host_port, &self.origin, &self.user, &self.database);
        let message = match e {
            sqlx_core::Error::Io(io) => format!(
                "cannot reach {engine} at {host_port} ({io}): is it running? Start it, or fix the host and port in {origin}"
            ),
            sqlx_core::Error::Database(db) => {
                let code = db.code().unwrap_or_default().to_string();
                let number = db.try_downcast_ref::<MySqlDatabaseError>().map(MySqlDatabaseError::number);
                let text = db.message();
                match (self.engine, code.as_str(), number) {
                    (Engine::Postgres, "28P01" | "28000", _) | (Engine::Mysql, _, Some(1045 | 1698)) => format!(
                        "authentication failed for user `{user}` on {host_port} ({text}): check the user and password in {origin}"
                    ),
                    (Engine::Postgres, "3D000", _) | (Engine::Mysql, _, Some(1049)) => format!(
                        "database `{database}` does not exist on {host_port} ({text}): create it, or fix the database name in {origin}"
                    ),
                    (Engine::Mysql, _, Some(1044)) => format!(
                        "user `{user}` may not use database `{database}` on {host_port} ({text}): grant it SELECT, or fix {origin}"
                    ),
                    (Engine::Postgres, "42P01", _) | (Engine::Mysql, _, Some(1146)) => {
                        format!("a table the query reads does not exist ({text})")
                    }
                    (Engine::Postgres, "42703", _) | (Engine::Mysql, _, Some(1054)) => {
                        format!("a column the query reads does not exist ({text})")
                    }
                    (Engine::Postgres, "42501", _) | (Engine::Mysql, _, Some(1142 | 1143)) => {
                        format!("user `{user}` may not read a table the query reads ({text}): grant it SELECT")
                    }
                    _ if code.is_empty() => format!("{engine} refused it: {text}"),
                    _ => format!("{engine} refused it: {text} (SQLSTATE {code})"),
                }
            }
            sqlx_core::Error::Configuration(c) => format!("the connection URL is not usable ({c}); fix {origin}"),
            sqlx_core::Error::Tls(t) => format!(
                "the server wants TLS ({t}), which dealhouse does not speak to databases; allow plain connections \
                 from this host or connect through a tunnel"
            ),
            other => format!("{other}"),
        };
        self.scrub(message)
    }
}

/// `%40` -> `@` (URL user and password parts are percent-encoded).
fn percent_decode(s: &str) -> String {
    // form-urlencoding also reads `+` as a space, which a URL's user or password does not.
    let pair = format!("x={}", s.replace('+', "%2B"));
    url::form_urlencoded::parse(pair.as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// The connection URL of a source: the variable named by `url_env` (looked up through `env`, so
/// tests need not touch the process environment) or the inline `url`.
fn connection_url(
    source_name: &str,
    config: &SqlConfig,
    engine: Engine,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(Url, String)> {
    let config_error = |message: String| Error::Config { source_name: source_name.to_string(), message };
    let example = format!("{}://user:password@host:{}/database", engine.kind(), engine.default_port());
    let (text, origin) = match (&config.url_env, &config.url) {
        (Some(var), _) => {
            let value = env(var).ok_or_else(|| {
                config_error(format!(
                    "the environment variable `{var}` (url_env of [sources.{source_name}]) is not set; \
                     export {var}='{example}'"
                ))
            })?;
            (value, format!("the URL in ${var}"))
        }
        (None, Some(url)) => (url.expose().to_string(), format!("[sources.{source_name}].url")),
        (None, None) => {
            return Err(config_error(format!("set [sources.{source_name}].url_env to a variable holding {example}")));
        }
    };
    // Parse errors from `url` never quote the input, which may hold the password.
    let mut url = Url::parse(text.trim())
        .map_err(|e| config_error(format!("{origin} is not a URL ({e}); expected {example}")))?;
    if !sql_url_schemes(engine.kind()).contains(&url.scheme()) {
        return Err(config_error(format!(
            "{origin} has the scheme `{}`, but the source is kind = \"{}\"; expected {example}",
            url.scheme(),
            engine.kind()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error(format!("{origin} names no host; expected {example}")));
    }
    if url.scheme() == "mariadb" {
        // Both are non-special schemes, so this cannot fail.
        let _ = url.set_scheme("mysql");
    }
    Ok((url, origin))
}

/// A PostgreSQL or MySQL/MariaDB database.
pub struct ServerSource {
    ctx: SourceContext,
    config: SqlConfig,
    target: Target,
    options: MappingOptions,
}

impl ServerSource {
    /// Builds the source; the URL comes from the environment now, the connection in `check`.
    pub fn new(ctx: SourceContext, config: SqlConfig, engine: Engine) -> Result<Self> {
        let time_zone = parse_time_zone(&ctx.source_name, config.time_zone.as_deref())?;
        let (url, origin) = connection_url(&ctx.source_name, &config, engine, |var| std::env::var(var).ok())?;
        let target = Target::new(engine, url, origin);
        let options = MappingOptions {
            origin: RecordOrigin::Query,
            time_zone,
            currency: config.currency.clone(),
            ..MappingOptions::default()
        };
        Ok(Self { ctx, config, target, options })
    }

    fn connect_error(&self, e: &sqlx_core::Error) -> Error {
        Error::Read {
            source_name: self.ctx.source_name.clone(),
            location: self.target.shown.clone(),
            message: self.target.explain(e),
        }
    }

    fn mapper(&self, table: &str) -> Result<(RecordMapper, Vec<(String, ColumnRule)>)> {
        let config = self.table_config(table)?;
        super::table_mapper(self.ctx.project.clone(), &self.ctx.source_name, table, config, &self.options)
    }

    /// A read error of `table`, with what it means and where to fix it.
    fn read_error(&self, table: &str, e: &sqlx_core::Error) -> Error {
        let name = &self.ctx.source_name;
        Error::Read {
            source_name: name.clone(),
            location: format!("{} ({table})", self.target.shown),
            message: format!("{}; check [sources.{name}.tables.{table}]", self.target.explain(e)),
        }
    }

    /// The rows of `table` whose `source_id` is in each group, as chunks settling the group's
    /// keys (ids not found are no longer in the database).
    async fn replay_chunks(&self, table: &'static str, groups: Vec<(Vec<String>, Vec<String>)>) -> Result<Vec<Chunk>> {
        let config = self.table_config(table)?;
        let engine = self.target.engine;
        let mut chunker = RowChunker::new(self.mapper(table)?, engine.kind(), None);
        let mut conn = Conn::open(&self.target).await.map_err(|e| self.read_error(table, &e))?;
        let mut chunks = vec![];
        for (ids, keys) in groups {
            let sql = replay_query(engine.dialect(), &config.query, ids.len());
            let mut rows = conn.records_bound(&sql, &ids);
            while let Some(record) = rows.next().await {
                let record = record.map_err(|e| self.read_error(table, &e))?;
                chunks.extend(chunker.add(record)?);
            }
            drop(rows);
            let mut chunk = chunker.rest()?;
            chunk.settled.extend(keys);
            chunks.push(chunk);
        }
        conn.close().await;
        Ok(chunks)
    }

    fn table_config(&self, table: &str) -> Result<&SqlTableConfig> {
        self.config.tables.get(table).ok_or_else(|| Error::Config {
            source_name: self.ctx.source_name.clone(),
            message: format!("no [sources.{}.tables.{table}] in dealhouse.toml", self.ctx.source_name),
        })
    }
}

/// An open connection to either engine.
enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

impl Conn {
    /// Connects read-only: a configured query can never change the source.
    async fn open(target: &Target) -> std::result::Result<Conn, sqlx_core::Error> {
        let connect = async {
            match target.engine {
                Engine::Postgres => {
                    let options = PgConnectOptions::from_url(&target.url)?
                        .application_name("dealhouse")
                        .options([("default_transaction_read_only", "on")])
                        .disable_statement_logging();
                    Ok(Conn::Pg(PgConnection::connect_with(&options).await?))
                }
                Engine::Mysql => {
                    // utf8mb4 makes the server convert latin1, cp1251 ... columns to UTF-8; `||` keeps
                    // its MySQL meaning (OR) in configured queries.
                    let options = MySqlConnectOptions::from_url(&target.url)?
                        .charset("utf8mb4")
                        .pipes_as_concat(false)
                        .disable_statement_logging();
                    let mut conn = MySqlConnection::connect_with(&options).await?;
                    conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                    // The server drops a client that does not read for net_write_timeout (60 s by
                    // default); a slow warehouse commit between two chunks must not look like that.
                    conn.execute("SET SESSION net_write_timeout = 3600").await?;
                    Ok(Conn::My(conn))
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(result) => result,
            Err(_) => Err(sqlx_core::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            ))),
        }
    }

    /// The result columns of `sql`, without running it.
    async fn columns(&mut self, sql: &str) -> std::result::Result<Vec<String>, sqlx_core::Error> {
        Ok(match self {
            Conn::Pg(c) => c.prepare(sql).await?.columns().iter().map(|c| c.name().to_string()).collect(),
            Conn::My(c) => c.prepare(sql).await?.columns().iter().map(|c| c.name().to_string()).collect(),
        })
    }

    /// The rows of `sql` as records, as they arrive, with `start` bound to the placeholder.
    fn records<'a>(
        &'a mut self,
        sql: &'a str,
        start: Option<&CursorValue>,
    ) -> BoxStream<'a, std::result::Result<Record, sqlx_core::Error>> {
        match self {
            Conn::Pg(c) => {
                let query = start.into_iter().fold(sqlx_core::query::query::<Postgres>(sql), bind_cursor);
                query.fetch(c).map(|row| row.map(|r| pg_record(&r))).boxed()
            }
            Conn::My(c) => {
                let query = start.into_iter().fold(sqlx_core::query::query::<MySql>(sql), bind_cursor);
                query.fetch(c).map(|row| row.map(|r| mysql_record(&r))).boxed()
            }
        }
    }

    /// The rows of `sql` with each of `values` bound as text, in order.
    fn records_bound<'a>(
        &'a mut self,
        sql: &'a str,
        values: &'a [String],
    ) -> BoxStream<'a, std::result::Result<Record, sqlx_core::Error>> {
        match self {
            Conn::Pg(c) => {
                let query = values.iter().fold(sqlx_core::query::query::<Postgres>(sql), |q, v| q.bind(v.as_str()));
                query.fetch(c).map(|row| row.map(|r| pg_record(&r))).boxed()
            }
            Conn::My(c) => {
                let query = values.iter().fold(sqlx_core::query::query::<MySql>(sql), |q, v| q.bind(v.as_str()));
                query.fetch(c).map(|row| row.map(|r| mysql_record(&r))).boxed()
            }
        }
    }

    /// The planner's row estimate for `sql` (progress bars only; None when it cannot tell).
    async fn estimate(&mut self, sql: &str) -> Option<u64> {
        let explain = format!("explain {sql}");
        let plan: Vec<Record> = self.records(&explain, None).filter_map(|r| async move { r.ok() }).collect().await;
        let number = |v: Option<&RawValue>| v.and_then(RawValue::to_text).and_then(|t| t.parse::<u64>().ok());
        match self {
            // The top plan line reads `Seq Scan on t  (cost=0.00..22.70 rows=1270 width=40)`.
            Conn::Pg(_) => plan.first().and_then(|r| {
                let line = r.fields().first()?.1.to_text()?;
                let rows = line.split("rows=").nth(1)?;
                rows.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
            }),
            // One line per table read, each with its `rows` estimate; the largest bounds the result.
            Conn::My(_) => plan.iter().filter_map(|r| number(r.get("rows"))).max(),
        }
    }

    async fn close(self) {
        // A failed goodbye only means the server already dropped the connection.
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
        };
    }
}

/// Binds a cursor value as the column's own SQL type, so the comparison needs no cast.
fn bind_cursor<'q, DB>(
    query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    cursor: &CursorValue,
) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    i64: Encode<'q, DB> + Type<DB>,
    f64: Encode<'q, DB> + Type<DB>,
    Decimal: Encode<'q, DB> + Type<DB>,
    String: Encode<'q, DB> + Type<DB>,
    NaiveDateTime: Encode<'q, DB> + Type<DB>,
    DateTime<Utc>: Encode<'q, DB> + Type<DB>,
{
    match cursor {
        CursorValue::Int(i) => query.bind(*i),
        CursorValue::Real(r) => query.bind(*r),
        CursorValue::Decimal(d) => query.bind(*d),
        CursorValue::Text(s) => query.bind(s.clone()),
        CursorValue::Timestamp(t) => query.bind(*t),
        CursorValue::Instant(t) => query.bind(*t),
    }
}

#[async_trait::async_trait]
impl Source for ServerSource {
    async fn check(&self) -> Result<()> {
        let name = &self.ctx.source_name;
        let mut conn = Conn::open(&self.target).await.map_err(|e| self.connect_error(&e))?;
        let dialect = self.target.engine.dialect();
        let mut result = Ok(());
        for (table, config) in &self.config.tables {
            let sql = incremental_query(dialect, &config.query, config.cursor.as_deref(), true);
            let fix = format!("fix [sources.{name}.tables.{table}].query");
            let columns = match conn.columns(&sql).await {
                Ok(columns) => columns,
                Err(e) => {
                    result = Err(Error::Config {
                        source_name: name.clone(),
                        message: format!(
                            "the query for `{table}` fails on {}: {}; {fix}",
                            self.target.shown,
                            self.target.explain(&e)
                        ),
                    });
                    break;
                }
            };
            if let Some(missing) = config.needed_columns().into_iter().find(|c| !columns.iter().any(|x| x == c)) {
                result = Err(Error::Config {
                    source_name: name.clone(),
                    message: format!(
                        "the query for `{table}` has no `{missing}` column (it returns {}); {fix}",
                        columns.join(", ")
                    ),
                });
                break;
            }
        }
        conn.close().await;
        result
    }

    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        for table in self.config.tables.keys() {
            if !canonical_tables().iter().any(|t| t.name == table) {
                return Err(Error::Config {
                    source_name: self.ctx.source_name.clone(),
                    message: format!("`{table}` in [sources.{}.tables] is not a canonical table", self.ctx.source_name),
                });
            }
        }
        // Estimates are for progress bars only: without a connection there are none.
        let mut conn = Conn::open(&self.target).await.ok();
        let mut streams = vec![];
        for def in canonical_tables() {
            let Some(config) = self.config.tables.get(def.name) else { continue };
            let estimated_rows = match conn.as_mut() {
                Some(c) => {
                    c.estimate(&incremental_query(self.target.engine.dialect(), &config.query, None, true)).await
                }
                None => None,
            };
            streams.push(StreamInfo { table: def.name, estimated_rows });
        }
        if let Some(c) = conn {
            c.close().await;
        }
        Ok(streams)
    }

    fn mapping_fingerprint(&self) -> Option<String> {
        Some(super::fingerprint(&self.ctx, &self.config))
    }

    fn replay(&self, table: &'static str, held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        let groups = replay_groups(&held);
        futures::stream::once(self.replay_chunks(table, groups))
            .flat_map(|chunks| match chunks {
                Ok(chunks) => futures::stream::iter(chunks.into_iter().map(Ok::<Chunk, Error>)).boxed(),
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
            })
            .boxed()
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        let config = match self.table_config(table) {
            Ok(c) => c.clone(),
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        let name = self.ctx.source_name.clone();
        let mapper = match self.mapper(table) {
            Ok(m) => m,
            Err(e) => return futures::stream::once(async { Err(e) }).boxed(),
        };
        let start = match (&config.cursor, cursor) {
            (Some(_), Some(stored)) => match CursorValue::decode(&stored) {
                Some(c) => Some(c.start_from(config.lookback_seconds)),
                None => {
                    // Reading everything again is always safe: the merge drops what is unchanged.
                    warn!(source = %name, table, cursor = %stored, "stored cursor not understood; reading everything");
                    None
                }
            },
            _ => None,
        };
        let target = self.target.clone();
        let engine = target.engine;
        let sql = incremental_query(engine.dialect(), &config.query, config.cursor.as_deref(), start.is_none());
        let read_error = move |target: &Target, e: &sqlx_core::Error| Error::Read {
            source_name: name.clone(),
            location: format!("{} ({table})", target.shown),
            message: format!("{}; check [sources.{name}.tables.{table}]", target.explain(e)),
        };
        // The producer runs on the consumer's task (no spawn): it advances only while the sync
        // runner polls, so at most one chunk waits in the channel and none outlives the stream.
        let (mut tx, rx) = futures::channel::mpsc::channel::<Result<Chunk>>(0);
        let produce = async move {
            let result: Result<()> = async {
                let mut conn = Conn::open(&target).await.map_err(|e| read_error(&target, &e))?;
                debug!(table, resumed = start.is_some(), "reading");
                let mut chunker = RowChunker::new(mapper, engine.kind(), config.cursor.clone());
                let mut gone = false;
                {
                    let mut rows = conn.records(&sql, start.as_ref());
                    while let Some(record) = rows.next().await {
                        let record = record.map_err(|e| read_error(&target, &e))?;
                        if let Some(chunk) = chunker.add(record)?
                            && tx.send(Ok(chunk)).await.is_err()
                        {
                            gone = true;
                            break;
                        }
                    }
                }
                if !gone && let Some(chunk) = chunker.take()? {
                    let _ = tx.send(Ok(chunk)).await;
                }
                conn.close().await;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        };
        let driver = futures::stream::once(produce).filter_map(|()| async { None::<Result<Chunk>> });
        futures::stream::select(rx, driver).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::config::Secret;

    fn config(url_env: Option<&str>, url: Option<&str>) -> SqlConfig {
        SqlConfig {
            path: None,
            url_env: url_env.map(str::to_string),
            url: url.map(Secret::new),
            time_zone: None,
            tables: Default::default(),
            currency: None,
        }
    }

    #[test]
    fn server_url_comes_from_the_named_variable_and_is_shown_without_password() {
        let env = |var: &str| {
            (var == "CRM_DB").then(|| "postgresql://sales:p%40ss%2Fw0rd@db.local/crm?password=p@ss/w0rd".to_string())
        };
        let (url, origin) = connection_url("crm", &config(Some("CRM_DB"), None), Engine::Postgres, env).unwrap();
        assert_eq!(origin, "the URL in $CRM_DB");
        let target = Target::new(Engine::Postgres, url, origin);
        assert_eq!(target.shown, "postgresql://sales:***@db.local/crm");
        assert_eq!(
            (target.host_port.as_str(), target.user.as_str(), target.database.as_str()),
            ("db.local:5432", "sales", "crm")
        );
        assert_eq!(target.scrub("FATAL: password p@ss/w0rd or p%40ss%2Fw0rd"), "FATAL: password *** or ***");

        let e = connection_url("crm", &config(Some("NOT_SET"), None), Engine::Postgres, env).unwrap_err().to_string();
        assert!(e.contains("`NOT_SET`") && e.contains("is not set") && e.contains("source `crm`"), "{e}");
        let e = connection_url("crm", &config(Some("CRM_DB"), None), Engine::Mysql, env).unwrap_err().to_string();
        assert!(e.contains("`postgresql`") && e.contains("mysql://") && !e.contains("w0rd"), "{e}");

        let (url, origin) =
            connection_url("legacy", &config(None, Some("mariadb://root@127.0.0.1/intake")), Engine::Mysql, env)
                .unwrap();
        assert_eq!((url.scheme(), origin.as_str()), ("mysql", "[sources.legacy].url"));
        let target = Target::new(Engine::Mysql, url, origin);
        assert_eq!(
            (target.shown.as_str(), target.host_port.as_str()),
            ("mysql://root@127.0.0.1/intake", "127.0.0.1:3306")
        );
    }
}
