//! sqllogictest harness pinning the behaviour of the built-in SQL models.
//!
//! Each `tests/slt/*.slt` file runs in a fresh session from
//! `dealhouse_warehouse::session::new_context()` (so the dealhouse UDFs are there). A file first
//! creates the canonical input tables it needs (`CREATE TABLE deals (...) AS VALUES ...`), then
//! runs two statements this harness understands:
//!
//! - `build models`: conforms every canonical table to its exact canonical schema (see
//!   [`conform`]; tables the file did not create are registered empty), then materialises every
//!   built-in model in dependency order as an in-memory table, as `models::run` does into Delta.
//! - `test models`: runs every model's declared data tests; fails listing each failing test.
//!
//! `SLT_FILE=name` runs only files whose name contains `name`; `SLT_COMPLETE=1` rewrites the
//! expected results of the selected files from the actual output, for review (never commit
//! without checking every value against the hand arithmetic in the comments).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use dealhouse_warehouse::datafusion::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, new_empty_array, new_null_array,
};
use dealhouse_warehouse::datafusion::arrow::compute::{cast, concat_batches};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use dealhouse_warehouse::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use dealhouse_warehouse::datafusion::datasource::MemTable;
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use dealhouse_warehouse::models;
use dealhouse_warehouse::schema::{ColumnDef, TableDef, canonical_tables};
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

struct Db {
    ctx: SessionContext,
}

#[async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        match sql.trim().trim_end_matches(';').trim() {
            "build models" => {
                build_models(&self.ctx).await?;
                return Ok(DBOutput::StatementComplete(0));
            }
            "test models" => {
                test_models(&self.ctx).await?;
                return Ok(DBOutput::StatementComplete(0));
            }
            _ => {}
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

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

/// Replaces every canonical table with one of its exact canonical schema, then materialises
/// every built-in model in dependency order.
async fn build_models(ctx: &SessionContext) -> Result<(), SltError> {
    for def in canonical_tables() {
        let batch = if ctx.table_exist(def.name).map_err(err)? {
            let df = ctx.table(def.name).await.map_err(err)?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.map_err(err)?;
            let batch = concat_batches(&schema, &batches).map_err(err)?;
            conform(&def, &batch)?
        } else {
            RecordBatch::new_empty(def.schema())
        };
        ctx.deregister_table(def.name).map_err(err)?;
        let table = MemTable::try_new(def.schema(), vec![vec![batch]]).map_err(err)?;
        ctx.register_table(def.name, Arc::new(table)).map_err(err)?;
    }
    let all = models::load_models(None).map_err(err)?;
    let base: BTreeSet<String> = canonical_tables().iter().map(|t| t.name.to_string()).collect();
    for level in models::plan(&all, &base).map_err(err)? {
        for name in level {
            let model = &all[&name];
            let fail = |e: String| SltError(format!("model `{name}` ({}): {e}", model.origin));
            let df = ctx.sql(&model.sql).await.map_err(|e| fail(e.to_string()))?;
            let schema = df.schema().as_arrow().clone();
            check_contract(model, &schema).map_err(fail)?;
            let batches = df.collect().await.map_err(|e| fail(e.to_string()))?;
            ctx.deregister_table(name.as_str()).map_err(err)?;
            let table = MemTable::try_new(all_nullable(&schema), vec![batches]).map_err(|e| fail(e.to_string()))?;
            ctx.register_table(name.as_str(), Arc::new(table)).map_err(err)?;
        }
    }
    Ok(())
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
        if money && !matches!(f.data_type(), DataType::Decimal128(_, 2)) {
            return Err(format!("money column `{}` is {}, not a decimal with 2 places", f.name(), f.data_type()));
        }
    }
    Ok(())
}

/// The schema with every column nullable: DataFusion may plan a column as non-null while the
/// physical batches mark it nullable (e.g. a CASE over non-null columns).
fn all_nullable(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>()))
}

/// Runs every data test of every built-in model; an error lists the failing ones.
async fn test_models(ctx: &SessionContext) -> Result<(), SltError> {
    let all = models::load_models(None).map_err(err)?;
    let mut failures = vec![];
    for model in all.values() {
        for test in &model.tests {
            let outcome = match ctx.sql(&test.query(&model.name)).await {
                Ok(df) => df.collect().await.map(|b| b.iter().map(|b| b.num_rows()).sum::<usize>()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(0) => {}
                Ok(n) => failures.push(format!("{}: {}: {n} offending rows", model.name, test.label())),
                Err(e) => failures.push(format!("{}: {}: {e}", model.name, test.label())),
            }
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(SltError(format!("data tests failed:\n{}", failures.join("\n")))) }
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

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let filter = std::env::var("SLT_FILE").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains(&filter)))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_behaviour_is_pinned_by_slt_files() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files under tests/slt matched SLT_FILE");
    let complete = std::env::var("SLT_COMPLETE").is_ok_and(|v| v == "1");
    let mut failures = vec![];
    for file in &files {
        let mut runner = sqllogictest::Runner::new(|| async {
            Ok::<_, SltError>(Db { ctx: dealhouse_warehouse::session::new_context() })
        });
        runner.with_column_validator(sqllogictest::strict_column_validator);
        let outcome = if complete {
            runner
                .update_test_file(
                    file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::strict_column_validator,
                )
                .await
                .map_err(|e| e.to_string())
        } else {
            runner.run_file_async(file).await.map_err(|e| e.display(false).to_string())
        };
        if let Err(e) = outcome {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} slt files failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
