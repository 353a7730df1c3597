//! The column spec grammar shared by file and SQL sources: how one canonical column is filled
//! from a row's cells, and which rows a table takes.
//!
//! A `columns` value is one spec or a list of them tried in order, the first that gives a
//! non-empty value winning (`created_at = ["{engage_date}", "{updated}", "=2020-01-01"]`):
//!
//! - `Сумма` or `{Сумма}`: the cell under that header (a file's header, a JSON Lines key, a
//!   column of a SQL source's query), keeping its type (number, date, text);
//! - `crm:{Сделка CRM}`: text with cells spliced in; empty when every cell it names is empty;
//! - `=contract_signed`: the same text in every row (a constant is never empty, so it ends a
//!   list of fallbacks).
//!
//! A `where` map (column -> accepted values) keeps only the rows whose cell is one of the values;
//! the others are skipped (counted, not quarantined).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, SeqAccess, Visitor};

use crate::mapping::RawValue;

/// How one canonical column is filled from a row, with headers named (`H = String`) or resolved
/// to cell positions (`H = usize`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnSpec<H = String> {
    /// `"=contract_signed"`: the same text in every row.
    Constant(String),
    /// `"Сумма"`: the cell under that header, with its type (number, date, text).
    Header(H),
    /// `"crm:{Сделка CRM}"`: text with cells spliced in (an empty cell as empty text); empty
    /// when every referenced cell is.
    Template(Vec<TemplatePart<H>>),
}

/// A piece of a [`ColumnSpec::Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart<H = String> {
    /// Literal text.
    Text(String),
    /// The cell under this header.
    Header(H),
}

impl ColumnSpec {
    /// Reads a `columns` value: `=` starts a constant, `{Header}` makes a template, anything
    /// else is a header name.
    pub fn parse(spec: &str) -> std::result::Result<Self, String> {
        if let Some(constant) = spec.strip_prefix('=') {
            return Ok(ColumnSpec::Constant(constant.to_string()));
        }
        if spec.trim().is_empty() {
            return Err("empty; give a header name, a `{Header}` template or a `=constant`".into());
        }
        if !spec.contains(['{', '}']) {
            return Ok(ColumnSpec::Header(spec.trim().to_string()));
        }
        let mut parts = vec![];
        let mut rest = spec;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("`{spec}` has a `}}` without its `{{`; write `text {{Header}} text`"));
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
}

impl<H> ColumnSpec<H> {
    /// The headers the spec reads.
    pub fn headers(&self) -> Vec<&H> {
        match self {
            ColumnSpec::Constant(_) => vec![],
            ColumnSpec::Header(h) => vec![h],
            ColumnSpec::Template(parts) => {
                parts.iter().filter_map(|p| if let TemplatePart::Header(h) = p { Some(h) } else { None }).collect()
            }
        }
    }

    /// The same spec with each header replaced by `resolve(header)`.
    pub fn resolve<K>(&self, resolve: &impl Fn(&H) -> K) -> ColumnSpec<K> {
        match self {
            ColumnSpec::Constant(c) => ColumnSpec::Constant(c.clone()),
            ColumnSpec::Header(h) => ColumnSpec::Header(resolve(h)),
            ColumnSpec::Template(parts) => ColumnSpec::Template(
                parts
                    .iter()
                    .map(|p| match p {
                        TemplatePart::Text(t) => TemplatePart::Text(t.clone()),
                        TemplatePart::Header(h) => TemplatePart::Header(resolve(h)),
                    })
                    .collect(),
            ),
        }
    }

    /// The spec's value in a row whose cells `cell` gives.
    pub fn value(&self, cell: &impl Fn(&H) -> RawValue) -> RawValue {
        match self {
            ColumnSpec::Constant(c) => RawValue::Text(c.clone()),
            ColumnSpec::Header(h) => cell(h),
            ColumnSpec::Template(parts) => {
                let mut text = String::new();
                let mut any = false;
                for part in parts {
                    match part {
                        TemplatePart::Text(literal) => text.push_str(literal),
                        TemplatePart::Header(h) => {
                            if let Some(t) = cell(h).to_text() {
                                text.push_str(&t);
                                any = true;
                            }
                        }
                    }
                }
                // `crm:` with no deal number is no id at all; `2025-01/msk/` (no manager) is one.
                if any { RawValue::Text(text) } else { RawValue::Null }
            }
        }
    }
}

