//! Rendering query results and model docs for the terminal.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use dealhouse_warehouse::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::datatypes::Int64Type;
use dealhouse_warehouse::datafusion::arrow::{csv, util::pretty};
use dealhouse_warehouse::models::Model;

use crate::Format;

/// Prints batches to stdout in the chosen format.
pub fn print(batches: &[RecordBatch], format: Format) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Table => writeln!(out, "{}", pretty::pretty_format_batches(batches)?)?,
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().with_header(true).build(&mut out);
            if batches.is_empty() {
                return Ok(());
            }
            for b in batches {
                w.write(b)?;
            }
        }
        // The API's representation: decimals as exact strings, not JSON floats.
        Format::Json => {
            let mut rows = Vec::new();
            dealhouse_api::write_json_rows(&mut rows, batches)?;
            out.write_all(&rows)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// The first value of the first column as i64 (for `count(*)` queries).
pub fn first_i64(batches: &[RecordBatch]) -> Option<i64> {
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    let c = b.column(0).as_primitive_opt::<Int64Type>()?;
    (!c.is_null(0)).then(|| c.value(0))
}

/// Models with docs, columns, tests and what they read.
pub fn model_docs(models: &BTreeMap<String, Model>) -> String {
    let mut s = String::new();
    for m in models.values() {
        s.push_str(&format!("{}  ({})\n  {}\n", m.name, m.origin, m.description));
        if !m.depends_on.is_empty() {
            s.push_str(&format!("  reads: {}\n", m.depends_on.iter().cloned().collect::<Vec<_>>().join(", ")));
        }
        let used_by: Vec<&str> =
            models.values().filter(|o| o.depends_on.contains(&m.name)).map(|o| o.name.as_str()).collect();
        if !used_by.is_empty() {
            s.push_str(&format!("  used by: {}\n", used_by.join(", ")));
        }
        for (c, d) in &m.columns {
            s.push_str(&format!("    {c:<22} {d}\n"));
        }
        for t in &m.tests {
            s.push_str(&format!("    test: {}\n", t.label()));
        }
        s.push('\n');
    }
    s
}

/// The quarantine listing as text: the groups with their reason and how they get read again,
/// then the records.
pub fn quarantine(listing: &dealhouse_ingest::quarantine::report::Listing) -> String {
    if listing.total == 0 {
        return "quarantine: empty\n".to_string();
    }
    let mut s = format!(
        "quarantine: {} record{} in {} group{}\n",
        listing.total,
        if listing.total == 1 { "" } else { "s" },
        listing.groups.len(),
        if listing.groups.len() == 1 { "" } else { "s" }
    );
    for g in &listing.groups {
        s.push_str(&format!("\n{:>7}  {} ({}) -> {}\n", g.count, g.source, g.kind, g.table));
        s.push_str(&format!("         why:  {}\n", g.reason));
        s.push_str(&format!("         then: {}\n", g.then));
        s.push_str(&format!("         e.g.  {}\n", g.example));
    }
    s.push_str(&format!("\n{} of {} records (newest first):\n", listing.rows.len(), listing.total));
    for r in &listing.rows {
        s.push_str(&format!(
            "  {}  {} -> {}  {}\n      {}\n",
            r.quarantined_at.format("%Y-%m-%d %H:%M:%S"),
            r.source,
            r.table,
            r.location,
            r.reason
        ));
    }
    s
}
