//! `[sources.<name>]`: the closed set of source kinds, and reading a project's sources.
//!
//! Adding a source kind = its config struct and `validate` beside its connector
//! (`ingest/src/<kind>/config.rs`), a variant in [`SourceConfig`] with its arms in
//! [`SourceConfig::kind`] and [`SourceConfig::validate`], and its arm in
//! [`crate::sync::connector_for`]. The warehouse crate knows no kind.
//!
//! The warehouse keeps `[sources.*]` as written, with the project file's text; [`parse_sources`]
//! reads each source from toml's spanned tree of that text, so an unknown key or a bad value
//! names its file:line:key like the rest of the file, and each kind's `validate` returns a typed
//! [`ConfigIssue`] placed the same way. [`crate::project::load`] runs it when a command loads a
//! project, so every command refuses a bad source before any work starts. `sync`, push intake
//! and `status` parse again from the [`Project`](dealhouse_warehouse::Project) they are given:
//! the parse is pure and takes microseconds, so a project stays the one value passed around
//! and the typed sources can never disagree with it.

use std::collections::BTreeMap;

use dealhouse_warehouse::ProjectConfig;
use dealhouse_warehouse::config::{ConfigIssue, ConfigText, KeyPath, OrganisationConfig, check_currency_code};
use dealhouse_warehouse::schema::{TableDef, canonical_table, canonical_tables};
use dealhouse_warehouse::toml::Spanned;
use dealhouse_warehouse::toml::de::{DeTable, DeValue, ValueDeserializer};
use serde::Deserialize;

pub use crate::amocrm::config::AmoCrmConfig;
pub use crate::bitrix24::config::Bitrix24Config;
pub use crate::files::config::{FileConfig, FileTableConfig, FileTableMapping};
pub use crate::push::config::PushConfig;
pub use crate::sql::config::{Secret, SqlConfig, SqlTableConfig};

/// A project's sources by name, in name order.
pub type Sources = BTreeMap<String, SourceConfig>;

/// One upstream system, as `kind = "..."` in its `[sources.<name>]` table. Adding a kind: see
/// the module docs.
///
/// Read externally tagged (`{ csv = { ... } }`) from the `kind` and the rest of the table
/// ([`parse_sources`] lifts `kind` out): serde's internally tagged enums buffer their content and
/// lose toml's spans, which would put every error inside a source on its header line.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceConfig {
    /// A Bitrix24 portal through an inbound webhook.
    Bitrix24(Bitrix24Config),
    /// An amoCRM account through API v4 with a long-lived token.
    AmoCrm(AmoCrmConfig),
    /// A SQLite database file (the demo's legacy intake system).
    Sqlite(SqlConfig),
    /// A PostgreSQL database, read over the network.
    Postgres(SqlConfig),
    /// A MySQL or MariaDB database, read over the network.
    Mysql(SqlConfig),
    /// An XLSX workbook.
    Xlsx(FileConfig),
    /// A CSV file (1C and spreadsheet exports).
    Csv(FileConfig),
    /// A JSON Lines file: one object per line, its keys read like CSV headers.
    Jsonl(FileConfig),
    /// Records delivered to the server (`POST /api/v1/intake/<name>`): the self-service portal,
    /// CRM webhooks. `sync` has nothing to pull for it.
    Push(PushConfig),
}

