//! The audit as an XLSX workbook for auditors: `read` (what was read, the settings), `branches`
//! (verdicts), one sheet per finding kind (every kind, empty ones too, so a clean audit shows it
//! looked), then `matches`, `volume`, `lead_times` and `rules`. Every finding row carries the
//! system and id of its record (and of the other record), to look it up at the source. Cells
//! are typed as in report exports (`reports::xlsx`); the file's creation time is the commit time
//! of the intake version read, so the same version gives the same workbook.

use dealhouse_warehouse::config::FINDING_KINDS;
use dealhouse_warehouse::datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use dealhouse_warehouse::datafusion::arrow::compute::filter_record_batch;
use dealhouse_warehouse::datafusion::arrow::datatypes::DataType;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format as CellFormat, FormatBorder, Workbook};

use super::IntakeAudit;
use crate::reports::ColumnFormat;
use crate::reports::cells::{Cell, cells};
use crate::reports::xlsx::{cell_format, write_row};

/// The workbook's bytes.
pub fn xlsx(audit: &IntakeAudit) -> Result<Vec<u8>, String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut wb = Workbook::new();
    let when = audit.read.first().and_then(|r| r.committed_at).unwrap_or_default();
    let created = ExcelDateTime::from_timestamp(when.timestamp()).map_err(e)?;
    wb.set_properties(&DocProperties::new().set_title("Intake migration audit").set_creation_datetime(&created));

    let mut read: Vec<Vec<Cell>> = vec![vec![text("asked"), Cell::Null, text(&audit.asked.to_string())]];
    for r in &audit.read {
        read.push(vec![text("version"), text(&r.table), Cell::Int(r.version)]);
        if let Some(t) = r.committed_at {
            read.push(vec![text("committed_at"), text(&r.table), text(&t.to_rfc3339())]);
        }
    }
    for (k, v) in &audit.settings {
        read.push(vec![text("setting"), text(k), text(v)]);
    }
    let formats = [ColumnFormat::Text; 3];
    sheet(&mut wb, "read", &["item", "name", "value"], &formats, &read)?;

    let section = |name: &str| audit.section(name).ok_or_else(|| format!("no section {name}"));
    batch_sheet(&mut wb, "branches", section("branches")?)?;
    let findings = section("findings")?;
    for kind in FINDING_KINDS {
        batch_sheet(&mut wb, kind, &of_kind(findings, kind)?)?;
    }
    for name in ["matches", "volume", "lead_times", "rules"] {
        batch_sheet(&mut wb, name, section(name)?)?;
    }
    wb.save_to_buffer().map_err(e)
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

/// The findings of one kind.
fn of_kind(findings: &RecordBatch, kind: &str) -> Result<RecordBatch, String> {
    let i = findings.schema().index_of("kind").map_err(|e| e.to_string())?;
    let kinds = findings.column(i).as_string_opt::<i32>().ok_or("findings.kind is not text")?;
    let mask: BooleanArray = kinds.iter().map(|k| Some(k == Some(kind))).collect();
    filter_record_batch(findings, &mask).map_err(|e| e.to_string())
}

fn batch_sheet(wb: &mut Workbook, name: &str, batch: &RecordBatch) -> Result<(), String> {
    let schema = batch.schema();
    let headers: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let formats: Vec<ColumnFormat> = schema.fields().iter().map(|f| format_of(f.data_type())).collect();
    let columns: Vec<Vec<Cell>> = batch.columns().iter().map(cells).collect::<Result<_, _>>()?;
    let rows: Vec<Vec<Cell>> = (0..batch.num_rows()).map(|r| columns.iter().map(|c| c[r].clone()).collect()).collect();
    sheet(wb, name, &headers, &formats, &rows)
}

fn format_of(t: &DataType) -> ColumnFormat {
    match t {
        t if t.is_integer() => ColumnFormat::Count,
        t if t.is_floating() => ColumnFormat::Number,
        DataType::Decimal128(..) | DataType::Decimal256(..) => ColumnFormat::Money,
        DataType::Date32 | DataType::Date64 => ColumnFormat::Date,
        _ => ColumnFormat::Text,
    }
}

fn sheet(
    wb: &mut Workbook,
    name: &str,
    headers: &[&str],
    formats: &[ColumnFormat],
    rows: &[Vec<Cell>],
) -> Result<(), String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let ws = wb.add_worksheet();
    ws.set_name(name).map_err(e)?;
    let header = CellFormat::new().set_bold().set_border_bottom(FormatBorder::Thin);
    let plain: Vec<CellFormat> = formats.iter().map(|f| cell_format(*f, false)).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count().max(8)).collect();
    for (c, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &header).map_err(e)?;
    }
    for (r, cells) in rows.iter().enumerate() {
        write_row(ws, r as u32 + 1, cells, &plain, &mut widths)?;
    }
    ws.set_freeze_panes(1, 0).map_err(e)?;
    for (c, w) in widths.iter().enumerate() {
        ws.set_column_width(c as u16, (*w).min(60) as f64 + 2.0).map_err(e)?;
    }
    Ok(())
}
