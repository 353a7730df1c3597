//! Reading one file's rows: CSV (encodings, delimiters), XLSX (typed cells) and JSON Lines
//! (one object per line, numbers read exactly from their text).
//!
//! Every format checks the whole file's shape (encoding, the headers every table maps) before
//! its first row is pushed, so a refused file writes nothing.

use std::io::Cursor;

use super::config::FileConfig;
use calamine::{Data, Reader, Xlsx};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1251};
use rust_decimal::Decimal;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue as JsonText;

use super::FileKind;
use super::columns::{Plan, TableMapping, missing_headers};
use super::location::ListedFile;
use crate::mapping::{CHUNK_ROWS, ChunkSink, RawValue, Record, RecordMapper};
use crate::{Error, Result};

/// Line numbers as an editor shows them, from the byte offsets where the csv reader says its
/// records start. The reader's own line count is off for CRLF files and after blank lines: a
/// record ends at the `\r` of its CRLF, so the `\n` (and any blank lines) are read with the next
/// record, after its position was taken. Its byte offset has the same lag, so the record's first
/// byte is found past those line breaks. Offsets only grow, so each byte is scanned once.
#[derive(Default)]
struct LineCounter {
    /// Bytes scanned so far.
    scanned: usize,
    /// Newlines in them.
    newlines: usize,
}

impl LineCounter {
    /// The 1-based line of the record the reader places at byte `offset` of `text`.
    fn line_at(&mut self, text: &[u8], offset: u64) -> usize {
        let mut start = usize::try_from(offset).unwrap_or(usize::MAX).min(text.len());
        while start < text.len() && matches!(text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.scanned {
            self.newlines += text[self.scanned..start].iter().filter(|b| **b == b'\n').count();
            self.scanned = start;
        }
        self.newlines + 1
    }
}

/// One file being read into one table's mapper.
pub(super) struct FileReader<'a> {
    pub source_name: &'a str,
    pub config: &'a FileConfig,
    pub file: &'a ListedFile,
    /// Every table of the source: a file must have the headers of all of them.
    pub tables: &'a [TableMapping],
    /// The table being read now.
    pub target: &'a TableMapping,
    pub mapper: &'a mut RecordMapper,
    pub sink: &'a ChunkSink,
}

/// A JSON Lines line as read: its 1-based number, its text, and its values by column (or why
/// the line is not a record).
type JsonLine<'t> = (usize, &'t str, std::result::Result<Vec<(usize, RawValue)>, String>);

