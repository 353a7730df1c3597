//! A computed report as the bytes of one file: CSV, JSON or Parquet here, XLSX in `xlsx.rs`.
//!
//! Nothing time- or machine-dependent goes into a file (no export time, no writer version that
//! changes between builds, rows in a total order), so the same warehouse version and parameters
//! give byte-identical CSV, JSON and Parquet. Money stays exact: a decimal string in CSV and
//! JSON, `Decimal128` in Parquet.

use std::sync::Arc;

use chrono::NaiveDate;
use dealhouse_warehouse::datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, new_null_array};
use dealhouse_warehouse::datafusion::arrow::compute::cast;
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Field, Schema};
use dealhouse_warehouse::datafusion::parquet::arrow::ArrowWriter;
use dealhouse_warehouse::datafusion::parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::cells::Cell;
use super::period::Period;
use super::run::{Filters, SectionData};

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Excel: one sheet per section, real number and date cells.
    Xlsx,
    /// CSV in UTF-8: the sections one after another.
    Csv,
    /// Parquet: every section's rows in one table, a `section` column first.
    Parquet,
    /// JSON: the sections with their columns, rows and totals.
    Json,
}

impl Format {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
            Self::Parquet => "parquet",
            Self::Json => "json",
        }
    }
}

/// The language of titles and headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    /// Russian.
    #[default]
    Ru,
    /// English.
    En,
}

/// CSV options for Excel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CsvOptions {
    /// Start with a UTF-8 byte order mark (Excel otherwise reads the file as the system code page).
    pub bom: bool,
    /// `;` between fields and `,` in decimals: what Excel in a Russian locale expects.
    pub semicolon: bool,
}

/// Everything a file shows.
#[derive(Debug, Clone)]
pub struct ReportData {
    /// The report id.
    pub report: String,
    /// Its titles.
    pub title: super::definition::Titles,
    /// The period.
    pub period: Period,
    /// The data's reference day.
    pub reference_date: Option<NaiveDate>,
    /// The filters given.
    pub filters: Filters,
    /// The branch whose scope the file was computed in (`--per-branch`).
    pub branch: Option<String>,
    /// The sections.
    pub sections: Vec<SectionData>,
}

/// Text in the chosen language.
pub fn pick(t: &super::definition::Titles, lang: Language) -> &str {
    match lang {
        Language::Ru => &t.ru,
        Language::En => &t.en,
    }
}

/// The label of a totals row.
pub fn totals_label(lang: Language) -> &'static str {
    match lang {
        Language::Ru => "Итого",
        Language::En => "Total",
    }
}

/// Rows as cells, row-major.
pub fn rows(section: &SectionData) -> Result<Vec<Vec<Cell>>, String> {
    let columns: Vec<Vec<Cell>> =
        (0..section.batch.num_columns()).map(|i| section.column_cells(i)).collect::<Result<_, _>>()?;
    Ok((0..section.batch.num_rows()).map(|r| columns.iter().map(|c| c[r].clone()).collect()).collect())
}

/// The totals row with its label under the first column that is not summed.
pub fn labelled_totals(section: &SectionData, lang: Language) -> Option<Vec<Cell>> {
    let mut totals = section.totals.clone()?;
    if let Some(i) = section.section.columns.iter().position(|c| !c.format.is_summed()) {
        totals[i] = Cell::Text(totals_label(lang).to_string());
    }
    Some(totals)
}

/// CSV: per section (when there are several) its title, then the header, rows and totals; a
/// blank line between sections.
pub fn csv(data: &ReportData, lang: Language, options: CsvOptions) -> Result<Vec<u8>, String> {
    let mut out: Vec<u8> = if options.bom { vec![0xEF, 0xBB, 0xBF] } else { vec![] };
    let several = data.sections.len() > 1;
    for (i, section) in data.sections.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        let mut w = csv::WriterBuilder::new()
            .delimiter(if options.semicolon { b';' } else { b',' })
            .flexible(true)
            .terminator(csv::Terminator::CRLF)
            .from_writer(vec![]);
        let e = |e: csv::Error| e.to_string();
        if several {
            w.write_record([pick(&section.section.title, lang)]).map_err(e)?;
        }
        w.write_record(section.section.columns.iter().map(|c| pick(&c.title, lang))).map_err(e)?;
        let mut all = rows(section)?;
        all.extend(labelled_totals(section, lang));
        for row in all {
            w.write_record(row.iter().map(|c| c.text(options.semicolon))).map_err(e)?;
        }
        out.extend(w.into_inner().map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn json_cell(c: &Cell) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Text(s) | Cell::Decimal(s) => Value::String(s.clone()),
        Cell::Int(i) => json!(i),
        Cell::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Cell::Date(d) => Value::String(d.format("%Y-%m-%d").to_string()),
    }
}

