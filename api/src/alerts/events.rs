//! The `alert_events` table: one row per occurrence of an alert (opened, last seen, resolved,
//! delivered), read whole and rewritten in one commit per evaluation (it holds occurrences, not
//! rows of the business, so it stays small). Scoped on `branch_id` (`scope::policy`).

use std::sync::Arc;

use dealhouse_warehouse::datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use dealhouse_warehouse::datafusion::arrow::compute::cast;
use dealhouse_warehouse::datafusion::arrow::datatypes::{
    DataType, Field, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use dealhouse_warehouse::datafusion::prelude::SessionContext;
use dealhouse_warehouse::{CommitMeta, Warehouse};

/// The table's name.
pub const ALERT_EVENTS_TABLE: &str = "alert_events";

/// Its columns with their docs (the OpenAPI schema of `GET /api/v1/alerts` is made from them).
pub const COLUMNS: [(&str, &str); 9] = [
    ("alert", "The alert ([alerts.NAME] in dealhouse.toml)."),
    ("key", "What identifies the occurrence: its key columns and values, `column=value; ...`."),
    (
        "branch_id",
        "The branch it concerns (the row's branch_id, or a measure's branch); null for alerts about no branch.",
    ),
    ("message", "The alert's message for the occurrence, as last evaluated."),
    ("values", "The occurrence's row as a JSON object (decimals as exact strings), as last evaluated."),
    ("opened_at", "When an evaluation first returned it (UTC)."),
    ("last_seen_at", "The latest evaluation that returned it (UTC)."),
    ("resolved_at", "The first evaluation that no longer returned it (UTC); null while open."),
    ("delivered_at", "When it was delivered to at least one recipient (UTC); null if not (yet)."),
];

/// One occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub alert: String,
    pub key: String,
    pub branch_id: Option<String>,
    pub message: String,
    pub values: String,
    /// Instants in microseconds since the epoch (UTC).
    pub opened_at: i64,
    pub last_seen_at: i64,
    pub resolved_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

/// The table's Arrow schema.
pub fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    Arc::new(Schema::new(vec![
        Field::new("alert", DataType::Utf8, false),
        Field::new("key", DataType::Utf8, false),
        Field::new("branch_id", DataType::Utf8, true),
        Field::new("message", DataType::Utf8, false),
        Field::new("values", DataType::Utf8, false),
        Field::new("opened_at", ts(), false),
        Field::new("last_seen_at", ts(), false),
        Field::new("resolved_at", ts(), true),
        Field::new("delivered_at", ts(), true),
    ]))
}

/// Every occurrence recorded (none before the first evaluation).
pub(crate) async fn read(warehouse: &Warehouse) -> crate::Result<Vec<Event>> {
    let Some(provider) = warehouse.provider(ALERT_EVENTS_TABLE).await? else { return Ok(vec![]) };
    let batches = SessionContext::new().read_table(provider)?.collect().await?;
    let mut out = vec![];
    let want = schema();
    for b in &batches {
        // The scan may hand strings back as views, or instants in another unit: read each
        // column as the type this version writes.
        let column = |name: &str| -> Option<ArrayRef> {
            let field = want.field_with_name(name).ok()?;
            cast(b.column_by_name(name)?, field.data_type()).ok()
        };
        let text = |name: &str| column(name).and_then(|c| c.as_string_opt::<i32>().cloned());
        let time = |name: &str| column(name).and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>().cloned());
        let (Some(alert), Some(key), Some(branch), Some(message), Some(values)) =
            (text("alert"), text("key"), text("branch_id"), text("message"), text("values"))
        else {
            return Err(bad_table());
        };
        let (Some(opened), Some(seen), Some(resolved), Some(delivered)) =
            (time("opened_at"), time("last_seen_at"), time("resolved_at"), time("delivered_at"))
        else {
            return Err(bad_table());
        };
        let opt = |a: &TimestampMicrosecondArray, i: usize| (!a.is_null(i)).then(|| a.value(i));
        for i in 0..b.num_rows() {
            out.push(Event {
                alert: alert.value(i).to_string(),
                key: key.value(i).to_string(),
                branch_id: (!branch.is_null(i)).then(|| branch.value(i).to_string()),
                message: message.value(i).to_string(),
                values: values.value(i).to_string(),
                opened_at: opened.value(i),
                last_seen_at: seen.value(i),
                resolved_at: opt(&resolved, i),
                delivered_at: opt(&delivered, i),
            });
        }
    }
    Ok(out)
}

fn bad_table() -> crate::Error {
    crate::Error::Alert {
        alert: "*".into(),
        message: format!(
            "the `{ALERT_EVENTS_TABLE}` table does not have the columns this version writes; move it aside to start \
             the alerts' history afresh"
        ),
    }
}

/// Replaces the table with `events` (sorted, so the same state is the same file) in one commit.
pub(crate) async fn write(warehouse: &Warehouse, events: &mut [Event]) -> crate::Result<()> {
    events.sort_by(|a, b| (&a.alert, &a.key, a.opened_at).cmp(&(&b.alert, &b.key, b.opened_at)));
    let ts = |v: Vec<Option<i64>>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(v).with_timezone("UTC")) };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.alert.as_str()))),
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.key.as_str()))),
        Arc::new(StringArray::from(events.iter().map(|e| e.branch_id.as_deref()).collect::<Vec<_>>())),
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.message.as_str()))),
        Arc::new(StringArray::from_iter_values(events.iter().map(|e| e.values.as_str()))),
        ts(events.iter().map(|e| Some(e.opened_at)).collect()),
        ts(events.iter().map(|e| Some(e.last_seen_at)).collect()),
        ts(events.iter().map(|e| e.resolved_at).collect()),
        ts(events.iter().map(|e| e.delivered_at).collect()),
    ];
    let schema = schema();
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(dealhouse_warehouse::Error::from)?;
    let meta = CommitMeta { operation: "alerts".into(), source: "alerts".into(), cursor: None };
    warehouse.overwrite(ALERT_EVENTS_TABLE, schema, vec![batch], &meta).await?;
    Ok(())
}