impl FileReader<'_> {
    /// Pushes the file's rows into the mapper, sending full chunks on (without a cursor).
    /// False when the sync stopped reading.
    pub fn read(&mut self, kind: FileKind, bytes: Vec<u8>) -> Result<bool> {
        match kind {
            FileKind::Csv => {
                let text = self.decode(&bytes, kind)?;
                drop(bytes);
                self.read_csv(&text)
            }
            FileKind::Jsonl => {
                let text = self.decode(&bytes, kind)?;
                drop(bytes);
                self.read_jsonl(&text)
            }
            FileKind::Xlsx => self.read_xlsx(bytes),
        }
    }

    fn refuse(&self, message: String) -> Error {
        Error::File { path: self.file.display.clone(), message: format!("{message}; nothing of this file was loaded") }
    }

    fn location(&self, line: usize) -> String {
        format!("{}:{line}", self.file.key)
    }

    /// The target table's plan, after checking that `headers` hold every header any table
    /// maps (else the file is refused, naming what is missing and what is there).
    fn plan(&self, headers: &[String], what_is_there: &str) -> Result<Plan> {
        let missing = missing_headers(self.tables, headers);
        if !missing.is_empty() {
            let count: usize = missing.iter().map(|(_, names)| names.len()).sum();
            let names = missing
                .iter()
                .map(|(section, names)| format!("{} mapped in {section}", quoted(names)))
                .collect::<Vec<_>>()
                .join(" and ");
            return Err(self.refuse(format!(
                "missing column{} {names}; {what_is_there}: {}; fix the mapping or the export",
                if count > 1 { "s" } else { "" },
                quoted(headers)
            )));
        }
        Ok(Plan::new(self.target, headers))
    }

    /// Maps one row (or counts it as skipped when the table's `where` does not take it); false
    /// when the sync stopped reading.
    fn row(&mut self, plan: &Plan, cells: &[RawValue], line: usize, raw: impl FnOnce() -> String) -> Result<bool> {
        if !plan.takes(cells) {
            self.mapper.skip();
            return Ok(true);
        }
        let location = self.location(line);
        self.mapper.push_with(&plan.record(cells), &location, raw);
        self.send_full_chunk()
    }

    fn quarantine(&mut self, line: usize, raw: String, reason: String) -> Result<bool> {
        let location = self.location(line);
        self.mapper.quarantine(&location, raw, reason);
        self.send_full_chunk()
    }

    fn send_full_chunk(&mut self) -> Result<bool> {
        if self.mapper.pending() >= CHUNK_ROWS { self.sink.flush(self.mapper, None) } else { Ok(true) }
    }

    /// The file's text: the configured encoding, or (none configured) UTF-8 when it is valid,
    /// else windows-1251, the usual encoding of 1C and Russian Excel exports. JSON Lines is
    /// UTF-8 only.
    fn decode(&self, bytes: &[u8], kind: FileKind) -> Result<String> {
        let configured = match (&self.config.encoding, kind) {
            (_, FileKind::Jsonl) => Some(UTF_8),
            (Some(label), _) => Some(Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
                self.refuse(format!("encoding `{label}` is unknown; use \"utf-8\" or \"windows-1251\""))
            })?),
            (None, _) => None,
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
                    let fix = match kind {
                        FileKind::Jsonl => "JSON Lines files are UTF-8: export it as UTF-8".to_string(),
                        _ => format!(
                            "if it is a 1C or Excel export in Cyrillic, set encoding = \"windows-1251\" in [sources.{}]",
                            self.source_name
                        ),
                    };
                    Err(self.refuse(format!("not valid UTF-8 at line {line} (byte offset {offset}); {fix}")))
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

    fn read_csv(&mut self, text: &str) -> Result<bool> {
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
        let plan = self.plan(&headers, "the header (line 1) has")?;
        let mut lines = LineCounter::default();
        for record in records {
            let record = record.map_err(|e| self.refuse(format!("cannot be parsed as CSV: {e}")))?;
            let line = record.position().map_or(0, |p| lines.line_at(text.as_bytes(), p.byte()));
            if record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let cells: Vec<RawValue> = record.iter().map(|f| RawValue::Text(f.to_string())).collect();
            let going_on = if cells.len() != headers.len() {
                let raw = raw_record(&headers, &cells).to_json();
                let reason = format!(
                    "the row has {} fields but the header has {}; check quoting and the delimiter (`{}`)",
                    cells.len(),
                    headers.len(),
                    delimiter as char
                );
                self.quarantine(line, raw, reason)?
            } else {
                self.row(&plan, &cells, line, || raw_record(&headers, &cells).to_json())?
            };
            if !going_on {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn read_xlsx(&mut self, bytes: Vec<u8>) -> Result<bool> {
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
        let plan = self.plan(&headers, "the header row has")?;
        for (i, row) in rows.enumerate() {
            let cells: Vec<RawValue> = row.iter().map(cell_value).collect();
            if cells.iter().all(RawValue::is_empty) {
                continue;
            }
            // Excel row numbers are 1-based and the header is the range's first row.
            if !self.row(&plan, &cells, first_row + i + 2, || raw_record(&headers, &cells).to_json())? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Two passes: every line is parsed first, so the keys the file holds (its "headers") are
    /// known, and a key that some table maps but no line has refuses the file before any row
    /// is pushed. A key missing from one line is an empty cell of that row.
    fn read_jsonl(&mut self, text: &str) -> Result<bool> {
        let mut headers: Vec<String> = vec![];
        let mut index = std::collections::HashMap::<String, usize>::new();
        let mut lines: Vec<JsonLine<'_>> = vec![];
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let parsed = json_object(line).map(|members| {
                members
                    .into_iter()
                    .map(|(key, value)| {
                        let at = *index.entry(key).or_insert_with_key(|key| {
                            headers.push(key.clone());
                            headers.len() - 1
                        });
                        (at, value)
                    })
                    .collect()
            });
            lines.push((i + 1, line, parsed));
        }
        let plan = if lines.iter().any(|(_, _, parsed)| parsed.is_ok()) {
            Some(self.plan(&headers, "the keys in the file are")?)
        } else {
            None
        };
        for (line, raw, parsed) in lines {
            let going_on = match (parsed, &plan) {
                (Err(reason), _) => self.quarantine(line, raw.to_string(), reason)?,
                (Ok(members), Some(plan)) => {
                    let mut cells = vec![RawValue::Null; headers.len()];
                    // A key given twice: its first value, as a JSON reader keeping one would.
                    for (at, value) in members.into_iter().rev() {
                        cells[at] = value;
                    }
                    self.row(plan, &cells, line, || raw.to_string())?
                }
                // A parsed line means there is a plan.
                (Ok(_), None) => true,
            };
            if !going_on {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A JSON object's members in file order, values still as their JSON text.
struct Members<'a>(Vec<(String, &'a JsonText)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> std::result::Result<Self::Value, M::Error> {
                let mut members = vec![];
                while let Some((key, value)) = map.next_entry::<String, &'de JsonText>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// One JSON Lines line as (key, value) pairs, or why it is not a JSON object.
fn json_object(line: &str) -> std::result::Result<Vec<(String, RawValue)>, String> {
    let members: Members = serde_json::from_str(line).map_err(|e| {
        // serde_json counts lines within the text it was given: one line here.
        let what = e.to_string();
        let what = what.split(" at line ").next().unwrap_or(&what).to_string();
        format!("not a JSON object: {what} at column {}", e.column())
    })?;
    Ok(members.0.into_iter().map(|(key, value)| (key, json_value(value.get()))).collect())
}

/// A JSON value as a raw value: numbers exact from their text (an integer, else a decimal),
/// never through a binary float.
fn json_value(text: &str) -> RawValue {
    match text.as_bytes().first() {
        Some(b'"') => {
            serde_json::from_str::<String>(text).map_or_else(|e| RawValue::Invalid(e.to_string()), RawValue::Text)
        }
        Some(b't') => RawValue::Bool(true),
        Some(b'f') => RawValue::Bool(false),
        Some(b'n') | None => RawValue::Null,
        Some(b'{') => RawValue::Invalid("a JSON object, not a single value".into()),
        Some(b'[') => RawValue::Invalid("a JSON array, not a single value".into()),
        Some(_) => text
            .parse::<i64>()
            .map(RawValue::Int)
            .or_else(|_| Decimal::from_str_exact(text).map(RawValue::Decimal))
            .or_else(|_| Decimal::from_scientific(text).map(RawValue::Decimal))
            .unwrap_or_else(|_| RawValue::Invalid(format!("the number {text}, beyond an exact decimal's 28 digits"))),
    }
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
            // Excel keeps a date as a whole number of days: a cell without a time of day.
            Some(t) if t.time() == chrono::NaiveTime::MIN => RawValue::Date(t.date()),
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
    fn files_json_values_keep_numbers_exact() {
        let d = |s: &str| RawValue::Decimal(Decimal::from_str_exact(s).unwrap());
        assert_eq!(json_value("17"), RawValue::Int(17));
        assert_eq!(json_value("-3"), RawValue::Int(-3));
        assert_eq!(json_value("1234.50"), d("1234.50"));
        // Past f64's 15-17 digits: 9999999999999999.99 as a float would be 1e16.
        assert_eq!(json_value("9999999999999999.99"), d("9999999999999999.99"));
        assert_eq!(json_value("12345678901234567890"), d("12345678901234567890"));
        assert_eq!(json_value("2.5e3"), d("2500"));
        assert_eq!(json_value("\"Москва\\n\""), RawValue::Text("Москва\n".into()));
        assert_eq!((json_value("true"), json_value("null")), (RawValue::Bool(true), RawValue::Null));
        assert!(matches!(json_value("[1]"), RawValue::Invalid(s) if s.contains("array")));
    }

    #[test]
    fn files_json_lines_must_be_objects() {
        let fields = json_object(r#"{"id": 7, "amount": 10.5, "id": 8}"#).unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[1], ("amount".to_string(), RawValue::Decimal(Decimal::new(105, 1))));
        for (line, words) in [
            ("[1, 2]", "invalid type: sequence, expected a JSON object"),
            ("42", "expected a JSON object"),
            (r#"{"id": 7"#, "EOF while parsing an object at column 8"),
            (r#"{"id": 7} {"id": 8}"#, "trailing characters at column 11"),
        ] {
            let e = json_object(line).unwrap_err();
            assert!(e.starts_with("not a JSON object: ") && e.contains(words), "{line}: {e}");
        }
    }
}
