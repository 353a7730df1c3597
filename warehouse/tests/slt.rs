//! sqllogictest files pinning the behaviour of the built-in SQL models: one test per
//! `tests/slt/*.slt` file (found in the folder at run time, so a new file needs no registration),
//! run by `libtest-mimic` (`harness = false`), so files run in parallel and filter by name
//! (`cargo test -p dealhouse-warehouse --test slt -- plan_fact`).
//!
//! Each file runs in a fresh session from `dealhouse_warehouse::session::new_context()` (so the
//! dealhouse UDFs are there). A file first creates the canonical input tables it needs
//! (`CREATE TABLE deals (...) AS VALUES ...`), then runs two statements this runner understands:
//!
//! - `build models` (or `build models with churn_lookback_months = 3, ...`, the `[kpi]` settings
//!   the build hands to the models as `params`; defaults otherwise): conforms every canonical table to its exact canonical schema (see
//!   [`conform`]; tables the file did not create are empty), writes them as Delta tables into a
//!   temporary warehouse, and builds every built-in model there with the real model runner
//!   (`models::run_with`, the code of `dealhouse build`, with `full_refresh`); then checks each
//!   model's output against its `-- column` docs and registers the model tables in the session.
//! - `test models`: runs every model's declared data tests with `models::run_tests` (the code of
//!   `dealhouse test`); fails listing each failing test.
//!
//! `SLT_COMPLETE=1` rewrites the expected results of the selected files from the actual output,
//! for review (never commit without checking every value against the hand arithmetic in the
//! comments).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use dealhouse_warehouse::datafusion::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, new_empty_array, new_null_array,
};
use dealhouse_warehouse::datafusion::arrow::compute::{cast, concat_batches};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Schema};
use dealhouse_warehouse::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use dealhouse_warehouse::datafusion::datasource::MemTable;
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use dealhouse_warehouse::models::{self, BuildOptions, Model};
use dealhouse_warehouse::schema::{ColumnDef, TableDef, canonical_tables};
use dealhouse_warehouse::{CommitMeta, Warehouse};
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

/// One file's database: the session its statements run in, and the temporary warehouse
/// `build models` writes (created by the first build, removed with the `Db`).
struct Db {
    ctx: SessionContext,
    built: Option<Built>,
}

/// A temporary warehouse and the models built into it.
struct Built {
    _dir: tempfile::TempDir,
    warehouse: Warehouse,
    models: BTreeMap<String, Model>,
}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let statement = sql.trim().trim_end_matches(';').trim();
        if let Some(settings) = statement.strip_prefix("build models") {
            let options = build_options(settings)?;
            self.build_models(options).await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        if statement == "test models" {
            self.test_models().await?;
            return Ok(DBOutput::StatementComplete(0));
        }
        let df = self.ctx.sql(sql).await.map_err(err)?;
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
                rows.push(
                    formatters
                        .iter()
                        .map(|f| match f.value(i).to_string() {
                            s if s.is_empty() => "(empty)".to_string(),
                            s => s,
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows { types, rows })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "datafusion"
    }
}

/// The options of `build models [with KEY = VALUE, ...]`: a full refresh, with the `[kpi]`
/// settings given (`with churn_lookback_months = 3, conversion_window_days = 30`), the
/// defaults otherwise.
fn build_options(settings: &str) -> Result<BuildOptions, SltError> {
    let mut options = BuildOptions { full_refresh: true, ..Default::default() };
    let settings = settings.trim();
    if settings.is_empty() {
        return Ok(options);
    }
    let Some(list) = settings.strip_prefix("with ") else {
        return Err(SltError(format!("`build models {settings}`: expected `build models with KEY = VALUE, ...`")));
    };
    for pair in list.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| SltError(format!("`{pair}` in `build models with`: expected KEY = VALUE")))?;
        let value: u32 = value.trim().parse().map_err(|e| SltError(format!("`{pair}`: {e}")))?;
        match key.trim() {
            "churn_lookback_months" => options.kpi.churn_lookback_months = value,
            "conversion_window_days" => options.kpi.conversion_window_days = Some(value),
            other => {
                return Err(SltError(format!(
                    "unknown setting `{other}` in `build models with`: churn_lookback_months, conversion_window_days"
                )));
            }
        }
    }
    Ok(options)
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

