//! sqllogictest files pinning the query files (`api/queries/**/*.sql`, the SQL the endpoints
//! run): one test per `tests/slt/*.slt` file, found at run time, run by `libtest-mimic`
//! (`harness = false`) like the models' runner (`warehouse/tests/slt.rs`), so files run in
//! parallel and filter by name (`cargo test --workspace --test slt -- sales`).
//!
//! Each file runs in a fresh session from `dealhouse_warehouse::session::new_context()`. It
//! creates the tables its queries read, canonical tables or models, with just the columns it
//! needs (`CREATE TABLE mart_funnel_monthly (...) AS VALUES ...`), and runs a query file as a
//! route would:
//!
//! ```text
//! query TIIIRRRR
//! run funnel?from=2025-01&branch=msk,spb
//! ```
//!
//! Before each `run`, every fixture table is cast to the real table's Arrow schema (canonical
//! tables and models planned over empty tables, [`dealhouse_api::queries::input_schemas`]):
//! columns it leaves out are nulls, a column the table does not have is an error naming the
//! ones it has, money must be given as a decimal, and every table the file did not create is
//! there, empty (until a later `CREATE TABLE` of the file). The parameters are read as the routes read them (`Args::parse`, every route's
//! parameters valid) and bound as the endpoints bind them. `run NAME?... | a, b` keeps columns
//! `a` and `b` of the answer (for wide rows). Floats print with 4 decimals.
//!
//! `SLT_COMPLETE=1` rewrites the expected results of the selected files from the actual output,
//! for review (never commit without checking every value against the hand arithmetic in the
//! comments).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use dealhouse_warehouse::datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, new_null_array};
use dealhouse_warehouse::datafusion::arrow::compute::{cast, concat_batches};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use dealhouse_warehouse::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use dealhouse_warehouse::datafusion::dataframe::DataFrame;
use dealhouse_warehouse::datafusion::datasource::MemTable;
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use libtest_mimic::{Arguments, Failed, Trial};
use sqllogictest::{DBOutput, DefaultColumnType};

#[derive(Debug)]
struct SltError(String);

impl std::fmt::Display for SltError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

fn err(e: impl std::fmt::Display) -> SltError {
    SltError(e.to_string())
}

/// One file's database: its session, the real schemas fixtures are cast to, and the tables a
/// `run` registered empty (a later `CREATE TABLE` of the file replaces them).
struct Db {
    ctx: SessionContext,
    schemas: Arc<BTreeMap<String, SchemaRef>>,
    empty: BTreeSet<String>,
}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let statement = sql.trim_start();
        if statement.get(..13).is_some_and(|s| s.eq_ignore_ascii_case("create table ")) {
            let name = statement[13..].split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or_default();
            if self.empty.remove(name) {
                self.ctx.deregister_table(name).map_err(err)?;
            }
        }
        if let Some(settings) = sql.trim().strip_prefix("audit") {
            self.run_audit(settings.trim()).await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let df = match sql.trim().strip_prefix("run ") {
            Some(call) => self.run_query_file(call.trim()).await?,
            None => self.ctx.sql(sql).await.map_err(err)?,
        };
        output(df).await
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion"
    }
}

impl Db {
    /// `NAME?a=1&b=x,y`: the query file filled as a route fills it, over the conformed fixtures;
    /// `... | col, col` keeps those columns of its answer.
    async fn run_query_file(&mut self, call: &str) -> Result<DataFrame, SltError> {
        let (call, columns) = match call.split_once(" | ") {
            Some((call, cols)) => (call.trim(), Some(cols.split(',').map(str::trim).collect::<Vec<_>>())),
            None => (call, None),
        };
        let (name, query) = call.split_once('?').unwrap_or((call, ""));
        let pairs = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let (text, params) = dealhouse_api::queries::render_for_test(name, pairs).map_err(SltError)?;
        self.conform_tables().await?;
        let df = self.ctx.sql(&text).await.map_err(|e| SltError(format!("{name}: {e}\n{text}")))?;
        let df = if params.is_empty() { df } else { df.with_param_values(params).map_err(err)? };
        match columns {
            Some(cols) => df.select_columns(&cols).map_err(err),
            None => Ok(df),
        }
    }

    /// `audit { legacy_sources = [...], crm_sources = [...], ... }`: the intake audit's steps
    /// (`api/audit/*.sql`) run over the conformed fixtures with these `[audit]` settings, each
    /// result registered under its step's name for the file's queries.
    async fn run_audit(&mut self, settings: &str) -> Result<(), SltError> {
        let text = format!("audit = {}", if settings.is_empty() { "{}" } else { settings });
        let mut doc: BTreeMap<String, dealhouse_warehouse::config::AuditConfig> =
            dealhouse_warehouse::toml::from_str(&text).map_err(err)?;
        let config = doc.remove("audit").unwrap_or_default();
        self.conform_tables().await?;
        let sources: Vec<String> = config.legacy_sources().into_iter().chain(config.crm_sources.clone()).collect();
        let settings = dealhouse_api::audit::settings(&config, sources.iter());
        dealhouse_api::audit::run_steps(&self.ctx, &config, &settings).await.map_err(err)
    }

