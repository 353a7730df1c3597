//! Table storage: every table is a Delta Lake table under the warehouse root, written through
//! deltalake on object_store (a local folder by default, S3 when configured).
//!
//! Writes are single Delta commits, so a crash leaves the previous version readable. Canonical
//! tables are upserted by `(source_system, source_id)`; a sync cursor is stored in the commit
//! that carries the rows it covers, so a crash can neither skip nor repeat a batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::{concat, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::{Operator, binary_expr};
use datafusion::prelude::{SessionContext, col};
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::TryStreamExt;
use serde_json::json;
use url::Url;

use crate::schema::{KEY_COLUMNS, TableDef};
use crate::{Error, Result};

/// Makes deltalake's S3 handlers known for `s3://` locations. deltalake registers them from a
/// static constructor too; doing it here as well does not depend on the linker keeping that.
fn register_object_stores() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| deltalake::aws::register_handlers(None));
}

/// Commit-info key under which dealhouse records what a commit did.
const COMMIT_KEY: &str = "dealhouse";

/// The warehouse: a root URL under which each table is a folder.
#[derive(Debug, Clone)]
pub struct Warehouse {
    root: Url,
    storage_options: HashMap<String, String>,
}

/// What one write changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Rows that were not there before.
    pub inserted: u64,
    /// Existing rows whose content changed.
    pub updated: u64,
    /// Rows deleted ([`Warehouse::upsert_and_delete`]).
    pub deleted: u64,
    /// Delta version written, if a commit was made.
    pub version: Option<i64>,
}

/// Who wrote a commit and, for syncs, the cursor it advances to.
#[derive(Debug, Clone, Default)]
pub struct CommitMeta {
    /// `sync`, `build`, `intake`, ...
    pub operation: String,
    /// Source name (sync) or model name (build).
    pub source: String,
    /// Opaque cursor the source resumes from; stored atomically with the rows.
    pub cursor: Option<String>,
}

impl CommitMeta {
    pub(crate) fn properties(&self) -> CommitProperties {
        let mut value = json!({ "operation": self.operation, "source": self.source });
        if let Some(c) = &self.cursor {
            value["cursor"] = json!(c);
        }
        CommitProperties::default().with_metadata([(COMMIT_KEY.to_string(), value)])
    }
}

/// A commit made by a source.
#[derive(Debug, Clone)]
pub struct CommitMark {
    /// When it was committed.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The cursor it stored, if any.
    pub cursor: Option<String>,
}

/// Version and size of one table.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Latest Delta version.
    pub version: i64,
    /// Rows in the latest version.
    pub rows: u64,
}

impl Warehouse {
    /// A warehouse at `root` (a directory URL: `file:///...`, `s3://bucket/prefix`).
    pub fn new(root: Url, storage_options: HashMap<String, String>) -> Self {
        register_object_stores();
        let mut root = root;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Self { root, storage_options }
    }

