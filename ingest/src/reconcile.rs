//! Reconciliation: cursor reads never see records deleted upstream, so a reconciliation pass
//! compares the ids a source lists now with the stored records of that source and marks the
//! missing ones `deleted` (kept, flagged, and left out by the models), never dropping them.

use std::collections::HashSet;
use std::sync::Arc;

use dealhouse_warehouse::datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::compute::{cast, filter_record_batch};
use dealhouse_warehouse::datafusion::arrow::datatypes::SchemaRef;
use dealhouse_warehouse::datafusion::arrow::error::ArrowError;
use dealhouse_warehouse::datafusion::prelude::{SessionContext, col, lit};
use dealhouse_warehouse::schema::TableDef;
use dealhouse_warehouse::{CommitMeta, Warehouse};
use tracing::{info, warn};

use crate::{Error, Result};

/// Marks stored, not yet deleted records of `source` in `def`'s table whose source id is not in
/// `upstream` as deleted, in one commit. Returns how many were marked.
///
/// Refuses when the listing would delete more than half of the source's records: an empty or
/// truncated listing (a webhook that lost its CRM scope, a wrong filter) must not wipe a table.
pub async fn mark_deleted(warehouse: &Warehouse, def: &TableDef, source: &str, upstream: Vec<String>) -> Result<u64> {
    let Some(provider) = warehouse.provider(def.name).await? else { return Ok(0) };
    let ctx = SessionContext::new();
    let stored = ctx
        .read_table(provider)
        .and_then(|df| df.filter(col("source_system").eq(lit(source)).and(!col("deleted"))))
        .map_err(|e| reading(source, def.name, e))?
        .collect()
        .await
        .map_err(|e| reading(source, def.name, e))?;
    let upstream: HashSet<String> = upstream.into_iter().collect();
    let total: usize = stored.iter().map(RecordBatch::num_rows).sum();
    let schema = def.schema();
    let mut gone = vec![];
    for batch in &stored {
        // The Delta scan reads strings as views: back to the canonical types the upsert expects.
        let batch = conform(batch, &schema)?;
        let ids = batch
            .column_by_name("source_id")
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| Error::Config { source_name: source.into(), message: "table without source_id".into() })?;
        let missing: BooleanArray = (0..ids.len()).map(|i| Some(!upstream.contains(ids.value(i)))).collect();
        let batch = filter_record_batch(&batch, &missing)?;
        if batch.num_rows() > 0 {
            gone.push(flag_deleted(&batch)?);
        }
    }
    let marked: usize = gone.iter().map(RecordBatch::num_rows).sum();
    if marked == 0 {
        info!(source, table = def.name, checked = total, "reconciled: nothing deleted upstream");
        return Ok(0);
    }
    if marked * 2 > total {
        return Err(Error::Read {
            source_name: source.into(),
            location: format!("reconciliation of `{}`", def.name),
            message: format!(
                "upstream lists {} records but {marked} of the {total} stored ones are missing from it; refusing to \
                 mark more than half as deleted. Check the connection's permissions and filters, then reconcile again",
                upstream.len()
            ),
        });
    }
    warn!(source, table = def.name, marked, "records deleted upstream marked deleted");
    let meta = CommitMeta { operation: "reconcile".into(), source: source.into(), cursor: None };
    warehouse.upsert(def, gone, &meta).await?;
    Ok(marked as u64)
}

fn reading(source: &str, table: &str, e: impl std::fmt::Display) -> Error {
    Error::Read { source_name: source.into(), location: format!("stored `{table}`"), message: e.to_string() }
}

fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let c = batch.column_by_name(f.name()).ok_or_else(|| {
                ArrowError::SchemaError(format!("stored table lacks canonical column `{}`", f.name()))
            })?;
            cast(c, f.data_type())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The batch with its `deleted` column set to true.
fn flag_deleted(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            if f.name() == "deleted" {
                Arc::new(BooleanArray::from(vec![true; batch.num_rows()])) as ArrayRef
            } else {
                c.clone()
            }
        })
        .collect();
    Ok(RecordBatch::try_new(schema, columns)?)
}