/// A `columns` value as written: one spec (`"Сумма"`) or fallbacks tried in order
/// (`["{engage_date}", "{updated}", "=2020-01-01"]`). Read from a string or an array of strings
/// by hand, so toml's spans survive (an untagged enum would buffer them away).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecText(pub Vec<String>);

impl SpecText {
    /// One spec.
    pub fn one(spec: impl Into<String>) -> Self {
        Self(vec![spec.into()])
    }

    /// The alternatives in order.
    pub fn alternatives(&self) -> &[String] {
        &self.0
    }

    /// The single spec, when there is exactly one and it is a constant: `=mv`.
    pub fn constant(&self) -> Option<&str> {
        match self.0.as_slice() {
            [one] => one.strip_prefix('='),
            _ => None,
        }
    }

    /// How the value is shown in reasons: `"{a}"` or `["{a}", "=x"]`.
    pub fn shown(&self) -> String {
        match self.0.as_slice() {
            [one] => format!("\"{one}\""),
            many => format!("[{}]", many.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")),
        }
    }
}

impl From<&str> for SpecText {
    fn from(s: &str) -> Self {
        Self::one(s)
    }
}

impl<'de> serde::Deserialize<'de> for SpecText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = SpecText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a column spec (\"Header\", \"text {Header}\", \"=constant\") or a list of them tried in order",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<SpecText, E> {
                Ok(SpecText::one(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<SpecText, A::Error> {
                let mut specs = vec![];
                while let Some(s) = seq.next_element::<String>()? {
                    specs.push(s);
                }
                Ok(SpecText(specs))
            }
        }
        deserializer.deserialize_any(SpecVisitor)
    }
}

/// One canonical column's specs, parsed: the first that gives a non-empty value wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRule<H = String>(pub Vec<ColumnSpec<H>>);

impl ColumnRule {
    /// Parses each alternative; an error names the alternative (`[1]`) when there are several.
    pub fn parse(text: &SpecText) -> std::result::Result<Self, String> {
        let specs = text.alternatives();
        if specs.is_empty() {
            return Err("an empty list; give one spec or the alternatives to try in order".into());
        }
        let mut out = Vec::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            let parsed = ColumnSpec::parse(spec)
                .map_err(|e| if specs.len() > 1 { format!("alternative [{i}] {e}") } else { e })?;
            if matches!(parsed, ColumnSpec::Constant(_)) && i + 1 < specs.len() {
                return Err(format!(
                    "alternative [{i}] `{spec}` is a constant, which is never empty, so the alternatives after it are \
                     never tried; put it last"
                ));
            }
            out.push(parsed);
        }
        Ok(ColumnRule(out))
    }
}

impl<H> ColumnRule<H> {
    /// Every header any alternative reads.
    pub fn headers(&self) -> Vec<&H> {
        self.0.iter().flat_map(ColumnSpec::headers).collect()
    }

    /// The rule with headers resolved.
    pub fn resolve<K>(&self, resolve: &impl Fn(&H) -> K) -> ColumnRule<K> {
        ColumnRule(self.0.iter().map(|s| s.resolve(resolve)).collect())
    }

    /// The first non-empty value of the alternatives (empty when all are).
    pub fn value(&self, cell: &impl Fn(&H) -> RawValue) -> RawValue {
        for spec in &self.0 {
            let v = spec.value(cell);
            if !v.is_empty() {
                return v;
            }
        }
        RawValue::Null
    }
}

/// `where`: column -> accepted values; a row is taken when every named cell (as text, trimmed;
/// an empty cell is `""`) is one of its column's values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowFilter<H = String>(pub Vec<(H, Vec<String>)>);

impl RowFilter {
    /// The filter of a `where` map.
    pub fn new(map: &BTreeMap<String, Vec<String>>) -> Self {
        RowFilter(
            map.iter().map(|(c, v)| (c.trim().to_string(), v.iter().map(|s| s.trim().to_string()).collect())).collect(),
        )
    }
}

impl<H> RowFilter<H> {
    /// The headers the filter reads.
    pub fn headers(&self) -> impl Iterator<Item = &H> {
        self.0.iter().map(|(h, _)| h)
    }

    /// The filter with headers resolved.
    pub fn resolve<K>(&self, resolve: &impl Fn(&H) -> K) -> RowFilter<K> {
        RowFilter(self.0.iter().map(|(h, v)| (resolve(h), v.clone())).collect())
    }

