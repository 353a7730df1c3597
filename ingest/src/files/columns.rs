//! How a file row becomes a record for a canonical table: `columns` specs (the grammar is
//! [`crate::column_specs`]) and the `where` filter, checked against a file's headers for every
//! table the source fills, then resolved to cell positions.

use super::config::FileTableMapping;
use dealhouse_warehouse::schema::canonical_table;

use crate::column_specs::{ColumnRule, RowFilter};
use crate::mapping::{MappingOptions, RawValue, Record};
use crate::{Error, Result};

/// One canonical table a file source fills: its column specs, its row filter and how its
/// values are read.
pub(super) struct TableMapping {
    /// Canonical table.
    pub table: &'static str,
    /// Canonical column -> its specs, tried in order.
    pub specs: Vec<(String, ColumnRule)>,
    /// `where`: the rows this table takes (all when empty).
    pub filter: RowFilter,
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
                ColumnRule::parse(spec)
                    .map(|s| (column.clone(), s))
                    .map_err(|e| config_error(format!("{section} {column}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        // Reasons about an empty required column name the fallbacks it tried.
        let alternatives = mapping
            .columns
            .iter()
            .filter(|(_, spec)| spec.alternatives().len() > 1)
            .map(|(column, spec)| (column.clone(), spec.shown()))
            .collect();
        let options = MappingOptions {
            values: mapping.values.clone(),
            columns_hint: section.clone(),
            values_section: Some(mapping.section(source)),
            alternatives,
            ..options.clone()
        };
        Ok(Self { table, specs, filter: RowFilter::new(mapping.filter), options, section })
    }
}

/// Every header some table maps or filters on that `headers` lacks, with the section that
/// names it; empty when the file has them all.
pub(super) fn missing_headers<'a>(tables: &'a [TableMapping], headers: &[String]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut missing: Vec<(&str, Vec<&str>)> = vec![];
    for t in tables {
        let mut names: Vec<&str> = vec![];
        let named = t.specs.iter().flat_map(|(_, rule)| rule.headers()).chain(t.filter.headers());
        for h in named.map(String::as_str) {
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

/// One table's specs and filter resolved against a file's headers: makes a record of each row
/// it takes.
pub(super) struct Plan {
    columns: Vec<(String, ColumnRule<usize>)>,
    filter: RowFilter<usize>,
}

impl Plan {
    /// Resolves `table`'s specs and filter; every header they name must be in `headers`
    /// (checked by [`missing_headers`] first).
    pub fn new(table: &TableMapping, headers: &[String]) -> Self {
        let position = |h: &String| headers.iter().position(|x| x == h).unwrap_or(0);
        Plan {
            columns: table.specs.iter().map(|(column, rule)| (column.clone(), rule.resolve(&position))).collect(),
            filter: table.filter.resolve(&position),
        }
    }

    /// True when the table takes the row (its `where` filter accepts it).
    pub fn takes(&self, cells: &[RawValue]) -> bool {
        self.filter.accepts(&|i: &usize| cells.get(*i).cloned().unwrap_or(RawValue::Null))
    }

    /// The record of a row whose cells line up with the headers.
    pub fn record(&self, cells: &[RawValue]) -> Record {
        let cell = |i: &usize| cells.get(*i).cloned().unwrap_or(RawValue::Null);
        let mut record = Record::new();
        for (column, rule) in &self.columns {
            record.push(column.clone(), rule.value(&cell));
        }
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::column_specs::SpecText;

    #[test]
    fn files_missing_headers_are_named_per_table() {
        let table = |section: &str, specs: &[(&str, &str)], filter: &[(&str, &str)]| TableMapping {
            table: "managers",
            specs: specs.iter().map(|(c, s)| (c.to_string(), ColumnRule::parse(&SpecText::one(*s)).unwrap())).collect(),
            filter: RowFilter(filter.iter().map(|(c, v)| (c.to_string(), vec![v.to_string()])).collect()),
            options: MappingOptions::default(),
            section: section.into(),
        };
        let tables = [
            table("[m]", &[("source_id", "agent"), ("name", "{agent} ({team})"), ("active", "=true")], &[]),
            table("[b]", &[("source_id", "office"), ("name", "office"), ("city", "town")], &[("kind", "office")]),
        ];
        let headers: Vec<String> = ["agent", "office"].map(String::from).to_vec();
        assert_eq!(missing_headers(&tables, &headers), vec![("[m]", vec!["team"]), ("[b]", vec!["town", "kind"])]);
        let headers: Vec<String> = ["town", "team", "office", "agent", "kind"].map(String::from).to_vec();
        assert!(missing_headers(&tables, &headers).is_empty());
        let plan = Plan::new(&tables[0], &headers);
        let cells = ["Utrecht", "", "Central", "Zane", "person"].map(|s| RawValue::Text(s.into()));
        let record = plan.record(&cells);
        assert_eq!(record.get("source_id"), Some(&RawValue::Text("Zane".into())));
        assert_eq!(record.get("name"), Some(&RawValue::Text("Zane ()".into())));
        assert_eq!(record.get("active"), Some(&RawValue::Text("true".into())));
        assert!(plan.takes(&cells));
        let offices = Plan::new(&tables[1], &headers);
        assert!(!offices.takes(&cells), "kind is `person`, the table takes `office` rows only");
    }
}