    /// The warehouse root.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The URL of a table's folder.
    pub fn table_url(&self, name: &str) -> Result<Url> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::InvalidTableName { name: name.to_string() });
        }
        Ok(self.root.join(&format!("{name}/"))?)
    }

    pub(crate) fn builder(&self, name: &str) -> Result<DeltaTableBuilder> {
        register_object_stores();
        Ok(DeltaTableBuilder::from_url(self.table_url(name)?)
            .map_err(|e| Error::delta(name, e))?
            .with_storage_options(self.storage_options.clone()))
    }

    /// Opens a table, or `None` if it was never written.
    pub async fn open(&self, name: &str) -> Result<Option<DeltaTable>> {
        let url = self.table_url(name)?;
        if url.scheme() == "file"
            && let Ok(path) = url.to_file_path()
            && !path.join("_delta_log").is_dir()
        {
            // Checked up front: delta-kernel logs a missing local table as an error before failing.
            return Ok(None);
        }
        let mut table = self.builder(name)?.build().map_err(|e| Error::delta(name, e))?;
        match table.load().await {
            Ok(()) => Ok(Some(table)),
            // A local folder that vanished between the check above and the load is "never written".
            Err(DeltaTableError::NotATable(_) | DeltaTableError::InvalidTableLocation(_)) => Ok(None),
            Err(e) => Err(Error::delta(name, e)),
        }
    }

    /// Opens a table, creating it empty with `schema` if it does not exist.
    pub async fn ensure(&self, name: &str, schema: &SchemaRef, comment: &str) -> Result<DeltaTable> {
        if let Some(t) = self.open(name).await? {
            return Ok(t);
        }
        let url = self.table_url(name)?;
        if url.scheme() == "file" {
            // object_store's local backend will not create the table's root folder for the log.
            if let Ok(path) = url.to_file_path() {
                std::fs::create_dir_all(&path)?;
            }
        }
        let table = self.builder(name)?.build().map_err(|e| Error::delta(name, e))?;
        let delta_schema: StructType = schema.as_ref().try_into_kernel().map_err(|e| Error::delta(name, e.into()))?;
        table
            .create()
            .with_table_name(name)
            .with_comment(comment)
            .with_columns(delta_schema.fields().cloned())
            .with_save_mode(SaveMode::Ignore)
            .await
            .map_err(|e| Error::delta(name, e))
    }

    /// Creates every canonical table that does not exist yet, so queries never miss one.
    pub async fn ensure_canonical(&self) -> Result<()> {
        for def in crate::schema::canonical_tables() {
            self.ensure(def.name, &def.schema(), def.doc).await?;
        }
        Ok(())
    }

    /// Upserts rows into a canonical table by `(source_system, source_id)` in one commit.
    ///
    /// Rows equal to what is stored are left alone, so re-syncing unchanged data writes nothing.
    /// When several input rows share a key, the last one wins (it is the newest read).
    pub async fn upsert(&self, def: &TableDef, batches: Vec<RecordBatch>, meta: &CommitMeta) -> Result<WriteStats> {
        let schema = def.schema();
        let table = self.ensure_columns(def).await?;
        let batch = dedupe_by_key(&schema, &batches).map_err(|e| Error::delta(def.name, e.into()))?;
        if batch.num_rows() == 0 {
            if meta.cursor.is_some() {
                // Nothing new upstream, but the cursor may still move (e.g. a scan window): record it.
                let version = self.commit_empty(def.name, table, &schema, meta).await?;
                return Ok(WriteStats { version, ..Default::default() });
            }
            return Ok(WriteStats::default());
        }
        let is_empty = table.snapshot().map(|s| s.log_data().num_files() == 0).unwrap_or(true);
        if is_empty {
            let rows = batch.num_rows() as u64;
            let batch = in_table_order(def.name, &table, batch)?;
            let table = table
                .write(vec![batch])
                .with_save_mode(SaveMode::Append)
                .with_commit_properties(meta.properties())
                .await
                .map_err(|e| Error::delta(def.name, e))?;
            return Ok(WriteStats { inserted: rows, version: table.version().map(|v| v as i64), ..Default::default() });
        }

        let before = table.version();
        let ctx = SessionContext::new();
        let source = ctx.read_batch(batch).map_err(|e| Error::delta(def.name, e.into()))?;
        let (table, stats) = merge(def, table, source, None, meta).await?;
        let mut version = stats.version;
        if table.version() == before
            && meta.cursor.is_some()
            && self.last_cursor(def.name, &meta.source).await? != meta.cursor
        {
            // A merge that changes no row makes no commit; the cursor must still move, or the
            // same unchanged rows are read again on every sync.
            version = self.commit_empty(def.name, table, &schema, meta).await?;
        }
        Ok(WriteStats { version, ..stats })
    }

    /// Upserts `batches` into a canonical table and deletes the rows of `source` whose
    /// `source_id` is in `delete`, in one commit (a row both upserted and listed is upserted).
    ///
    /// The quarantine uses it to write the records that still fail and drop those that loaded
    /// in the same commit, so no reader ever sees half of it.
    pub async fn upsert_and_delete(
        &self,
        def: &TableDef,
        batches: Vec<RecordBatch>,
        source: &str,
        delete: &[String],
        meta: &CommitMeta,
    ) -> Result<WriteStats> {
        let schema = def.schema();
        let table = self.ensure_columns(def).await?;
        let is_empty = table.snapshot().map(|s| s.log_data().num_files() == 0).unwrap_or(true);
        if delete.is_empty() || is_empty {
            return self.upsert(def, batches, meta).await;
        }
        let rows = dedupe_by_key(&schema, &batches).map_err(|e| Error::delta(def.name, e.into()))?;
        let upserted: HashSet<&str> = match rows.column_by_name(KEY_COLUMNS[1]).and_then(|c| c.as_string_opt::<i32>()) {
            Some(ids) => (0..ids.len()).map(|i| ids.value(i)).collect(),
            None => HashSet::new(),
        };
        let delete: Vec<&str> = delete.iter().map(String::as_str).filter(|id| !upserted.contains(id)).collect();
        let source_batch =
            merge_source(&schema, &rows, source, &delete).map_err(|e| Error::delta(def.name, e.into()))?;
        let ctx = SessionContext::new();
        let frame = ctx.read_batch(source_batch).map_err(|e| Error::delta(def.name, e.into()))?;
        let (_, stats) = merge(def, table, frame, Some(DELETE_FLAG), meta).await?;
        Ok(stats)
    }

    /// Opens a canonical table (creating it), first adding the nullable columns of `def` it
    /// lacks: a table an older dealhouse created keeps its rows, and the new columns read as
    /// empty for them.
    async fn ensure_columns(&self, def: &TableDef) -> Result<DeltaTable> {
        let schema = def.schema();
        let table = self.ensure(def.name, &schema, def.doc).await?;
        let present: HashSet<String> = match table.snapshot() {
            Ok(s) => s.schema().fields().map(|f| f.name().to_string()).collect(),
            Err(_) => return Ok(table),
        };
        let missing: Vec<_> =
            schema.fields().iter().filter(|f| f.is_nullable() && !present.contains(f.name())).cloned().collect();
        if missing.is_empty() {
            return Ok(table);
        }
        let missing = Schema::new(missing);
        let fields: StructType = (&missing).try_into_kernel().map_err(|e| Error::delta(def.name, e.into()))?;
        let meta = CommitMeta { operation: "add columns".into(), ..Default::default() };
        table
            .add_columns()
            .with_fields(fields.fields().cloned().collect::<Vec<_>>())
            .with_commit_properties(meta.properties())
            .await
            .map_err(|e| Error::delta(def.name, e))
    }

    /// An empty append that only carries commit metadata (a cursor move with no new rows).
    async fn commit_empty(
        &self,
        name: &str,
        table: DeltaTable,
        schema: &SchemaRef,
        meta: &CommitMeta,
    ) -> Result<Option<i64>> {
        let table = table
            .write(vec![RecordBatch::new_empty(schema.clone())])
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(meta.properties())
            .await
            .map_err(|e| Error::delta(name, e))?;
        Ok(table.version().map(|v| v as i64))
    }

    /// Replaces a table's content in one commit (model materialisation). The schema may change.
    pub async fn overwrite(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        meta: &CommitMeta,
    ) -> Result<WriteStats> {
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let table = self.ensure(name, &schema, "").await?;
        let batches = if batches.is_empty() { vec![RecordBatch::new_empty(schema)] } else { batches };
        let table = table
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite)
            .with_commit_properties(meta.properties())
            .await
            .map_err(|e| Error::delta(name, e))?;
        Ok(WriteStats { inserted: rows, version: table.version().map(|v| v as i64), ..Default::default() })
    }

    /// The cursor that `source` last committed to `table`, if any.
    pub async fn last_cursor(&self, table: &str, source: &str) -> Result<Option<String>> {
        Ok(self.last_commit(table, source, true).await?.and_then(|c| c.cursor))
    }

    /// The latest commit `source` made to `table` (with a cursor, when `with_cursor`).
    pub async fn last_commit(&self, table: &str, source: &str, with_cursor: bool) -> Result<Option<CommitMark>> {
        let Some(t) = self.open(table).await? else { return Ok(None) };
        let mut history = t.history(None);
        while let Some(info) = history.try_next().await.map_err(|e| Error::delta(table, e))? {
            let Some(meta) = info.info.get(COMMIT_KEY) else { continue };
            if meta.get("source").and_then(|s| s.as_str()) != Some(source) {
                continue;
            }
            let cursor = meta.get("cursor").and_then(|c| c.as_str()).map(str::to_string);
            if with_cursor && cursor.is_none() {
                continue;
            }
            let at = info.timestamp.and_then(chrono::DateTime::from_timestamp_millis);
            return Ok(Some(CommitMark { at, cursor }));
        }
        Ok(None)
    }

    /// Names of the tables present under the root.
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        register_object_stores();
        let hint = if self.root.scheme() == "file" {
            "check that the folder is readable"
        } else {
            "check [warehouse] location and storage_options (endpoint, region) in dealhouse.toml and the \
             AWS_* credentials in the environment"
        };
        let location = |source: Box<dyn std::error::Error + Send + Sync>| Error::Location {
            location: self.root.to_string(),
            hint,
            source,
        };
        let store = DeltaTableBuilder::from_url(self.root.clone())
            .and_then(|b| b.with_storage_options(self.storage_options.clone()).build_storage())
            .map_err(|e| location(e.into()))?
            .object_store(None);
        let listing = match store.list_with_delimiter(None).await {
            Ok(l) => l,
            Err(deltalake::ObjectStoreError::NotFound { .. }) => return Ok(vec![]),
            Err(e) => return Err(location(e.into())),
        };
        let mut names = vec![];
        for prefix in listing.common_prefixes {
            let name = prefix.filename().unwrap_or_default().to_string();
            let log = deltalake::Path::from(format!("{name}/_delta_log"));
            let has_log = store.list_with_delimiter(Some(&log)).await.map(|l| !l.objects.is_empty()).unwrap_or(false);
            if has_log {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Version and row count of a table.
    pub async fn info(&self, name: &str) -> Result<Option<TableInfo>> {
        let Some(table) = self.open(name).await? else { return Ok(None) };
        let version = table.version().map_or(0, |v| v as i64);
        let rows = table
            .snapshot()
            .map_err(|e| Error::delta(name, e))?
            .log_data()
            .iter()
            .map(|f| f.num_records().unwrap_or(0) as u64)
            .sum();
        Ok(Some(TableInfo { name: name.to_string(), version, rows }))
    }

    /// A DataFusion table provider reading the latest version of a table.
    pub async fn provider(&self, name: &str) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        Ok(self.pinned_provider(name).await?.map(|(provider, _)| provider))
    }

    /// A provider reading the latest version of a table, and that version: the provider reads
    /// exactly that snapshot however many commits follow.
    pub async fn pinned_provider(
        &self,
        name: &str,
    ) -> Result<Option<(Arc<dyn datafusion::catalog::TableProvider>, i64)>> {
        let Some(table) = self.open(name).await? else { return Ok(None) };
        let version = table.version().map_or(-1, |v| v as i64);
        let provider = table.table_provider().await.map_err(|e| Error::delta(name, e.into()))?;
        Ok(Some((provider, version)))
    }
}