    /// True when the row is taken.
    pub fn accepts(&self, cell: &impl Fn(&H) -> RawValue) -> bool {
        self.0.iter().all(|(h, accepted)| {
            let text = cell(h).to_text().unwrap_or_default();
            accepted.contains(&text)
        })
    }
}

/// A `columns` value at config time: every alternative well formed (see [`ColumnRule::parse`]).
pub fn check_spec_text(text: &SpecText) -> std::result::Result<(), String> {
    ColumnRule::parse(text).map(|_| ())
}

/// A `where` map at config time: each column lists at least one value.
pub fn check_row_filter(map: &BTreeMap<String, Vec<String>>) -> std::result::Result<(), (String, String)> {
    for (column, values) in map {
        if column.trim().is_empty() {
            return Err((column.clone(), "the column name is empty; name a column of the file".into()));
        }
        if values.is_empty() {
            return Err((
                column.clone(),
                format!("no accepted values: list the values of `{column}` whose rows this table takes"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> RawValue {
        RawValue::Text(s.into())
    }

    #[test]
    fn column_specs_single_forms() {
        let h = |s: &str| TemplatePart::Header(s.to_string());
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
        assert!(ColumnSpec::parse("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn column_specs_fallbacks_take_the_first_non_empty_value() {
        let specs = SpecText(vec!["{engage_date}".into(), "{updated}".into(), "=2020-01-01".into()]);
        let rule = ColumnRule::parse(&specs).unwrap();
        let row = |engage: &str, updated: &str| {
            let (engage, updated) = (engage.to_string(), updated.to_string());
            move |h: &String| match h.as_str() {
                "engage_date" => text(&engage),
                "updated" => text(&updated),
                _ => RawValue::Null,
            }
        };
        assert_eq!(rule.value(&row("2017-01-05", "2017-02-01")), text("2017-01-05"));
        assert_eq!(rule.value(&row(" ", "2017-02-01")), text("2017-02-01"));
        assert_eq!(rule.value(&row("", "")), text("2020-01-01"));
        assert_eq!(rule.headers(), vec!["engage_date", "updated"]);
        // Without the constant, a row with neither is empty.
        let rule = ColumnRule::parse(&SpecText(vec!["{engage_date}".into(), "x-{updated}".into()])).unwrap();
        assert_eq!(rule.value(&row("", "")), RawValue::Null);
        // Resolved to positions, the same values.
        let cells = [text(""), text("2017-02-01")];
        let resolved = rule.resolve(&|h: &String| usize::from(h == "updated"));
        assert_eq!(resolved.value(&|i: &usize| cells[*i].clone()), text("x-2017-02-01"));

        let e = ColumnRule::parse(&SpecText(vec!["=x".into(), "{a}".into()])).unwrap_err();
        assert!(e.contains("alternative [0]") && e.contains("put it last"), "{e}");
        let e = ColumnRule::parse(&SpecText(vec!["{a}".into(), "b{".into()])).unwrap_err();
        assert!(e.contains("alternative [1]") && e.contains("without its"), "{e}");
        assert!(ColumnRule::parse(&SpecText(vec![])).unwrap_err().contains("empty list"));
        assert_eq!(specs.shown(), "[\"{engage_date}\", \"{updated}\", \"=2020-01-01\"]");
        assert_eq!(SpecText::one("=mv").constant(), Some("mv"));
    }

    #[test]
    fn column_specs_row_filter_takes_listed_values_only() {
        let filter = RowFilter::new(&[("pipeline".to_string(), vec!["Sales".to_string(), "B2B ".to_string()])].into());
        let row = |v: RawValue| move |_: &String| v.clone();
        assert!(filter.accepts(&row(text("Sales"))));
        assert!(filter.accepts(&row(text(" B2B"))));
        assert!(!filter.accepts(&row(text("Retail"))));
        assert!(!filter.accepts(&row(RawValue::Null)));
        let with_empty = RowFilter::new(&[("p".to_string(), vec![String::new()])].into());
        assert!(with_empty.accepts(&row(RawValue::Null)));
        assert!(RowFilter::default().accepts(&row(text("anything"))));
        let e = check_row_filter(&[("p".to_string(), vec![])].into()).unwrap_err();
        assert!(e.0 == "p" && e.1.contains("no accepted values"), "{e:?}");
    }
}
