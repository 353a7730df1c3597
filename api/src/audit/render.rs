//! The audit's result as files: one JSON document, or one CSV per section. Both carry what was
//! read (each input's Delta version and its commit time) and the settings, and nothing that
//! changes run to run (no wall-clock time), so the same version gives the same bytes.

use dealhouse_warehouse::datafusion::arrow::array::RecordBatch;
use dealhouse_warehouse::datafusion::arrow::csv::WriterBuilder;
use serde_json::{Map, Value, json};

use super::IntakeAudit;

/// The header every output starts with: what was asked, what was read, the settings.
fn read_json(audit: &IntakeAudit) -> Value {
    let read: Vec<Value> = audit
        .read
        .iter()
        .map(|r| {
            json!({
                "table": r.table,
                "version": r.version,
                "committed_at": r.committed_at.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            })
        })
        .collect();
    let settings: Map<String, Value> =
        audit.settings.iter().map(|(k, v)| (k.to_string(), Value::String(v.clone()))).collect();
    json!({ "asked": audit.asked.to_string(), "read": read, "settings": settings })
}

/// One JSON document: `{"audit": "intake", "asked", "read", "settings", "<section>": [rows]}`.
pub fn json(audit: &IntakeAudit) -> Result<Vec<u8>, String> {
    let mut doc = Map::new();
    doc.insert("audit".into(), Value::String("intake".into()));
    if let Value::Object(head) = read_json(audit) {
        doc.extend(head);
    }
    for section in &audit.sections {
        let rows = crate::query::batches_to_json(std::slice::from_ref(&section.batch))
            .map_err(|e| format!("section {}: {}", section.name, e.message))?;
        doc.insert(section.name.into(), Value::Array(rows));
    }
    let mut out = serde_json::to_vec_pretty(&Value::Object(doc)).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

/// One CSV per section (`<section>.csv`) and `read.csv` (what was read, the settings), each
/// with a header row.
pub fn csv(audit: &IntakeAudit) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut files = Vec::with_capacity(audit.sections.len() + 1);
    let mut read = String::from("item,name,value\n");
    read.push_str(&format!("asked,,{}\n", audit.asked));
    for r in &audit.read {
        read.push_str(&format!("version,{},{}\n", r.table, r.version));
        if let Some(t) = r.committed_at {
            read.push_str(&format!(
                "committed_at,{},{}\n",
                r.table,
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
        }
    }
    for (k, v) in &audit.settings {
        read.push_str(&format!("setting,{k},\"{}\"\n", v.replace('"', "\"\"")));
    }
    files.push(("read.csv".to_string(), read.into_bytes()));
    for section in &audit.sections {
        files.push((format!("{}.csv", section.name), batch_csv(&section.batch)?));
    }
    Ok(files)
}

fn batch_csv(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut w = WriterBuilder::new().with_header(true).build(&mut out);
        w.write(batch).map_err(|e| e.to_string())?;
    }
    Ok(out)
}