impl SourceConfig {
    /// The `kind` as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Bitrix24(_) => "bitrix24",
            SourceConfig::AmoCrm(_) => "amocrm",
            SourceConfig::Sqlite(_) => "sqlite",
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::Mysql(_) => "mysql",
            SourceConfig::Xlsx(_) => "xlsx",
            SourceConfig::Csv(_) => "csv",
            SourceConfig::Jsonl(_) => "jsonl",
            SourceConfig::Push(_) => "push",
        }
    }

    /// The source's `currency`: what its money is in when a row does not say.
    pub fn currency(&self) -> Option<&str> {
        match self {
            SourceConfig::Bitrix24(c) => c.currency.as_deref(),
            SourceConfig::AmoCrm(c) => c.currency.as_deref(),
            SourceConfig::Sqlite(c) | SourceConfig::Postgres(c) | SourceConfig::Mysql(c) => c.currency.as_deref(),
            SourceConfig::Xlsx(c) | SourceConfig::Csv(c) | SourceConfig::Jsonl(c) => c.currency.as_deref(),
            SourceConfig::Push(c) => c.currency.as_deref(),
        }
    }

    /// What serde cannot check: values that must agree with each other, the schema, the
    /// organisation and the project's vocabularies. `at` is `sources.<name>`.
    pub fn validate(&self, name: &str, at: &KeyPath, project: &ProjectConfig) -> Result<(), ConfigIssue> {
        let org: &OrganisationConfig = &project.organisation;
        if let Some(code) = self.currency() {
            check_currency_code(code).map_err(|m| at.key("currency").issue(m))?;
        }
        match self {
            SourceConfig::Bitrix24(c) => c.validate(at),
            SourceConfig::AmoCrm(c) => c.validate(at, &project.vocabularies),
            SourceConfig::Sqlite(c) | SourceConfig::Postgres(c) | SourceConfig::Mysql(c) => {
                c.validate(at, name, self.kind())
            }
            SourceConfig::Xlsx(c) | SourceConfig::Csv(c) | SourceConfig::Jsonl(c) => {
                c.validate(at, name, self.kind(), org)
            }
            SourceConfig::Push(c) => c.validate(at),
        }
    }
}

/// Reads and validates every `[sources.<name>]` of a parsed project file.
pub fn parse_sources(config: &ProjectConfig) -> dealhouse_warehouse::Result<Sources> {
    let file = config.file();
    let tree = file.tree()?;
    let mut sources = Sources::new();
    let section = match tree.get_ref() {
        DeValue::Table(root) => root.get("sources").map(|s| s.get_ref()),
        _ => None,
    };
    // The warehouse refused a `sources` that is not a table of tables already.
    let Some(DeValue::Table(section)) = section else { return Ok(sources) };
    for (name, value) in section.iter() {
        let name: &str = name.get_ref();
        let at = KeyPath::of(["sources", name]);
        let source = read_source(file, &at, name, value.clone())
            .and_then(|source| source.validate(name, &at, config).map(|()| source))
            .map_err(|issue| file.error(issue))?;
        sources.insert(name.to_string(), source);
    }
    Ok(sources)
}

/// One source's table, read with its spans: `kind` becomes the enum's tag.
fn read_source(
    file: &ConfigText,
    at: &KeyPath,
    name: &str,
    value: Spanned<DeValue<'_>>,
) -> Result<SourceConfig, ConfigIssue> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(at.issue("source names may use a-z, 0-9, _ and - only"));
    }
    let span = value.span();
    let DeValue::Table(mut table) = value.into_inner() else {
        return Err(at.issue("expected a table: [sources.<name>] with kind = \"...\" and its settings"));
    };
    let Some((_, kind)) = table.remove_entry("kind") else {
        return Err(at.issue("missing field `kind`"));
    };
    let kind_span = kind.span();
    let DeValue::String(kind) = kind.into_inner() else {
        return Err(ConfigIssue {
            key: at.key("kind"),
            span: Some(kind_span),
            message: "expected a string such as kind = \"csv\"".into(),
        });
    };
    let mut tagged = DeTable::new();
    tagged.insert(Spanned::new(kind_span, kind), Spanned::new(span.clone(), DeValue::Table(table)));
    SourceConfig::deserialize(ValueDeserializer::from(Spanned::new(span, DeValue::Table(tagged))))
        .map_err(|e| file.issue_from(&e, at))
}

