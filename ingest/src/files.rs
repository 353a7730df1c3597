//! File sources: CSV (1C and spreadsheet exports) and XLSX workbooks, one file mapped onto one
//! canonical table by `[sources.<name>.columns]` and `[sources.<name>.values]`.
//!
//! A file is all or nothing at the file level: a wrong encoding or a mapped header that is not
//! there refuses the whole file ([`Error::File`]) before anything is written; bad values only
//! quarantine their row. A file already loaded with the same bytes and the same mapping is
//! skipped: the cursor is the SHA-256 of the file plus a fingerprint of the mapping, carried by
//! the last chunk only, so a crash mid-file reads it again.

use std::io::Cursor;
use std::path::PathBuf;

use calamine::{Data, Reader, Xlsx};
use dealhouse_warehouse::config::FileConfig;
use dealhouse_warehouse::schema::canonical_table;
use encoding_rs::{Encoding, UTF_8, WINDOWS_1251};
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::mapping::{
    CHUNK_ROWS, ChunkSink, Mapper, MappingOptions, RawValue, Record, blocking_chunks, parse_time_zone,
};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};

/// File format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// Delimited text.
    Csv,
    /// Excel workbook.
    Xlsx,
}

/// How one canonical column is filled from a file row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSpec {
    /// `"=contract_signed"`: the same text in every row.
    Constant(String),
    /// `"Сумма"`: the cell under that header, with its type (number, date, text).
    Header(String),
    /// `"crm:{Сделка CRM}"`: text with cells spliced in (an empty cell as empty text); empty
    /// when every referenced cell is.
    Template(Vec<TemplatePart>),
}

/// A piece of a [`ColumnSpec::Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Literal text.
    Text(String),
    /// The cell under this header.
    Header(String),
}

impl ColumnSpec {
    /// Reads a `columns` value: `=` starts a constant, `{Header}` makes a template, anything
    /// else is a header name.
    pub fn parse(spec: &str) -> std::result::Result<Self, String> {
        if let Some(constant) = spec.strip_prefix('=') {
            return Ok(ColumnSpec::Constant(constant.to_string()));
        }
        if !spec.contains(['{', '}']) {
            return Ok(ColumnSpec::Header(spec.trim().to_string()));
        }
        let mut parts = vec![];
        let mut rest = spec;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("`{spec}` has a `}}` without its `{{`"));
            }
            let close = rest[open..]
                .find('}')
                .map(|i| open + i)
                .ok_or_else(|| format!("`{spec}` has a `{{` without its `}}`"))?;
            let header = rest[open + 1..close].trim();
            if header.is_empty() || header.contains('{') {
                return Err(format!("`{spec}` has an empty or nested `{{}}`"));
            }
            if open > 0 {
                parts.push(TemplatePart::Text(rest[..open].to_string()));
            }
            parts.push(TemplatePart::Header(header.to_string()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(TemplatePart::Text(rest.to_string()));
        }
        Ok(match parts.as_slice() {
            // `{Сумма}` alone is the cell itself, keeping its type.
            [TemplatePart::Header(h)] => ColumnSpec::Header(h.clone()),
            _ => ColumnSpec::Template(parts),
        })
    }

    fn headers(&self) -> Vec<&str> {
        match self {
            ColumnSpec::Constant(_) => vec![],
            ColumnSpec::Header(h) => vec![h.as_str()],
            ColumnSpec::Template(parts) => parts
                .iter()
                .filter_map(|p| if let TemplatePart::Header(h) = p { Some(h.as_str()) } else { None })
                .collect(),
        }
    }
}

/// A column spec with headers resolved to cell positions.
enum Resolved {
    Constant(String),
    Cell(usize),
    Template(Vec<Result<usize, String>>),
}

/// One file mapped onto one canonical table.
pub struct FileSource {
    ctx: SourceContext,
    config: FileConfig,
    kind: FileKind,
    table: &'static str,
    path: PathBuf,
    specs: Vec<(String, ColumnSpec)>,
    options: MappingOptions,
    mapping_fingerprint: String,
}

