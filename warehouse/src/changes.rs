//! What changed in a table between two Delta versions, at file granularity, and replacing the
//! rows of a set of keys in one commit: the two halves of incremental model builds.
//!
//! A row that changed lives in a file added since the old version (an upsert's MERGE rewrites
//! every file holding a changed row); a row that went away lives in a file removed since then.
//! Rewritten files also carry unchanged rows, so only rows of the added files missing from the
//! removed ones (and the other way round) count as changed.

use std::collections::{BTreeSet, HashSet};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::{SessionContext, col, lit};
use datafusion::scalar::ScalarValue;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use crate::storage::CommitMeta;
use crate::{Error, Result, Warehouse, WriteStats};

/// Files added and removed between two versions of a table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileDiff {
    /// Active now, not active at the old version.
    pub added: BTreeSet<String>,
    /// Active at the old version, not any more.
    pub removed: BTreeSet<String>,
}

impl FileDiff {
    /// No file came or went: the table holds the same rows.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

fn active_files(table: &DeltaTable, name: &str) -> Result<BTreeSet<String>> {
    let snapshot = table.snapshot().map_err(|e| Error::delta(name, e))?;
    Ok(snapshot.log_data().into_iter().map(|f| f.path().to_string()).collect())
}

impl Warehouse {
    /// The table's current version, or `None` if it does not exist.
    pub async fn version(&self, name: &str) -> Result<Option<i64>> {
        Ok(self.open(name).await?.and_then(|t| t.version()).map(|v| v as i64))
    }

    /// Files added and removed between versions `from` and `to`; `None` when `from` can no
    /// longer be read (vacuumed, or the table was recreated), so the caller must fall back to a
    /// full rebuild. `to` is the version a build's session pinned, not the latest: a sync
    /// committing during the build is the next build's change.
    pub async fn files_changed_between(&self, name: &str, from: i64, to: i64) -> Result<Option<FileDiff>> {
        if from == to {
            return Ok(Some(FileDiff::default()));
        }
        let (Some(now), Some(then)) = (self.open_version(name, to).await?, self.open_version(name, from).await?) else {
            return Ok(None);
        };
        let (now_files, then_files) = (active_files(&now, name)?, active_files(&then, name)?);
        Ok(Some(FileDiff {
            added: now_files.difference(&then_files).cloned().collect(),
            removed: then_files.difference(&now_files).cloned().collect(),
        }))
    }

    /// The table at `version`, or `None` when it has no such version (any more).
    async fn open_version(&self, name: &str, version: i64) -> Result<Option<DeltaTable>> {
        let Some(mut table) = self.open(name).await? else { return Ok(None) };
        if version < 0 {
            return Ok(None);
        }
        if table.version() != Some(version as _) && table.load_version(version as _).await.is_err() {
            return Ok(None);
        }
        Ok(Some(table))
    }

    /// Distinct values of `column` of the rows that changed between versions `from` and `to`:
    /// rows in the files added that are not in the files removed, and the other way round (a
    /// MERGE rewrites whole files, so most rows of a rewritten file come back unchanged).
    pub async fn values_in_diff(
        &self,
        name: &str,
        (from, to): (i64, i64),
        diff: &FileDiff,
        column: &str,
    ) -> Result<HashSet<ScalarValue>> {
        let ctx = SessionContext::new();
        let mut sides = vec![];
        for (files, at) in [(&diff.added, to), (&diff.removed, from)] {
            if files.is_empty() {
                sides.push(None);
                continue;
            }
            let Some(table) = self.open_version(name, at).await? else {
                return Err(Error::TableMissing { table: format!("{name} (version {at})") });
            };
            table.update_datafusion_session(&ctx.state()).map_err(|e| Error::delta(name, e))?;
            let provider = table.table_provider().with_file_paths(files.iter().cloned()).await?;
            sides.push(Some(ctx.read_table(provider)?));
        }
        let changed = match (sides.remove(0), sides.remove(0)) {
            (Some(added), Some(removed)) => added.clone().except(removed.clone())?.union(removed.except(added)?)?,
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => return Ok(HashSet::new()),
        };
        let batches = changed
            .select_columns(&[column])
            .and_then(|df| df.distinct())
            .map_err(|e| changed_rows(name, column, e))?
            .collect()
            .await
            .map_err(|e| changed_rows(name, column, e))?;
        let mut values = HashSet::new();
        for batch in &batches {
            for row in 0..batch.num_rows() {
                values.insert(ScalarValue::try_from_array(batch.column(0), row)?);
            }
        }
        Ok(values)
    }

    /// Replaces, in one commit, every row of table `name` whose `column` is one of `keys` by
    /// `batches` (whose rows must all carry one of those keys).
    pub async fn replace_keys(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        column: &str,
        keys: &HashSet<ScalarValue>,
        meta: &CommitMeta,
    ) -> Result<WriteStats> {
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let table = self.open(name).await?.ok_or_else(|| Error::TableMissing { table: name.to_string() })?;
        let batches = if batches.is_empty() { vec![RecordBatch::new_empty(schema)] } else { batches };
        let predicate = col(column).in_list(keys.iter().cloned().map(lit).collect(), false);
        let table = table
            .write(batches)
            .with_save_mode(SaveMode::Overwrite)
            .with_replace_where(predicate)
            .with_commit_properties(meta.properties())
            .await
            .map_err(|e| Error::delta(name, e))?;
        Ok(WriteStats { inserted: rows, version: table.version().map(|v| v as i64), ..Default::default() })
    }
}

fn changed_rows(table: &str, column: &str, source: datafusion::error::DataFusionError) -> Error {
    Error::ChangedRows { table: table.to_string(), column: column.to_string(), source }
}