impl Db {
    /// Conforms the fixture's canonical tables, writes them into the temporary warehouse, builds
    /// every built-in model there with the model runner and registers the results in the session.
    async fn build_models(&mut self, options: BuildOptions) -> Result<(), SltError> {
        let mut canonical = vec![];
        for def in canonical_tables() {
            let batch = if self.ctx.table_exist(def.name).map_err(err)? {
                let df = self.ctx.table(def.name).await.map_err(err)?;
                let schema = Arc::new(df.schema().as_arrow().clone());
                let batches = df.collect().await.map_err(err)?;
                let batch = concat_batches(&schema, &batches).map_err(err)?;
                conform(&def, &batch)?
            } else {
                RecordBatch::new_empty(def.schema())
            };
            canonical.push((def, batch));
        }
        if self.built.is_none() {
            let dir = tempfile::tempdir().map_err(err)?;
            let url = url::Url::from_directory_path(dir.path())
                .map_err(|()| SltError(format!("{} is not an absolute path", dir.path().display())))?;
            let models = models::load_models(None).map_err(err)?;
            self.built = Some(Built { _dir: dir, warehouse: Warehouse::new(url, HashMap::new()), models });
        }
        let Some(built) = &self.built else { return Err(SltError("no warehouse".into())) };
        let meta = CommitMeta { operation: "sync".into(), source: "slt".into(), cursor: None };
        for (def, batch) in canonical {
            // The session keeps the conformed fixture, so the file's queries read what the models read.
            self.ctx.deregister_table(def.name).map_err(err)?;
            let table = MemTable::try_new(def.schema(), vec![vec![batch.clone()]]).map_err(err)?;
            self.ctx.register_table(def.name, Arc::new(table)).map_err(err)?;
            built.warehouse.overwrite(def.name, def.schema(), vec![batch], &meta).await.map_err(err)?;
        }
        let runs = models::run_with(&built.warehouse, &built.models, None, options, |_| {}).await.map_err(err)?;
        let failed: Vec<String> =
            runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| format!("{}: {e}", r.name))).collect();
        if !failed.is_empty() {
            return Err(SltError(format!("models failed:\n{}", failed.join("\n"))));
        }
        for (name, model) in &built.models {
            let provider = built
                .warehouse
                .provider(name)
                .await
                .map_err(err)?
                .ok_or_else(|| SltError(format!("model `{name}` ({}) wrote no table", model.origin)))?;
            check_contract(model, &provider.schema())
                .map_err(|e| SltError(format!("model `{name}` ({}): {e}", model.origin)))?;
            self.ctx.deregister_table(name.as_str()).map_err(err)?;
            self.ctx.register_table(name.as_str(), provider).map_err(err)?;
        }
        Ok(())
    }

    /// Runs every data test of every built-in model; an error lists the failing ones.
    async fn test_models(&self) -> Result<(), SltError> {
        let Some(built) = &self.built else {
            return Err(SltError("`test models` needs a `build models` before it".into()));
        };
        let runs = models::run_tests(&built.warehouse, &built.models, None, &Default::default()).await.map_err(err)?;
        let failures: Vec<String> = runs
            .iter()
            .filter_map(|t| match &t.result {
                Ok(0) => None,
                Ok(n) => Some(format!(
                    "{}: {}: {n} offending rows (first: {})",
                    t.model,
                    t.test,
                    t.first_row.as_deref().unwrap_or("-")
                )),
                Err(e) => Some(format!("{}: {}: {e}", t.model, t.test)),
            })
            .collect();
        if failures.is_empty() { Ok(()) } else { Err(SltError(format!("data tests failed:\n{}", failures.join("\n")))) }
    }
}

