//! A computed report as an XLSX workbook: one sheet per section, a bold header row with the
//! panes frozen under it, column widths from the content, numbers and days as real number and
//! date cells (never text), Russian number formats, and a bold totals row.
//!
//! Number formats are stored in the file in Excel's invariant notation (`,` groups thousands,
//! `.` marks decimals) and Excel shows them in the reader's locale: `#,##0.00 "₽"` is what a
//! Russian Excel displays as `# ##0,00 ₽`. Writing the localized text itself would make the
//! spaces and comma literal characters.

use rust_xlsxwriter::{DocProperties, ExcelDateTime, Format as CellFormat, FormatBorder, Workbook, Worksheet};

use super::cells::Cell;
use super::definition::ColumnFormat;
use super::render::{Language, ReportData, labelled_totals, pick, rows};

/// Roubles with kopecks and thousands grouped.
pub const MONEY_FORMAT: &str = "#,##0.00\\ \"₽\"";
/// A share as a percentage with one decimal.
pub const PERCENT_FORMAT: &str = "0.0%";
/// A day in the Russian order.
pub const DATE_FORMAT: &str = "dd.mm.yyyy";
/// A count with thousands grouped.
pub const COUNT_FORMAT: &str = "#,##0";
/// Any other number, two decimals.
pub const NUMBER_FORMAT: &str = "#,##0.00";

fn number_format(f: ColumnFormat) -> Option<&'static str> {
    match f {
        ColumnFormat::Money => Some(MONEY_FORMAT),
        ColumnFormat::Percent => Some(PERCENT_FORMAT),
        ColumnFormat::Date => Some(DATE_FORMAT),
        ColumnFormat::Count => Some(COUNT_FORMAT),
        ColumnFormat::Number => Some(NUMBER_FORMAT),
        ColumnFormat::Text => None,
    }
}

pub(crate) fn cell_format(f: ColumnFormat, bold: bool) -> CellFormat {
    let mut format = CellFormat::new();
    if let Some(n) = number_format(f) {
        format = format.set_num_format(n);
    }
    if bold {
        format = format.set_bold().set_border_top(FormatBorder::Thin);
    }
    format
}

/// The workbook's bytes. Its document properties carry the data's reference day, not the time
/// of the export.
pub fn xlsx(data: &ReportData, lang: Language) -> Result<Vec<u8>, String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut wb = Workbook::new();
    let day = data.reference_date.unwrap_or(data.period.end);
    let created = ExcelDateTime::from_ymd(
        u16::try_from(chrono::Datelike::year(&day)).unwrap_or(1970),
        chrono::Datelike::month(&day) as u8,
        chrono::Datelike::day(&day) as u8,
    )
    .map_err(e)?;
    let title = format!("{} {}", pick(&data.title, lang), data.period.label());
    wb.set_properties(&DocProperties::new().set_title(&title).set_creation_datetime(&created));
    let header = CellFormat::new().set_bold().set_border_bottom(FormatBorder::Thin).set_text_wrap();
    for section in &data.sections {
        let ws = wb.add_worksheet();
        ws.set_name(pick(&section.section.title, lang)).map_err(e)?;
        let formats: Vec<ColumnFormat> = section.section.columns.iter().map(|c| c.format).collect();
        let plain: Vec<CellFormat> = formats.iter().map(|f| cell_format(*f, false)).collect();
        let bold: Vec<CellFormat> = formats.iter().map(|f| cell_format(*f, true)).collect();
        let mut widths: Vec<usize> = vec![8; formats.len()];
        for (c, column) in section.section.columns.iter().enumerate() {
            let t = pick(&column.title, lang);
            ws.write_string_with_format(0, c as u16, t, &header).map_err(e)?;
            widths[c] = widths[c].max(t.chars().count().min(24));
        }
        let mut row = 1u32;
        for cells in rows(section)? {
            write_row(ws, row, &cells, &plain, &mut widths)?;
            row += 1;
        }
        if let Some(totals) = labelled_totals(section, lang) {
            write_row(ws, row, &totals, &bold, &mut widths)?;
        }
        ws.set_freeze_panes(1, 0).map_err(e)?;
        for (c, w) in widths.iter().enumerate() {
            ws.set_column_width(c as u16, (*w).min(60) as f64 + 2.0).map_err(e)?;
        }
    }
    wb.save_to_buffer().map_err(e)
}

pub(crate) fn write_row(
    ws: &mut Worksheet,
    row: u32,
    cells: &[Cell],
    formats: &[CellFormat],
    widths: &mut [usize],
) -> Result<(), String> {
    let e = |e: rust_xlsxwriter::XlsxError| e.to_string();
    for (c, cell) in cells.iter().enumerate() {
        let col = c as u16;
        let format = &formats[c];
        let shown = match cell {
            Cell::Null => {
                ws.write_blank(row, col, format).map_err(e)?;
                0
            }
            Cell::Text(s) => {
                ws.write_string_with_format(row, col, s, format).map_err(e)?;
                s.chars().count()
            }
            Cell::Date(d) => {
                let (y, m, day) = (chrono::Datelike::year(d), chrono::Datelike::month(d), chrono::Datelike::day(d));
                let dt = ExcelDateTime::from_ymd(u16::try_from(y).unwrap_or(1900), m as u8, day as u8).map_err(e)?;
                ws.write_datetime_with_format(row, col, &dt, format).map_err(e)?;
                10
            }
            number => match number.number() {
                Some(n) => {
                    ws.write_number_with_format(row, col, n, format).map_err(e)?;
                    // Grouped digits, decimals and the currency sign.
                    number.text(false).len() + 4
                }
                None => {
                    ws.write_blank(row, col, format).map_err(e)?;
                    0
                }
            },
        };
        widths[c] = widths[c].max(shown);
    }
    Ok(())
}
