//! Renders the company into the other systems' formats: the legacy intake SQLite database, the
//! planning department's workbook and 1C's windows-1251 CSV register of signed contracts.
//!
//! Every file is written so that the same company gives the same bytes: a fresh SQLite file
//! filled in one transaction and vacuumed, a workbook dated from `as_of`, sorted rows.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format, Workbook, XlsxError};

use super::company::{Company, IntakeRequest};
use super::story::Stage;
use crate::{Error, Result};

/// A buffered output file that names itself in errors.
pub(crate) struct Output {
    pub writer: BufWriter<File>,
    path: PathBuf,
}

impl Output {
    /// An error about this file.
    pub fn error(&self, message: String) -> Error {
        Error::File { path: self.path.clone(), message: format!("writing the demo file failed: {message}") }
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.writer.flush().map_err(|e| self.error(e.to_string()))?;
        Ok(self.path)
    }
}

/// Creates (truncates) a JSON Lines file.
pub(crate) fn jsonl_file(path: &Path) -> Result<Output> {
    let file = File::create(path).map_err(|e| file_error(path, format!("cannot create it: {e}")))?;
    Ok(Output { writer: BufWriter::with_capacity(1 << 20, file), path: path.to_path_buf() })
}

fn file_error(path: &Path, message: String) -> Error {
    Error::File { path: path.to_path_buf(), message }
}

/// Wall-clock Moscow time without an offset, as the legacy system stores it.
fn moscow_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono_tz::Europe::Moscow).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Writes the legacy request-intake database.
pub(crate) fn write_intake(company: &Company, path: &Path) -> Result<PathBuf> {
    write_requests(company, &company.intake, path, false)
}

/// Writes the CRM intake desk's export: the same shape plus the legacy id a migrated request kept.
pub(crate) fn write_desk(company: &Company, path: &Path) -> Result<PathBuf> {
    write_requests(company, &company.desk, path, true)
}

/// Writes `sources/audit-manifest.json`: every problem planted in the migration, as the finding
/// the audit must report (kind, branch, system and record id), sorted.
pub(crate) fn write_audit_manifest(company: &Company, path: &Path) -> Result<PathBuf> {
    let findings: Vec<serde_json::Value> = company
        .planted
        .iter()
        .map(|p| serde_json::json!({ "kind": p.kind, "branch": p.branch, "system": p.system, "id": p.id.map(|i| i.to_string()) }))
        .collect();
    let doc = serde_json::json!({
        "about": "Problems planted in the demo's intake migration: exactly what `dealhouse audit intake` must find.",
        "findings": findings,
    });
    let mut text =
        serde_json::to_string_pretty(&doc).map_err(|e| file_error(path, format!("cannot render it: {e}")))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| file_error(path, format!("cannot write it: {e}")))?;
    Ok(path.to_path_buf())
}

fn write_requests(company: &Company, rows: &[IntakeRequest], path: &Path, desk: bool) -> Result<PathBuf> {
    let err = |e: rusqlite::Error| file_error(path, format!("writing the intake database failed: {e}"));
    for stale in [path.to_path_buf(), path.with_extension("sqlite-journal")] {
        if stale.exists() {
            std::fs::remove_file(&stale).map_err(|e| file_error(&stale, format!("cannot replace it: {e}")))?;
        }
    }
    let mut conn = rusqlite::Connection::open(path).map_err(err)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=DELETE;
         CREATE TABLE requests (
             id INTEGER PRIMARY KEY,
             dept TEXT NOT NULL CHECK (dept IN ('marketing', 'content')),
             office_code TEXT NOT NULL,
             client_name TEXT NOT NULL,
             client_inn TEXT,
             subject TEXT NOT NULL,
             created_at TEXT NOT NULL,
             status TEXT NOT NULL CHECK (status IN ('new', 'in_progress', 'done', 'rejected')),
             resolved_at TEXT,
             updated_at TEXT NOT NULL,
             crm_deal_id INTEGER,
             amount TEXT{}
         );
         CREATE INDEX requests_updated_at ON requests (updated_at);",
        if desk { ",\n             legacy_id TEXT" } else { "" }
    ))
    .map_err(err)?;
    let tx = conn.transaction().map_err(err)?;
    {
        let mut insert = tx
            .prepare(if desk {
                "INSERT INTO requests (id, dept, office_code, client_name, client_inn, subject, created_at, status,
                 resolved_at, updated_at, crm_deal_id, amount, legacy_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            } else {
                "INSERT INTO requests (id, dept, office_code, client_name, client_inn, subject, created_at, status,
                 resolved_at, updated_at, crm_deal_id, amount) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            })
            .map_err(err)?;
        for r in rows {
            let office = company.branches.get(r.branch).map(|b| b.city.intake_code).unwrap_or("");
            let deal_id = r.deal.and_then(|d| company.deals.get(d)).map(|d| d.id as i64);
            let amount = r.amount.map(|a| a.round_dp(2).to_string());
            let (id, created, resolved, updated) =
                (r.id as i64, moscow_local(r.created), r.resolved.map(moscow_local), moscow_local(r.updated));
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![
                &id,
                &r.department,
                &office,
                &r.client_name,
                &r.client_inn,
                &r.subject,
                &created,
                &r.status,
                &resolved,
                &updated,
                &deal_id,
                &amount,
            ];
            if desk {
                values.push(&r.legacy_ref);
            }
            insert.execute(values.as_slice()).map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    conn.execute_batch("VACUUM").map_err(err)?;
    conn.close().map_err(|(_, e)| err(e))?;
    Ok(path.to_path_buf())
}

