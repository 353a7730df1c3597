//! How a file row becomes a record for a canonical table: `columns` specs (header, template,
//! constant), checked against a file's headers for every table the source fills, then
//! resolved to cell positions.

use super::config::FileTableMapping;
use dealhouse_warehouse::schema::canonical_table;

use crate::mapping::{MappingOptions, RawValue, Record};
use crate::{Error, Result};

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

/// One canonical table a file source fills: its column specs and how its values are read.
pub(super) struct TableMapping {
    /// Canonical table.
    pub table: &'static str,
    /// Canonical column -> spec.
    pub specs: Vec<(String, ColumnSpec)>,
    /// Value maps, time zone, number and date forms.
    pub options: MappingOptions,
    /// The config section holding `specs`, for messages: `[sources.x.columns]`.
    pub section: String,
}

impl TableMapping {
    /// Parses one table's `columns`; `options` carries what the source's tables share.
    pub fn new(source: &str, mapping: &FileTableMapping<'_>, options: &MappingOptions) -> Result<Self> {
        let config_error = |message: String| Error::Config { source_name: source.to_string(), message };
        let table = canonical_table(mapping.table)
            .ok_or_else(|| config_error(format!("table `{}` is not a canonical table", mapping.table)))?
            .name;
        let section = format!("[{}.columns]", mapping.section(source));
        let specs = mapping
            .columns
            .iter()
            .map(|(column, spec)| {
                ColumnSpec::parse(spec)
                    .map(|s| (column.clone(), s))
                    .map_err(|e| config_error(format!("{section} {column}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let options = MappingOptions {
            values: mapping.values.clone(),
            columns_hint: section.clone(),
            values_section: Some(mapping.section(source)),
            ..options.clone()
        };
        Ok(Self { table, specs, options, section })
    }
}

/// Every header some table maps that `headers` lacks, with the section that maps it; empty
/// when the file has them all.
pub(super) fn missing_headers<'a>(tables: &'a [TableMapping], headers: &[String]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut missing: Vec<(&str, Vec<&str>)> = vec![];
    for t in tables {
        let mut names: Vec<&str> = vec![];
        for h in t.specs.iter().flat_map(|(_, spec)| spec.headers()) {
            if !headers.iter().any(|x| x == h) && !names.contains(&h) {
                names.push(h);
            }
        }
        if !names.is_empty() {
            missing.push((t.section.as_str(), names));
        }
    }
    missing
}

/// A column spec with headers resolved to cell positions.
enum Resolved {
    Constant(String),
    Cell(usize),
    Template(Vec<std::result::Result<usize, String>>),
}

/// One table's specs resolved against a file's headers: makes a record of each row.
pub(super) struct Plan(Vec<(String, Resolved)>);

impl Plan {
    /// Resolves `table`'s specs; every header they name must be in `headers` (checked by
    /// [`missing_headers`] first).
    pub fn new(table: &TableMapping, headers: &[String]) -> Self {
        let position = |h: &str| headers.iter().position(|x| x == h).unwrap_or(0);
        Plan(
            table
                .specs
                .iter()
                .map(|(column, spec)| {
                    let resolved = match spec {
                        ColumnSpec::Constant(c) => Resolved::Constant(c.clone()),
                        ColumnSpec::Header(h) => Resolved::Cell(position(h)),
                        ColumnSpec::Template(parts) => Resolved::Template(
                            parts
                                .iter()
                                .map(|p| match p {
                                    TemplatePart::Text(t) => Err(t.clone()),
                                    TemplatePart::Header(h) => Ok(position(h)),
                                })
                                .collect(),
                        ),
                    };
                    (column.clone(), resolved)
                })
                .collect(),
        )
    }

    /// The record of a row whose cells line up with the headers.
    pub fn record(&self, cells: &[RawValue]) -> Record {
        let cell = |i: usize| cells.get(i).cloned().unwrap_or(RawValue::Null);
        let mut record = Record::new();
        for (column, resolved) in &self.0 {
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
        record
    }
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

    #[test]
    fn files_missing_headers_are_named_per_table() {
        let table = |section: &str, specs: &[(&str, &str)]| TableMapping {
            table: "managers",
            specs: specs.iter().map(|(c, s)| (c.to_string(), ColumnSpec::parse(s).unwrap())).collect(),
            options: MappingOptions::default(),
            section: section.into(),
        };
        let tables = [
            table("[m]", &[("source_id", "agent"), ("name", "{agent} ({team})"), ("active", "=true")]),
            table("[b]", &[("source_id", "office"), ("name", "office"), ("city", "town")]),
        ];
        let headers: Vec<String> = ["agent", "office"].map(String::from).to_vec();
        assert_eq!(missing_headers(&tables, &headers), vec![("[m]", vec!["team"]), ("[b]", vec!["town"])]);
        let headers: Vec<String> = ["town", "team", "office", "agent"].map(String::from).to_vec();
        assert!(missing_headers(&tables, &headers).is_empty());
        let plan = Plan::new(&tables[0], &headers);
        let cells = ["Utrecht", "", "Central", "Zane"].map(|s| RawValue::Text(s.into()));
        let record = plan.record(&cells);
        assert_eq!(record.get("source_id"), Some(&RawValue::Text("Zane".into())));
        assert_eq!(record.get("name"), Some(&RawValue::Text("Zane ()".into())));
        assert_eq!(record.get("active"), Some(&RawValue::Text("true".into())));
    }
}