    /// Every real table in the session with its real column types (nullable, so a fixture may
    /// leave columns out), the fixture's rows cast to them.
    async fn conform_tables(&mut self) -> Result<(), SltError> {
        for (name, real) in self.schemas.iter() {
            let schema = Arc::new(Schema::new(
                real.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<Field>>(),
            ));
            let batch = if self.ctx.table_exist(name.as_str()).map_err(err)? {
                let df = self.ctx.table(name.as_str()).await.map_err(err)?;
                let given = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await.map_err(err)?;
                conform(name, &schema, &concat_batches(&given, &batches).map_err(err)?)?
            } else {
                self.empty.insert(name.clone());
                RecordBatch::new_empty(schema.clone())
            };
            self.ctx.deregister_table(name.as_str()).map_err(err)?;
            let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(err)?;
            self.ctx.register_table(name.as_str(), Arc::new(table)).map_err(err)?;
        }
        Ok(())
    }
}

/// A fixture table cast to its real schema: given columns cast, the others null.
fn conform(table: &str, schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, SltError> {
    let at = |c: &str| format!("fixture table `{table}` column `{c}`");
    for f in batch.schema().fields() {
        let Ok(real) = schema.field_with_name(f.name()) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(SltError(format!(
                "{}: `{table}` has no such column; it has {}",
                at(f.name()),
                names.join(", ")
            )));
        };
        if f.data_type().is_floating() && matches!(real.data_type(), DataType::Decimal128(..)) {
            return Err(SltError(format!("{}: money is a decimal, given as {}", at(f.name()), f.data_type())));
        }
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(a) => cast(a, f.data_type()).map_err(|e| SltError(format!("{}: {e}", at(f.name())))),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<ArrayRef>, SltError>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| SltError(format!("fixture table `{table}`: {e}")))
}

async fn output(df: DataFrame) -> Result<DBOutput<DefaultColumnType>, SltError> {
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(err)?;
    if schema.fields().is_empty() {
        return Ok(DBOutput::StatementComplete(0));
    }
    let types = schema.fields().iter().map(|f| column_type(f.data_type())).collect();
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for batch in &batches {
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        for i in 0..batch.num_rows() {
            let row = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(c, f)| match c.as_any().downcast_ref::<Float64Array>() {
                    // Hand arithmetic checks ratios to 4 places.
                    Some(floats) if !floats.is_null(i) => format!("{:.4}", floats.value(i)),
                    _ => match f.value(i).to_string() {
                        s if s.is_empty() => "(empty)".to_string(),
                        s => s,
                    },
                })
                .collect();
            rows.push(row);
        }
    }
    Ok(DBOutput::Rows { types, rows })
}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

/// The `.slt` files, sorted.
fn slt_files() -> Result<Vec<PathBuf>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no .slt files in {}", dir.display()));
    }
    Ok(files)
}

/// Runs (or, with `complete`, rewrites) one file in a fresh session.
fn run_file(file: &Path, complete: bool) -> Result<(), Failed> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let schemas = Arc::new(
            dealhouse_api::queries::input_schemas().await.map_err(|e| Failed::from(format!("input schemas: {e}")))?,
        );
        let mut runner = sqllogictest::Runner::new(move || {
            let schemas = schemas.clone();
            async move {
                Ok::<_, SltError>(Db {
                    ctx: dealhouse_warehouse::session::new_context(),
                    schemas,
                    empty: BTreeSet::new(),
                })
            }
        });
        runner.with_column_validator(sqllogictest::strict_column_validator);
        if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::strict_column_validator,
                )
                .await
                .map_err(|e| Failed::from(format!("{}:\n{e}", file.display())))
        } else {
            runner
                .run_file_async(file)
                .await
                .map_err(|e| Failed::from(format!("{}:\n{}", file.display(), e.display(false))))
        }
    })
}

/// Every query file is run by at least one `.slt` case.
fn every_query_file_has_a_case(files: &[PathBuf]) -> Result<(), Failed> {
    let mut run = std::collections::BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
        for line in text.lines() {
            if let Some(call) = line.trim().strip_prefix("run ") {
                let name = call.split(['?', ' ']).next().unwrap_or_default();
                run.insert(name.to_string());
            }
        }
    }
    let queries = dealhouse_api::queries::files().map_err(|e| e.to_string())?;
    let missing: Vec<&str> = queries.keys().map(String::as_str).filter(|q| !run.contains(*q)).collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("query files no .slt case runs: {missing:?}").into()) }
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let complete = std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1");
    let trials = match slt_files() {
        Ok(files) => {
            let all = files.clone();
            let mut trials: Vec<Trial> = files
                .into_iter()
                .map(|file| {
                    let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                    Trial::test(name, move || run_file(&file, complete))
                })
                .collect();
            trials.push(Trial::test("every_query_file_has_a_case", move || every_query_file_has_a_case(&all)));
            trials
        }
        Err(e) => vec![Trial::test("slt_files", move || Err(Failed::from(e)))],
    };
    libtest_mimic::run(&args, trials).exit_code()
}