impl FileSource {
    /// Builds the source.
    pub fn new(ctx: SourceContext, config: FileConfig, kind: FileKind) -> Result<Self> {
        let name = ctx.source_name.clone();
        let config_error = |message: String| Error::Config { source_name: name.clone(), message };
        let table = canonical_table(&config.table)
            .ok_or_else(|| config_error(format!("table `{}` is not a canonical table", config.table)))?
            .name;
        let specs = config
            .columns
            .iter()
            .map(|(column, spec)| {
                ColumnSpec::parse(spec)
                    .map(|s| (column.clone(), s))
                    .map_err(|e| config_error(format!("[sources.{name}.columns] {column}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(label) = &config.encoding
            && Encoding::for_label(label.trim().as_bytes()).is_none()
        {
            return Err(config_error(format!("encoding `{label}` is unknown; use \"utf-8\" or \"windows-1251\"")));
        }
        let options = MappingOptions {
            time_zone: parse_time_zone(&name, config.time_zone.as_deref())?,
            decimal_comma: config.decimal_comma,
            date_format: config.date_format.clone(),
            values: config.values.clone(),
            columns_hint: format!("[sources.{name}.columns]"),
        };
        let path = ctx.project.path(&config.path);
        let mapping_fingerprint = mapping_fingerprint(&ctx, &config);
        Ok(Self { ctx, config, kind, table, path, specs, options, mapping_fingerprint })
    }
}

#[async_trait::async_trait]
impl Source for FileSource {
    async fn check(&self) -> Result<()> {
        match tokio::fs::metadata(&self.path).await {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(Error::Config {
                source_name: self.ctx.source_name.clone(),
                message: format!(
                    "file {} does not exist; fix [sources.{}].path (relative to the project directory)",
                    self.path.display(),
                    self.ctx.source_name
                ),
            }),
        }
    }

    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        Ok(vec![StreamInfo { table: self.table, estimated_rows: None }])
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        if table != self.table {
            let e = Error::Config {
                source_name: self.ctx.source_name.clone(),
                message: format!("this source fills `{}`, not `{table}`", self.table),
            };
            return Box::pin(futures::stream::once(async { Err(e) }));
        }
        let mapper = match Mapper::new(self.ctx.project.clone(), &self.ctx.source_name, table, self.options.clone()) {
            Ok(m) => m,
            Err(e) => return Box::pin(futures::stream::once(async { Err(e) })),
        };
        let job = FileJob {
            source_name: self.ctx.source_name.clone(),
            path: self.path.clone(),
            shown_path: self.config.path.display().to_string(),
            kind: self.kind,
            config: self.config.clone(),
            specs: self.specs.clone(),
            mapper,
            mapping_fingerprint: self.mapping_fingerprint.clone(),
        };
        blocking_chunks(self.ctx.source_name.clone(), move |sink| job.run(cursor, sink))
    }
}

/// Everything one read of the file needs, moved to the blocking pool.
struct FileJob {
    source_name: String,
    path: PathBuf,
    /// The path as configured, for quarantine locations (`exports/deals.csv:41`).
    shown_path: String,
    kind: FileKind,
    config: FileConfig,
    specs: Vec<(String, ColumnSpec)>,
    mapper: Mapper,
    mapping_fingerprint: String,
}

impl FileJob {
    fn refuse(&self, message: String) -> Error {
        Error::File { path: self.path.clone(), message: format!("{message}; nothing of this file was loaded") }
    }

    fn run(self, cursor: Option<String>, sink: &ChunkSink) -> Result<()> {
        let bytes = std::fs::read(&self.path).map_err(|e| Error::File {
            path: self.path.clone(),
            message: format!("cannot read it ({e}); check [sources.{}].path", self.source_name),
        })?;
        let hash = format!("{}.{}", hex::encode(Sha256::digest(&bytes)), self.mapping_fingerprint);
        if cursor.as_deref() == Some(hash.as_str()) {
            debug!(source = %self.source_name, path = %self.path.display(), "file unchanged since the last sync; skipped");
            return Ok(());
        }
        match self.kind {
            FileKind::Csv => {
                let text = self.decode(&bytes)?;
                drop(bytes);
                self.read_csv(&text, hash, sink)
            }
            FileKind::Xlsx => self.read_xlsx(bytes, hash, sink),
        }
    }

    /// The file's text: the configured encoding, or (none configured) UTF-8 when it is valid,
    /// else windows-1251, the usual encoding of 1C and Russian Excel exports.
    fn decode(&self, bytes: &[u8]) -> Result<String> {
        let configured = match &self.config.encoding {
            Some(label) => Some(Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
                self.refuse(format!("encoding `{label}` is unknown; use \"utf-8\" or \"windows-1251\""))
            })?),
            None => None,
        };
        let encoding = match configured {
            Some(e) => e,
            None => match Encoding::for_bom(bytes) {
                Some((e, _)) => e,
                None if std::str::from_utf8(bytes).is_ok() => UTF_8,
                None => WINDOWS_1251,
            },
        };
        if encoding == UTF_8 {
            let bom = if bytes.starts_with(b"\xEF\xBB\xBF") { 3 } else { 0 };
            return match std::str::from_utf8(&bytes[bom..]) {
                Ok(s) => Ok(s.to_string()),
                Err(e) => {
                    let offset = bom + e.valid_up_to();
                    let line = bytes[..offset].iter().filter(|b| **b == b'\n').count() + 1;
                    Err(self.refuse(format!(
                        "not valid UTF-8 at line {line} (byte offset {offset}); if it is a 1C or Excel export in \
                         Cyrillic, set encoding = \"windows-1251\" in [sources.{}]",
                        self.source_name
                    )))
                }
            };
        }
        let bom = Encoding::for_bom(bytes).filter(|(e, _)| *e == encoding).map_or(0, |(_, len)| len);
        encoding
            .decode_without_bom_handling_and_without_replacement(&bytes[bom..])
            .map(|text| text.into_owned())
            .ok_or_else(|| {
                self.refuse(format!(
                    "is not valid {}; set [sources.{}].encoding to the file's encoding",
                    encoding.name(),
                    self.source_name
                ))
            })
    }

    fn read_csv(mut self, text: &str, hash: String, sink: &ChunkSink) -> Result<()> {
        let delimiter = self.config.delimiter.unwrap_or(',');
        let delimiter = u8::try_from(u32::from(delimiter))
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| self.refuse(format!("delimiter `{delimiter}` is not a single ASCII character")))?;
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let headers: Vec<String> = match records.next() {
            Some(Ok(r)) => r.iter().map(|h| h.trim().to_string()).collect(),
            Some(Err(e)) => return Err(self.refuse(format!("the header line cannot be read: {e}"))),
            None => return Err(self.refuse("the file is empty; expected a header line".into())),
        };
        let plan = self.resolve(&headers)?;
        for record in records {
            let record = record.map_err(|e| self.refuse(format!("cannot be parsed as CSV: {e}")))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let cells: Vec<RawValue> = record.iter().map(|f| RawValue::Text(f.to_string())).collect();
            let location = format!("{}:{line}", self.shown_path);
            if cells.len() != headers.len() {
                let raw = raw_record(&headers, &cells).to_json();
                let reason = format!(
                    "the row has {} fields but the header has {}; check quoting and the delimiter (`{}`)",
                    cells.len(),
                    headers.len(),
                    delimiter as char
                );
                self.mapper.quarantine(&location, raw, reason);
            } else {
                self.push_row(&plan, &headers, &cells, &location);
            }
            if self.mapper.pending() >= CHUNK_ROWS && !sink.flush(&mut self.mapper, None)? {
                return Ok(());
            }
        }
        sink.flush(&mut self.mapper, Some(hash))?;
        Ok(())
    }

    fn read_xlsx(mut self, bytes: Vec<u8>, hash: String, sink: &ChunkSink) -> Result<()> {
        let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
            .map_err(|e| self.refuse(format!("is not a readable XLSX workbook: {e}")))?;
        let sheets = workbook.sheet_names();
        let sheet = match &self.config.sheet {
            Some(name) if sheets.contains(name) => name.clone(),
            Some(name) => {
                return Err(self.refuse(format!(
                    "has no sheet `{name}`; its sheets are: {}; fix [sources.{}].sheet",
                    quoted(&sheets),
                    self.source_name
                )));
            }
            None => sheets.first().cloned().ok_or_else(|| self.refuse("the workbook has no sheets".into()))?,
        };
        let range = workbook
            .worksheet_range(&sheet)
            .map_err(|e| self.refuse(format!("sheet `{sheet}` cannot be read: {e}")))?;
        let first_row = range.start().map_or(0, |(row, _)| row as usize);
        let mut rows = range.rows();
        let headers: Vec<String> = match rows.next() {
            Some(row) => row.iter().map(|c| cell_value(c).to_text().unwrap_or_default()).collect(),
            None => return Err(self.refuse(format!("sheet `{sheet}` is empty; expected a header row"))),
        };
        let plan = self.resolve(&headers)?;
        for (i, row) in rows.enumerate() {
            let cells: Vec<RawValue> = row.iter().map(cell_value).collect();
            if cells.iter().all(RawValue::is_empty) {
                continue;
            }
            // Excel row numbers are 1-based and the header is the range's first row.
            let location = format!("{}:{}", self.shown_path, first_row + i + 2);
            self.push_row(&plan, &headers, &cells, &location);
            if self.mapper.pending() >= CHUNK_ROWS && !sink.flush(&mut self.mapper, None)? {
                return Ok(());
            }
        }
        sink.flush(&mut self.mapper, Some(hash))?;
        Ok(())
    }

    /// Finds every mapped header, or refuses the file naming the missing ones.
    fn resolve(&self, headers: &[String]) -> Result<Vec<(String, Resolved)>> {
        let position = |h: &str| headers.iter().position(|x| x == h);
        let mut missing: Vec<&str> = vec![];
        for (_, spec) in &self.specs {
            for h in spec.headers() {
                if position(h).is_none() && !missing.contains(&h) {
                    missing.push(h);
                }
            }
        }
        if !missing.is_empty() {
            return Err(self.refuse(format!(
                "missing column{} {} mapped in [sources.{}.columns]; the header (line 1) has: {}; fix the mapping \
                 or the export",
                if missing.len() > 1 { "s" } else { "" },
                quoted(&missing),
                self.source_name,
                quoted(headers)
            )));
        }
        Ok(self
            .specs
            .iter()
            .map(|(column, spec)| {
                let resolved = match spec {
                    ColumnSpec::Constant(c) => Resolved::Constant(c.clone()),
                    ColumnSpec::Header(h) => Resolved::Cell(position(h).unwrap_or(0)),
                    ColumnSpec::Template(parts) => Resolved::Template(
                        parts
                            .iter()
                            .map(|p| match p {
                                TemplatePart::Text(t) => Err(t.clone()),
                                TemplatePart::Header(h) => Ok(position(h).unwrap_or(0)),
                            })
                            .collect(),
                    ),
                };
                (column.clone(), resolved)
            })
            .collect())
    }

    fn push_row(&mut self, plan: &[(String, Resolved)], headers: &[String], cells: &[RawValue], location: &str) {
        let cell = |i: usize| cells.get(i).cloned().unwrap_or(RawValue::Null);
        let mut record = Record::new();
        for (column, resolved) in plan {
            let value = match resolved {
                Resolved::Constant(c) => RawValue::Text(c.clone()),
                Resolved::Cell(i) => cell(*i),
                Resolved::Template(parts) => {
                    let mut text = String::new();
                    let mut any = false;
                    for part in parts {
                        match part {
                            Err(literal) => text.push_str(literal),
                            Ok(i) => {
                                if let Some(t) = cell(*i).to_text() {
                                    text.push_str(&t);
                                    any = true;
                                }
                            }
                        }
                    }
                    // `crm:` with no deal number is no id at all; `2025-01/msk/` (no manager) is one.
                    if any { RawValue::Text(text) } else { RawValue::Null }
                }
            };
            record.push(column.clone(), value);
        }
        self.mapper.push(&record, location, &raw_record(headers, cells));
    }
}

/// What, besides the bytes, decides how the file maps: this source's config and the branch
/// codes it uses. Part of the cursor, so fixing a mapping (the fix a quarantine reason asks
/// for) re-reads an unchanged file instead of skipping it.
fn mapping_fingerprint(ctx: &SourceContext, config: &FileConfig) -> String {
    let codes: Vec<(&str, Option<&String>)> = ctx
        .project
        .config
        .organisation
        .branches
        .iter()
        .map(|b| b.get_ref())
        .map(|b| (b.id.as_str(), b.codes.get(&ctx.source_name)))
        .collect();
    let digest = Sha256::digest(format!("{config:?}|{codes:?}").as_bytes());
    hex::encode(&digest[..8])
}

/// The row as the file has it, header -> cell (extra cells get their position as name).
fn raw_record(headers: &[String], cells: &[RawValue]) -> Record {
    let mut record = Record::new();
    for (i, cell) in cells.iter().enumerate() {
        let name = headers.get(i).cloned().unwrap_or_else(|| format!("#{}", i + 1));
        record.push(name, cell.clone());
    }
    record
}

fn cell_value(cell: &Data) -> RawValue {
    match cell {
        Data::Empty => RawValue::Null,
        Data::Int(i) => RawValue::Int(*i),
        Data::Float(f) => RawValue::Float(*f),
        Data::String(s) => RawValue::Text(s.clone()),
        Data::Bool(b) => RawValue::Bool(*b),
        Data::DateTime(dt) if dt.is_datetime() => match dt.as_datetime() {
            Some(t) => RawValue::DateTime(t),
            None => RawValue::Invalid(format!("an Excel date out of range ({})", dt.as_f64())),
        },
        Data::DateTime(dt) => RawValue::Invalid(format!("a duration ({} days), not a date", dt.as_f64())),
        Data::DateTimeIso(s) | Data::DurationIso(s) => RawValue::Text(s.clone()),
        Data::Error(e) => RawValue::Invalid(format!("the spreadsheet error {e}")),
    }
}

fn quoted<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|n| format!("`{}`", n.as_ref())).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_column_specs() {
        let h = |s: &str| TemplatePart::Header(s.into());
        let t = |s: &str| TemplatePart::Text(s.into());
        assert_eq!(ColumnSpec::parse("=contract_signed"), Ok(ColumnSpec::Constant("contract_signed".into())));
        assert_eq!(ColumnSpec::parse("Сумма "), Ok(ColumnSpec::Header("Сумма".into())));
        assert_eq!(ColumnSpec::parse("{Сумма}"), Ok(ColumnSpec::Header("Сумма".into())));
        assert_eq!(ColumnSpec::parse("crm:{Сделка CRM}"), Ok(ColumnSpec::Template(vec![t("crm:"), h("Сделка CRM")])));
        assert_eq!(
            ColumnSpec::parse("{Месяц}/{ID менеджера}"),
            Ok(ColumnSpec::Template(vec![h("Месяц"), t("/"), h("ID менеджера")]))
        );
        assert!(ColumnSpec::parse("crm:{Сделка").is_err());
        assert!(ColumnSpec::parse("crm:}x").is_err());
        assert!(ColumnSpec::parse("a{}b").is_err());
    }
}
