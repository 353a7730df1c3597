//! Appending rows to a log table (`deliveries`: one row per delivery attempt's outcome): the
//! table is created with the given schema on first use, and each call is one Delta commit.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use deltalake::protocol::SaveMode;

use crate::{CommitMeta, Error, Result, Warehouse, WriteStats};

impl Warehouse {
    /// Appends `batches` to table `name` in one commit, creating it with `schema` and `doc`
    /// first. Nothing stored is read or rewritten, so concurrent appends never conflict.
    pub async fn append(
        &self,
        name: &str,
        schema: &SchemaRef,
        doc: &str,
        batches: Vec<RecordBatch>,
        meta: &CommitMeta,
    ) -> Result<WriteStats> {
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        if rows == 0 {
            return Ok(WriteStats::default());
        }
        let table = match self.ensure(name, schema, doc).await {
            Ok(t) => t,
            // Two first appends at once: one created the table between the other's check and
            // its create; the table is there now.
            Err(_) => self.ensure(name, schema, doc).await?,
        };
        let table = table
            .write(batches)
            .with_save_mode(SaveMode::Append)
            .with_commit_properties(meta.properties())
            .await
            .map_err(|e| Error::delta(name, e))?;
        Ok(WriteStats { inserted: rows, version: table.version().map(|v| v as i64), ..Default::default() })
    }
}