/// `batch` with its columns in the order of the table's (a table whose newer columns were
/// added later has them at the end; an append needs the table's order, a merge does not).
fn in_table_order(name: &str, table: &DeltaTable, batch: RecordBatch) -> Result<RecordBatch> {
    let Ok(snapshot) = table.snapshot() else { return Ok(batch) };
    let order: Vec<String> = snapshot.schema().fields().map(|f| f.name().to_string()).collect();
    let current: Vec<&String> = batch.schema_ref().fields().iter().map(|f| f.name()).collect();
    if order.iter().eq(current.iter().copied()) {
        return Ok(batch);
    }
    let indices = order
        .iter()
        .map(|n| batch.schema_ref().index_of(n))
        .collect::<datafusion::arrow::error::Result<Vec<usize>>>()
        .map_err(|e| Error::delta(name, e.into()))?;
    batch.project(&indices).map_err(|e| Error::delta(name, e.into()))
}

/// The column of a merge source that marks a row to delete rather than upsert.
const DELETE_FLAG: &str = "dealhouse_delete";

/// Merges `source` into a canonical table by key: changed rows are updated, new ones inserted,
/// and (with `delete_flag`) target rows matched by a source row with that flag set deleted.
async fn merge(
    def: &TableDef,
    table: DeltaTable,
    source: datafusion::prelude::DataFrame,
    delete_flag: Option<&str>,
    meta: &CommitMeta,
) -> Result<(DeltaTable, WriteStats)> {
    let schema = def.schema();
    let key = format!("t.{a} = s.{a} AND t.{b} = s.{b}", a = KEY_COLUMNS[0], b = KEY_COLUMNS[1]);
    let changed = schema
        .fields()
        .iter()
        .map(|f| binary_expr(col(format!("t.{}", f.name())), Operator::IsDistinctFrom, col(format!("s.{}", f.name()))))
        .reduce(|a, b| a.or(b))
        .ok_or_else(|| Error::NoColumns { table: def.name.to_string() })?;
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let flag = delete_flag.map(|f| col(format!("s.{f}")));
    let mut builder = table
        .merge(source, key)
        .with_source_alias("s")
        .with_target_alias("t")
        .with_commit_properties(meta.properties());
    if let Some(flag) = &flag {
        builder = builder.when_matched_delete(|d| d.predicate(flag.clone())).map_err(|e| Error::delta(def.name, e))?;
    }
    let keep = |e: datafusion::prelude::Expr| match &flag {
        Some(f) => (!f.clone()).and(e),
        None => e,
    };
    let (table, metrics) = builder
        .when_matched_update(|u| {
            names.iter().fold(u.predicate(keep(changed)), |u, n| u.update(n.as_str(), col(format!("s.{n}"))))
        })
        .and_then(|m| {
            m.when_not_matched_insert(|i| {
                let i = match &flag {
                    Some(f) => i.predicate(!f.clone()),
                    None => i,
                };
                names.iter().fold(i, |i, n| i.set(n.as_str(), col(format!("s.{n}"))))
            })
        })
        .map_err(|e| Error::delta(def.name, e))?
        .await
        .map_err(|e| Error::delta(def.name, e))?;
    let stats = WriteStats {
        inserted: metrics.num_target_rows_inserted as u64,
        updated: metrics.num_target_rows_updated as u64,
        deleted: metrics.num_target_rows_deleted as u64,
        version: table.version().map(|v| v as i64),
    };
    Ok((table, stats))
}

