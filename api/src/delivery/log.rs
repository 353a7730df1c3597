//! The `deliveries` table: one row per recipient of every delivery (when, where, what, how many
//! attempts, delivered or the last error), appended in one commit per [`super::deliver`] call.
//! Hidden from branch principals (`scope::policy`): it lists every branch's recipients.

use std::sync::Arc;

use dealhouse_warehouse::datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use dealhouse_warehouse::{CommitMeta, Project, Warehouse};

use super::{Delivery, DeliveryOutcome};

/// The table's name.
pub const DELIVERIES_TABLE: &str = "deliveries";

const DOC: &str = "One row per recipient of each report or alert delivery: when, destination, recipient, subject, \
                   files, attempts, delivered, the last error.";

/// Its columns.
pub fn deliveries_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
        Field::new("destination", DataType::Utf8, false),
        Field::new("recipient", DataType::Utf8, false),
        Field::new("subject", DataType::Utf8, false),
        Field::new("branch_id", DataType::Utf8, true),
        // The files' names as a JSON array.
        Field::new("files", DataType::Utf8, false),
        Field::new("attempts", DataType::Int32, false),
        Field::new("delivered", DataType::Boolean, false),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// Appends the outcomes of one delivery.
pub(crate) async fn record(
    project: &Project,
    delivery: &Delivery,
    outcomes: &[DeliveryOutcome],
) -> Result<(), dealhouse_warehouse::Error> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let options = project.config.warehouse.storage_options.clone().into_iter().collect();
    let warehouse = Warehouse::new(project.warehouse_url()?, options);
    let n = outcomes.len();
    let now = chrono::Utc::now().timestamp_micros();
    let files = serde_json::to_string(&delivery.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into());
    let columns: Vec<ArrayRef> = vec![
        Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(outcomes.iter().map(|o| o.destination.as_str()))),
        Arc::new(StringArray::from_iter_values(outcomes.iter().map(|o| o.recipient.as_str()))),
        Arc::new(StringArray::from(vec![delivery.subject.as_str(); n])),
        Arc::new(StringArray::from(vec![delivery.branch.as_deref(); n])),
        Arc::new(StringArray::from(vec![files.as_str(); n])),
        Arc::new(Int32Array::from_iter_values(outcomes.iter().map(|o| i32::try_from(o.attempts).unwrap_or(i32::MAX)))),
        Arc::new(BooleanArray::from(outcomes.iter().map(|o| o.delivered).collect::<Vec<_>>())),
        Arc::new(StringArray::from(outcomes.iter().map(|o| o.error.as_deref()).collect::<Vec<_>>())),
    ];
    let schema = deliveries_schema();
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let meta = CommitMeta { operation: "deliver".into(), source: "delivery".into(), cursor: None };
    warehouse.append(DELIVERIES_TABLE, &schema, DOC, vec![batch], &meta).await?;
    Ok(())
}