/// Every output column is documented in the header (and every documented column exists), and
/// money columns stay decimal.
fn check_contract(model: &models::Model, schema: &Schema) -> Result<(), String> {
    let documented: BTreeSet<&str> = model.columns.iter().map(|(c, _)| c.as_str()).collect();
    let produced: BTreeSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let undocumented: Vec<&str> = produced.difference(&documented).copied().collect();
    let missing: Vec<&str> = documented.difference(&produced).copied().collect();
    if !undocumented.is_empty() || !missing.is_empty() {
        return Err(format!(
            "header and output disagree: undocumented columns {undocumented:?}, documented but absent {missing:?}"
        ));
    }
    for f in schema.fields() {
        let money = ["amount", "commission"].iter().any(|m| f.name().contains(m))
            || ["plan", "fact"].contains(&f.name().as_str());
        // Text about money (`amount_null_reason`) is not money.
        if money && f.data_type().is_numeric() && !matches!(f.data_type(), DataType::Decimal128(_, 2)) {
            return Err(format!("money column `{}` is {}, not a decimal with 2 places", f.name(), f.data_type()));
        }
    }
    Ok(())
}

/// A fixture table as the canonical table: the fixture names a subset of the canonical
/// columns (unknown names are errors, catching typos), each cast to its canonical type;
/// absent columns become nulls, or a neutral default for the few non-null bookkeeping columns
/// (`source_system`, `source_id`, `pipeline`, `source_stage`, `name`, `city`, `deleted`,
/// `active`, `done`). Money must be given as a decimal (never a float), instants as timestamps.
fn conform(def: &TableDef, batch: &RecordBatch) -> Result<RecordBatch, SltError> {
    let where_ = |c: &str| format!("fixture table `{}` column `{c}`", def.name);
    for f in batch.schema().fields() {
        let Some(c) = def.columns.iter().find(|c| c.name == f.name()) else {
            return Err(SltError(format!(
                "{}: not a canonical column; canonical columns: {}",
                where_(f.name()),
                def.columns.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
            )));
        };
        check_source_type(c, f.data_type()).map_err(|e| SltError(format!("{}: {e}", where_(c.name))))?;
    }
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = vec![];
    for c in &def.columns {
        let column = match batch.column_by_name(c.name) {
            Some(a) => cast(a, &c.data_type).map_err(|e| SltError(format!("{}: {e}", where_(c.name))))?,
            None => default_column(c, n).map_err(|e| SltError(format!("{}: {e}", where_(c.name))))?,
        };
        columns.push(column);
    }
    RecordBatch::try_new(def.schema(), columns).map_err(|e| SltError(format!("fixture table `{}`: {e}", def.name)))
}

fn check_source_type(c: &ColumnDef, given: &DataType) -> Result<(), String> {
    let ok = match (&c.data_type, given) {
        (_, DataType::Null) => true,
        (want, got) if want == got => true,
        (DataType::Decimal128(_, scale), DataType::Decimal128(_, s)) => s <= scale,
        (DataType::Timestamp(..), DataType::Timestamp(..)) => true,
        (DataType::Utf8, DataType::Utf8View | DataType::LargeUtf8) => true,
        (DataType::Int32, DataType::Int64) => true,
        _ => false,
    };
    if ok { Ok(()) } else { Err(format!("given as {given}, canonical type is {}", c.data_type)) }
}

fn default_column(c: &ColumnDef, n: usize) -> Result<ArrayRef, String> {
    if c.nullable {
        return Ok(new_null_array(&c.data_type, n));
    }
    let text = |v: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new((0..n).map(v).map(Some).collect::<StringArray>()) };
    let flag = |v: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![v; n])) };
    Ok(match c.name {
        "source_system" => text(&|_| "slt".to_string()),
        "source_id" => text(&|i| (i + 1).to_string()),
        "pipeline" => text(&|_| "0".to_string()),
        "source_stage" | "name" | "city" => text(&|_| String::new()),
        "deleted" => flag(false),
        "active" | "done" => flag(true),
        _ if n == 0 => new_empty_array(&c.data_type),
        _ => return Err("required (non-null) but not given".into()),
    })
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
        let mut runner = sqllogictest::Runner::new(|| async {
            Ok::<_, SltError>(Db { ctx: dealhouse_warehouse::session::new_context(), built: None })
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

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let complete = std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1");
    let trials = match slt_files() {
        Ok(files) => files
            .into_iter()
            .map(|file| {
                let name = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                Trial::test(name, move || run_file(&file, complete))
            })
            .collect(),
        Err(e) => vec![Trial::test("slt_files", move || Err(Failed::from(e)))],
    };
    libtest_mimic::run(&args, trials).exit_code()
}
