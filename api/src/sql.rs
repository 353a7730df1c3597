//! Read-only SQL for analysts and the dashboards (`POST /api/v1/sql`), and the table list.

use axum::Json;
use axum::extract::State;
use std::sync::Arc;

use dealhouse_warehouse::datafusion::arrow::array::RecordBatch;
use dealhouse_warehouse::datafusion::arrow::compute::cast;
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema};
use dealhouse_warehouse::datafusion::arrow::json::ArrayWriter;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Most rows one answer carries; `truncated` says when there were more.
pub const MAX_ROWS: usize = 10_000;

/// `POST /api/v1/sql` body.
#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    /// One read-only statement.
    pub sql: String,
}

/// Runs one read-only statement; answers `{columns, rows, truncated}`. Decimals come as strings.
pub async fn query(State(state): State<AppState>, Json(req): Json<SqlRequest>) -> Result<Json<Value>, ApiError> {
    let session = state.session().await?;
    let df = session.plan_read_only(&req.sql).await?;
    let columns: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
    let df = df.limit(0, Some(MAX_ROWS + 1)).map_err(dealhouse_warehouse::Error::from)?;
    let batches = df.collect().await.map_err(dealhouse_warehouse::Error::from)?;
    let mut buf = Vec::new();
    {
        let mut w = ArrayWriter::new(&mut buf);
        for b in &batches {
            w.write(&decimals_as_text(b)?).map_err(dealhouse_warehouse::Error::from)?;
        }
        w.finish().map_err(dealhouse_warehouse::Error::from)?;
    }
    let mut rows: Vec<Value> = if buf.is_empty() { vec![] } else { serde_json::from_slice(&buf).unwrap_or_default() };
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    Ok(Json(json!({ "columns": columns, "rows": rows, "truncated": truncated })))
}

/// Money must not pass through a JSON float: decimal columns are sent as exact strings.
fn decimals_as_text(batch: &RecordBatch) -> Result<RecordBatch, dealhouse_warehouse::Error> {
    let schema = batch.schema();
    if !schema.fields().iter().any(|f| matches!(f.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..))) {
        return Ok(batch.clone());
    }
    let mut fields = vec![];
    let mut columns = vec![];
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        if matches!(f.data_type(), DataType::Decimal128(..) | DataType::Decimal256(..)) {
            columns.push(cast(c, &DataType::Utf8)?);
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
        } else {
            columns.push(c.clone());
            fields.push(f.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

/// `GET /api/v1/tables`: every table with its version and row count.
pub async fn tables(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut out = vec![];
    let wh = &state.inner.warehouse;
    for name in wh.list_tables().await.map_err(ApiError::from)? {
        if let Some(info) = wh.info(&name).await.map_err(ApiError::from)? {
            out.push(json!({ "name": info.name, "version": info.version, "rows": info.rows }));
        }
    }
    Ok(Json(json!({ "tables": out })))
}