/// The source of an upsert-and-delete merge: `rows` flagged to keep, then one row per id in
/// `delete` (keys only, the rest null) flagged to delete. Every column is nullable so that
/// key-only rows fit.
fn merge_source(
    schema: &SchemaRef,
    rows: &RecordBatch,
    source: &str,
    delete: &[&str],
) -> datafusion::arrow::error::Result<RecordBatch> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect();
    fields.push(Field::new(DELETE_FLAG, DataType::Boolean, false));
    let merged = Arc::new(Schema::new(fields));
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(merged.fields().len());
    for (i, f) in schema.fields().iter().enumerate() {
        let deleted: ArrayRef = if f.name() == KEY_COLUMNS[0] {
            Arc::new(StringArray::from(vec![source; delete.len()]))
        } else if f.name() == KEY_COLUMNS[1] {
            Arc::new(StringArray::from(delete.to_vec()))
        } else {
            new_null_array(f.data_type(), delete.len())
        };
        columns.push(concat(&[rows.column(i).as_ref(), deleted.as_ref()])?);
    }
    let flags: BooleanArray = std::iter::repeat_n(Some(false), rows.num_rows())
        .chain(std::iter::repeat_n(Some(true), delete.len()))
        .collect();
    columns.push(Arc::new(flags));
    RecordBatch::try_new(merged, columns)
}

/// Concatenates batches and keeps the last row of each `(source_system, source_id)` key.
fn dedupe_by_key(schema: &SchemaRef, batches: &[RecordBatch]) -> datafusion::arrow::error::Result<RecordBatch> {
    let batch = concat_batches(schema, batches)?;
    let sys = batch.column_by_name(KEY_COLUMNS[0]).map(|c| c.as_string::<i32>().clone());
    let id = batch.column_by_name(KEY_COLUMNS[1]).map(|c| c.as_string::<i32>().clone());
    let (Some(sys), Some(id)) = (sys, id) else { return Ok(batch) };
    let mut seen = HashSet::with_capacity(batch.num_rows());
    let mut keep: Vec<u32> = Vec::with_capacity(batch.num_rows());
    for i in (0..batch.num_rows()).rev() {
        if seen.insert((sys.value(i), id.value(i))) {
            keep.push(i as u32);
        }
    }
    if keep.len() == batch.num_rows() {
        return Ok(batch);
    }
    keep.reverse();
    let indices = UInt32Array::from(keep);
    debug_assert!(indices.null_count() == 0);
    take_record_batch(&batch, &indices)
}