/// JSON: the report, its period and filters, and each section's columns, rows (objects keyed
/// by column) and totals. Money is an exact decimal string, as in the API.
pub fn json(data: &ReportData) -> Result<Vec<u8>, String> {
    let mut sections = vec![];
    for section in &data.sections {
        let names: Vec<&str> = section.section.columns.iter().map(|c| c.name.as_str()).collect();
        let object = |row: &[Cell]| -> Value {
            let mut m = Map::new();
            for (n, c) in names.iter().zip(row) {
                m.insert(n.to_string(), json_cell(c));
            }
            Value::Object(m)
        };
        let rows: Vec<Value> = rows(section)?.iter().map(|r| object(r)).collect();
        sections.push(json!({
            "id": section.section.id,
            "title": section.section.title,
            "columns": section.section.columns,
            "rows": rows,
            "totals": section.totals.as_deref().map(object),
        }));
    }
    let doc = json!({
        "report": data.report,
        "title": data.title,
        "period": {
            "kind": data.period.kind,
            "label": data.period.label(),
            "start": data.period.start.to_string(),
            "end": data.period.end.to_string(),
        },
        "reference_date": data.reference_date.map(|d| d.to_string()),
        "filters": { "holding": data.filters.holding, "branch": data.filters.branch, "manager": data.filters.manager },
        "branch": data.branch,
        "sections": sections,
    });
    let mut out = serde_json::to_vec_pretty(&doc).map_err(|e| e.to_string())?;
    out.push(b'\n');
    Ok(out)
}

/// Parquet: one table of every section's rows, `section` first, then the columns of all
/// sections (a column two sections share with the same type is one column; with different
/// types the later is named `section.column`); a section's rows are null in the others'
/// columns. Totals are left out (a reader sums). The writer's `created_by` is fixed.
pub fn parquet(data: &ReportData) -> Result<Vec<u8>, String> {
    let mut fields: Vec<Field> = vec![Field::new("section", DataType::Utf8, false)];
    // For each section, the union column index of each of its columns.
    let mut placement: Vec<Vec<usize>> = vec![];
    for section in &data.sections {
        let schema = section.batch.schema();
        let mut at = vec![];
        for f in schema.fields() {
            let same = fields.iter().position(|u| u.name() == f.name() && u.data_type() == f.data_type());
            let i = match same {
                Some(i) => i,
                None => {
                    let name = if fields.iter().any(|u| u.name() == f.name()) {
                        format!("{}.{}", section.section.id, f.name())
                    } else {
                        f.name().clone()
                    };
                    fields.push(Field::new(name, f.data_type().clone(), true));
                    fields.len() - 1
                }
            };
            at.push(i);
        }
        placement.push(at);
    }
    let schema = Arc::new(Schema::new(fields));
    let props = WriterProperties::builder().set_created_by("dealhouse".to_string()).build();
    let mut buf = vec![];
    let mut w = ArrowWriter::try_new(&mut buf, schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    for (section, at) in data.sections.iter().zip(&placement) {
        let n = section.batch.num_rows();
        let mut columns: Vec<ArrayRef> = schema.fields().iter().map(|f| new_null_array(f.data_type(), n)).collect();
        columns[0] = Arc::new(StringArray::from(vec![section.section.id.as_str(); n]));
        for (c, i) in section.batch.columns().iter().zip(at) {
            columns[*i] = cast(c, schema.field(*i).data_type()).map_err(|e| e.to_string())?;
        }
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
        w.write(&batch).map_err(|e| e.to_string())?;
    }
    w.close().map_err(|e| e.to_string())?;
    Ok(buf)
}