/// Writes the plans workbook (sheet `Планы`).
pub(crate) fn write_plans(company: &Company, path: &Path, as_of: NaiveDate) -> Result<PathBuf> {
    let err = |e: XlsxError| file_error(path, format!("writing the plans workbook failed: {e}"));
    let excel_date = |d: NaiveDate| ExcelDateTime::from_ymd(d.year() as u16, d.month() as u8, d.day() as u8);
    let mut workbook = Workbook::new();
    // A fixed creation time keeps the bytes identical run to run.
    let created = excel_date(as_of).and_then(|d| d.and_hms(6, 0, 0)).map_err(err)?;
    let properties =
        DocProperties::new().set_author("Плановый отдел").set_title("Планы продаж").set_creation_datetime(&created);
    workbook.set_properties(&properties);
    let sheet = workbook.add_worksheet();
    sheet.set_name("Планы").map_err(err)?;
    let bold = Format::new().set_bold();
    let date = Format::new().set_num_format("dd.mm.yyyy");
    let money = Format::new().set_num_format("#,##0");
    for (col, header) in ["Месяц", "Филиал", "ID менеджера", "Менеджер", "Показатель", "План"].into_iter().enumerate()
    {
        sheet.write_string_with_format(0, col as u16, header, &bold).map_err(err)?;
    }
    for (i, plan) in company.plans.iter().enumerate() {
        let row = i as u32 + 1;
        let Some(manager) = company.managers.get(plan.manager) else { continue };
        let department = company.branches.get(manager.branch).map(|b| b.department_id).unwrap_or(0);
        sheet.write_datetime_with_format(row, 0, excel_date(plan.month).map_err(err)?, &date).map_err(err)?;
        sheet.write_string(row, 1, department.to_string()).map_err(err)?;
        sheet.write_number(row, 2, manager.user_id as f64).map_err(err)?;
        sheet.write_string(row, 3, format!("{} {}", manager.name.last, manager.name.first)).map_err(err)?;
        sheet.write_string(row, 4, plan.metric.label()).map_err(err)?;
        sheet.write_number_with_format(row, 5, plan.target.to_f64().unwrap_or(0.0), &money).map_err(err)?;
    }
    sheet.set_column_width(0, 12).map_err(err)?;
    sheet.set_column_width(3, 28).map_err(err)?;
    sheet.set_column_width(4, 12).map_err(err)?;
    sheet.set_column_width(5, 14).map_err(err)?;
    sheet.set_freeze_panes(1, 0).map_err(err)?;
    workbook.save(path).map_err(err)?;
    Ok(path.to_path_buf())
}

/// Money as 1C prints it: space-grouped thousands and a decimal comma (`1 234 567,80`).
pub(crate) fn ru_money(value: Decimal) -> String {
    let mut v = value.round_dp(2);
    v.rescale(2);
    let text = v.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, "00"));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3 + 4);
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(ch);
    }
    let sign = if v.is_sign_negative() && !v.is_zero() { "-" } else { "" };
    format!("{sign}{grouped},{frac}")
}

/// Writes 1C's register of signed contracts: one row per deal that reached "contract signed".
pub(crate) fn write_accounting(company: &Company, path: &Path) -> Result<PathBuf> {
    let err = |message: String| file_error(path, message);
    let mut seen = vec![false; company.deals.len()];
    let mut signed = Vec::new();
    // Stage changes are in time order, so the first contract stage of a deal comes first.
    for change in &company.stage_changes {
        if change.stage == Stage::FinalInvoice && !std::mem::replace(&mut seen[change.deal], true) {
            signed.push((change.at, change.deal));
        }
    }
    let mut csv = csv::WriterBuilder::new().delimiter(b';').terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    let header = ["Дата", "Номер", "Контрагент", "ИНН", "Сделка CRM", "Сумма", "Комиссия"];
    csv.write_record(header).map_err(|e| err(e.to_string()))?;
    for (n, (at, d)) in signed.iter().enumerate() {
        let deal = &company.deals[*d];
        let client = company.clients.get(deal.client);
        let date = super::calendar::moscow_date(*at);
        csv.write_record([
            format!("{:02}.{:02}.{:04}", date.day(), date.month(), date.year()),
            format!("ДГ-{:06}", n + 1),
            client.map(|c| c.name.title.clone()).unwrap_or_default(),
            client.and_then(|c| c.inn.clone()).unwrap_or_default(),
            deal.id.to_string(),
            ru_money(deal.amount),
            ru_money(deal.commission),
        ])
        .map_err(|e| err(e.to_string()))?;
    }
    let bytes = csv.into_inner().map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|e| err(e.to_string()))?;
    let (encoded, _, lossy) = encoding_rs::WINDOWS_1251.encode(&text);
    if lossy {
        return Err(err("a client name has characters windows-1251 cannot encode; use Cyrillic and ASCII only".into()));
    }
    std::fs::write(path, &encoded).map_err(|e| err(format!("cannot write it: {e}")))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ru_money_groups_thousands_with_a_decimal_comma() {
        assert_eq!(ru_money("1234567.8".parse().unwrap()), "1 234 567,80");
        assert_eq!(ru_money("999.5".parse().unwrap()), "999,50");
        assert_eq!(ru_money("100000".parse().unwrap()), "100 000,00");
        assert_eq!(ru_money("-1500.25".parse().unwrap()), "-1 500,25");
    }
}