/// Canonical tables a source may fill: the organisation comes from the project file, and the
/// quarantine is written by the sync runner.
pub(crate) fn check_source_table(table: &str) -> Result<TableDef, String> {
    match canonical_table(table) {
        Some(t) if !matches!(t.name, "holdings" | "branches" | "quarantine" | "reporting_currency") => Ok(t),
        Some(t) => Err(format!(
            "`{}` is not filled by sources ([organisation], [reporting] and the sync runner own it)",
            t.name
        )),
        None => Err(format!(
            "`{table}` is not a canonical table; sources fill one of: {}",
            canonical_tables()
                .iter()
                .map(|t| t.name)
                .filter(|n| !matches!(*n, "holdings" | "branches" | "quarantine" | "reporting_currency"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// An optional `time_zone` names an IANA zone.
pub(crate) fn check_time_zone(tz: Option<&String>) -> Result<(), String> {
    match tz {
        Some(tz) if tz.trim().parse::<chrono_tz::Tz>().is_err() => {
            Err(format!("`{tz}` is not an IANA time zone (e.g. Europe/Moscow, Asia/Vladivostok)"))
        }
        _ => Ok(()),
    }
}

/// Seconds re-read before the last cursor (upstream timestamps are second-accurate).
pub(crate) fn default_lookback() -> u64 {
    300
}

/// Seconds a CRM connector retries throttled or failed calls before it gives up.
pub(crate) fn default_max_retry_seconds() -> u64 {
    300
}

/// Rows per committed chunk of a CRM connector.
pub(crate) fn default_chunk_rows() -> usize {
    5000
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The sources of a project file's text, read as a command loads them.
    pub(crate) fn parse(text: &str) -> dealhouse_warehouse::Result<Sources> {
        let config = ProjectConfig::parse(text, std::path::Path::new("/p/dealhouse.toml"))?;
        parse_sources(&config)
    }

    #[test]
    fn kinds_names_and_unknown_keys_name_their_line() {
        let ok = "[server]\nbind = \"127.0.0.1:1\"\n\n[sources.portal]\nkind = \"push\"\ntable = \"intake_requests\"\n";
        assert_eq!(parse(ok).unwrap()["portal"].kind(), "push");
        let e = parse(&ok.replace("\"push\"", "\"pus\"")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:5: key `sources.portal.kind`: unknown variant `pus`"), "{e}");
        assert!(e.contains("`push`"), "{e}");
        let e = parse(&ok.replace("kind = \"push\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:4: key `sources.portal`: missing field `kind`"), "{e}");
        let e = parse(&format!("{ok}tabel = \"x\"\n")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:7: key `sources.portal.tabel`: unknown field `tabel`"), "{e}");
        let e = parse(&ok.replace("table = \"intake_requests\"", "table = 3")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:6: key `sources.portal.table`: invalid type"), "{e}");
        let e = parse(&ok.replace("sources.portal", "sources.\"por tal\"")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:4") && e.contains("a-z, 0-9, _ and - only"), "{e}");
        let e = parse(&ok.replace("intake_requests", "branches")).unwrap_err().to_string();
        assert!(e.contains(":6: key `sources.portal.table`") && e.contains("[organisation]"), "{e}");
        let e = parse(&format!("{ok}time_zone = \"Moscow\"\n")).unwrap_err().to_string();
        assert!(e.contains(":7: key `sources.portal.time_zone`") && e.contains("IANA"), "{e}");
    }

    #[test]
    fn every_kind_takes_a_currency_and_it_is_an_iso_code() {
        let kinds = [
            ("kind = \"bitrix24\"\nsimulate_from = \"p\"", ""),
            ("kind = \"amocrm\"\nsimulate_from = \"a\"", ""),
            ("kind = \"sqlite\"\npath = \"x.db\"", "[sources.s.tables.fx_rates]\nquery = \"select * from rates\"\n"),
            (
                "kind = \"csv\"\npath = \"r.csv\"\ntable = \"fx_rates\"",
                "[sources.s.columns]\nsource_id = \"{Date} {Code}\"\nrate_date = \"Date\"\ncurrency = \"Code\"\nrate = \"Rate\"\n",
            ),
            ("kind = \"push\"\ntable = \"deals\"", ""),
        ];
        for (kind, tables) in kinds {
            let ok = format!("[reporting]\ncurrency = \"RUB\"\n\n[sources.s]\n{kind}\ncurrency = \"USD\"\n{tables}");
            let sources = parse(&ok).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(sources["s"].currency(), Some("USD"), "{kind}");
            let line = ok.lines().position(|l| l.starts_with("currency = \"USD\"")).unwrap() + 1;
            for bad in ["usd", "$", "US D", "DOLLAR"] {
                let e =
                    parse(&ok.replace("currency = \"USD\"", &format!("currency = \"{bad}\""))).unwrap_err().to_string();
                assert!(
                    e.contains(&format!("dealhouse.toml:{line}: key `sources.s.currency`")) && e.contains("ISO 4217"),
                    "{kind} {bad}: {e}"
                );
            }
        }
        let e = parse("[sources.s]\nkind = \"push\"\ntable = \"reporting_currency\"\n").unwrap_err().to_string();
        assert!(e.contains(":3: key `sources.s.table`") && e.contains("[reporting]"), "{e}");
    }
}
