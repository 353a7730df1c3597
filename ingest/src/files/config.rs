//! `kind = "csv" | "xlsx" | "jsonl"`: where the files are, how to read them, and how their
//! rows map onto canonical tables.

use std::collections::BTreeMap;

use dealhouse_warehouse::config::{ConfigIssue, KeyPath, OrganisationConfig, check_storage_options};
use dealhouse_warehouse::schema::{TableDef, canonical_table};
use serde::Deserialize;

use crate::column_specs::{SpecText, check_row_filter, check_spec_text};
use crate::source_config::{check_source_table, check_time_zone};

/// `kind = "csv" | "xlsx" | "jsonl"`: rows of files mapped onto canonical tables.
///
/// `path` names one file or, with `*`, `?`, `[...]` or `**`, every file matching a glob
/// (`exports/deals_*.csv`, read in path order); relative to the project directory, or a URL
/// (`file:///srv/exports/*.csv`, `s3://bucket/exports/*.jsonl`). Each file is tracked on its own:
/// one loaded before with the same bytes and the same mapping is skipped.
///
/// One table: `table` with `columns`, `values` and `where`. Several tables from the same rows:
/// `[sources.<name>.tables.<canonical table>]` sections, each with its own `columns`, `values`
/// and `where`. `columns` maps each canonical column to a header in the file (a key of a JSON
/// Lines object), a template mixing text and headers (`"crm:{Сделка}"`), a constant
/// (`"=contract_signed"`), or a list of these tried in order (`["{engage_date}", "=2020-01-01"]`,
/// see [`crate::column_specs`]). `values` maps raw values of a canonical column to canonical ones
/// (`metric = { "Выручка" = "won_amount" }`, `"*"` for every other value). `where` keeps the rows
/// whose cells hold one of the listed values (`where = { pipeline = ["Sales", "B2B"] }`); the
/// others are skipped, not quarantined.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// A file or a glob of files: a path relative to the project directory (or absolute), or a
    /// `file://` or `s3://` URL.
    pub path: String,
    /// Canonical table the rows go to (with `columns` and `values`); or use `tables`.
    #[serde(default)]
    pub table: Option<String>,
    /// XLSX sheet name (default: the first sheet).
    #[serde(default)]
    pub sheet: Option<String>,
    /// Text encoding (CSV): `utf-8` (BOM allowed) or `windows-1251`. Unset: UTF-8 when the
    /// file is valid UTF-8, else windows-1251 (1C and Russian Excel exports). JSON Lines files
    /// are always UTF-8.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Field delimiter (CSV), one ASCII character; default `,`.
    #[serde(default)]
    pub delimiter: Option<char>,
    /// Numbers use a decimal comma and space (or no-break space) thousands: `1 234,56`.
    #[serde(default)]
    pub decimal_comma: bool,
    /// chrono format of dates and timestamps in text cells (default: ISO 8601); e.g. `%d.%m.%Y`.
    #[serde(default)]
    pub date_format: Option<String>,
    /// Zone of timestamps without an offset; default UTC.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// With `table`: canonical column -> header, `{Header}` template or `=constant`, or a list
    /// of them tried in order (the first non-empty value wins). Only mapped columns are read;
    /// `branch_code` is translated to `branch_id` through the branches' `codes`; the table's own
    /// id defaults to `{source}:{source_id}`. A mapped header missing from a file refuses that
    /// whole file.
    #[serde(default)]
    pub columns: BTreeMap<String, SpecText>,
    /// With `table`: canonical column -> (raw value -> canonical value); the key `"*"` maps every
    /// value not listed. Without it, a value that is neither a key nor already one of the
    /// canonical values quarantines its row.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// With `table`: header -> accepted values; rows whose cell holds none of them are skipped
    /// (counted in the sync summary, not quarantined), so one file can feed a table with only
    /// its matching rows. An empty cell matches `""`.
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Vec<String>>,
    /// Instead of `table`: canonical table -> its `columns` and `values`, so each row feeds
    /// several tables (an agents file filling `managers` and `branches`). `branches` may be
    /// filled here: their id defaults to `{source}:{source_id}`, and a `branch_code` in this
    /// source's other tables that no [[organisation.branches]] claims names that branch.
    #[serde(default)]
    pub tables: BTreeMap<String, FileTableConfig>,
    /// object_store options for a URL `path` (`aws_region`, `aws_endpoint`, ...), as in
    /// `[warehouse]`; credentials come from the environment, never from this file.
    #[serde(default)]
    pub storage_options: BTreeMap<String, String>,
    /// ISO 4217 code of the money this source's rows carry when a row names none (a `currency`
    /// column, Bitrix24's CURRENCY_ID); default the reporting currency (`[reporting]`).
    #[serde(default)]
    pub currency: Option<String>,
}

/// `[sources.<name>.tables.<canonical table>]` of a file source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTableConfig {
    /// Canonical column -> header, `{Header}` template or `=constant`, or a list of them tried
    /// in order (as `columns` of a single-table source).
    #[serde(default)]
    pub columns: BTreeMap<String, SpecText>,
    /// Canonical column -> (raw value -> canonical value); `"*"` maps every value not listed.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Header -> accepted values: the rows this table takes (the others are skipped).
    #[serde(default, rename = "where")]
    pub filter: BTreeMap<String, Vec<String>>,
}

/// One canonical table a file source fills and how, from either form of [`FileConfig`].
#[derive(Debug, Clone, Copy)]
pub struct FileTableMapping<'a> {
    /// Canonical table name as configured.
    pub table: &'a str,
    /// Canonical column -> header, template or constant, or fallbacks of them.
    pub columns: &'a BTreeMap<String, SpecText>,
    /// Canonical column -> (raw value -> canonical value).
    pub values: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Header -> accepted values (`where`).
    pub filter: &'a BTreeMap<String, Vec<String>>,
    /// Set for a `[sources.<name>.tables.<table>]` section, unset for the `table` form.
    pub in_tables: bool,
}

impl FileTableMapping<'_> {
    /// The dotted key of this mapping's section: `sources.x` (`table` form) or
    /// `sources.x.tables.managers`.
    pub fn section(&self, source: &str) -> String {
        if self.in_tables { format!("sources.{source}.tables.{}", self.table) } else { format!("sources.{source}") }
    }

    /// The key path of this mapping's section, under the source's `at` (`sources.<name>`).
    pub fn section_key(&self, at: &KeyPath) -> KeyPath {
        if self.in_tables { at.keys(["tables", self.table]) } else { at.clone() }
    }
}

impl FileConfig {
    /// The tables the rows go to, with their mappings (`table` alone, or every `tables` entry).
    pub fn mappings(&self) -> Vec<FileTableMapping<'_>> {
        match &self.table {
            Some(table) => {
                vec![FileTableMapping {
                    table,
                    columns: &self.columns,
                    values: &self.values,
                    filter: &self.filter,
                    in_tables: false,
                }]
            }
            None => self
                .tables
                .iter()
                .map(|(table, t)| FileTableMapping {
                    table,
                    columns: &t.columns,
                    values: &t.values,
                    filter: &t.filter,
                    in_tables: true,
                })
                .collect(),
        }
    }
}

/// Characters that make a file source's `path` a glob.
pub const GLOB_CHARS: [char; 3] = ['*', '?', '['];

impl FileConfig {
    /// The path, the format options of the kind, and each table's mapping against the schema
    /// and the organisation. `at` is `sources.<name>`.
    pub(crate) fn validate(
        &self,
        at: &KeyPath,
        name: &str,
        kind: &str,
        org: &OrganisationConfig,
    ) -> Result<(), ConfigIssue> {
        check_file_path(&self.path).map_err(|m| at.key("path").issue(m))?;
        check_storage_options(&self.storage_options, &at.key("storage_options"))?;
        match (&self.table, self.tables.is_empty()) {
            (Some(_), false) => {
                return Err(at.key("table").issue(format!(
                    "`table` and [sources.{name}.tables.*] are both set; use `table` with [sources.{name}.columns] \
                     for one table, or only [sources.{name}.tables.<canonical table>] sections for several"
                )));
            }
            (None, true) => {
                return Err(at.key("table").issue(format!(
                    "set `table` (the canonical table the rows go to, mapped in [sources.{name}.columns]) or add \
                     [sources.{name}.tables.<canonical table>] sections to fill several tables"
                )));
            }
            (None, false) => {
                for (k, set) in [
                    ("columns", !self.columns.is_empty()),
                    ("values", !self.values.is_empty()),
                    ("where", !self.filter.is_empty()),
                ] {
                    if set {
                        return Err(at.key(k).issue(format!(
                            "with [sources.{name}.tables.*] each table has its own `{k}`: move these under \
                             [sources.{name}.tables.<canonical table>.{k}]"
                        )));
                    }
                }
            }
            (Some(_), true) => {}
        }
        check_time_zone(self.time_zone.as_ref()).map_err(|m| at.key("time_zone").issue(m))?;
        let only = |k: &str, set: bool, kinds: &str| {
            if set { Err(at.key(k).issue(format!("`{k}` applies to {kinds} only; remove it"))) } else { Ok(()) }
        };
        match kind {
            "xlsx" => {
                only("encoding", self.encoding.is_some(), "csv files")?;
                only("delimiter", self.delimiter.is_some(), "csv files")?;
            }
            "jsonl" => {
                only("delimiter", self.delimiter.is_some(), "csv files")?;
                only("sheet", self.sheet.is_some(), "xlsx files")?;
                if let Some(e) = &self.encoding
                    && !matches!(e.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8")
                {
                    return Err(at
                        .key("encoding")
                        .issue(format!("JSON Lines files are UTF-8, not `{e}`; remove the key")));
                }
            }
            _ => only("sheet", self.sheet.is_some(), "xlsx files")?,
        }
        if let Some(e) = &self.encoding
            && !matches!(e.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8" | "windows-1251" | "cp1251")
        {
            return Err(at.key("encoding").issue(format!("`{e}` is not supported; use \"utf-8\" or \"windows-1251\"")));
        }
        if let Some(d) = self.delimiter
            && (!d.is_ascii() || matches!(d, '"' | '\n' | '\r'))
        {
            return Err(at
                .key("delimiter")
                .issue(format!("`{d}` cannot be a delimiter; use a single ASCII character like `;` or `,`")));
        }
        if let Some(fmt) = &self.date_format {
            use chrono::format::{Item, StrftimeItems};
            if fmt.trim().is_empty() || StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error)) {
                return Err(at
                    .key("date_format")
                    .issue(format!("`{fmt}` is not a chrono format; e.g. \"%d.%m.%Y\" or \"%d.%m.%Y %H:%M\"")));
            }
        }
        for mapping in self.mappings() {
            validate_file_table(at, name, &mapping, org)?;
        }
        Ok(())
    }
}

/// One table of a file source: the table, its `columns` and `values`.
fn validate_file_table(
    at: &KeyPath,
    name: &str,
    m: &FileTableMapping<'_>,
    org: &OrganisationConfig,
) -> Result<(), ConfigIssue> {
    let section = m.section(name);
    let skey = m.section_key(at);
    let table_key = if m.in_tables { skey.clone() } else { skey.key("table") };
    let table = check_file_table(m.table).map_err(|msg| table_key.issue(msg))?;
    let columns: Vec<&str> = table.columns.iter().map(|c| c.name).collect();
    for (column, spec) in m.columns {
        let ckey = skey.keys(["columns", column.as_str()]);
        if column == "source_system" {
            return Err(ckey.issue("`source_system` is always the source's name; remove it"));
        }
        if column == "branch_code" && table.name == "branches" {
            return Err(ckey.issue(
                "a branch's own id is `branch_id` (default `{source}:{source_id}`); `branch_code` is for rows that \
                 refer to a branch",
            ));
        }
        if !columns.contains(&column.as_str()) && column != "branch_code" {
            return Err(ckey.issue(format!(
                "`{column}` is not a column of `{}` (columns: {}, or branch_code)",
                table.name,
                columns.join(", ")
            )));
        }
        check_spec_text(spec).map_err(|msg| ckey.issue(msg))?;
        if table.name == "branches"
            && let Some(constant) = spec.constant()
        {
            match column.as_str() {
                "holding_id" if !org.holdings.iter().any(|h| h.id == constant) => {
                    return Err(
                        ckey.issue(format!("holding `{constant}` is not declared in [[organisation.holdings]]"))
                    );
                }
                "time_zone" if constant.parse::<chrono_tz::Tz>().is_err() => {
                    return Err(ckey.issue(format!("`{constant}` is not an IANA time zone (e.g. Europe/Moscow)")));
                }
                _ => {}
            }
        }
    }
    // The table's own id (first column) defaults to `{source}:{source_id}`, `deleted` to false.
    for (i, c) in table.columns.iter().enumerate() {
        let defaulted = c.name == "source_system" || c.name == "deleted" || (i == 0 && c.name.ends_with("_id"));
        if !c.nullable && !defaulted && !m.columns.contains_key(c.name) {
            return Err(skey.key("columns").issue(format!(
                "`{}` requires `{}`: map it to a header, a `{{Header}}` template or a `=constant`",
                table.name, c.name
            )));
        }
    }
    for column in m.values.keys() {
        if !m.columns.contains_key(column) {
            return Err(skey
                .keys(["values", column.as_str()])
                .issue(format!("`{column}` is not in [{section}.columns]; map it first")));
        }
    }
    check_row_filter(m.filter).map_err(|(column, msg)| skey.keys(["where", column.as_str()]).issue(msg))?;
    Ok(())
}

/// Canonical tables a file source may fill: those of any source, and `branches` too (a file
/// may describe offices the project file does not list).
fn check_file_table(table: &str) -> Result<TableDef, String> {
    match canonical_table(table) {
        Some(t) if t.name == "branches" => Ok(t),
        _ => check_source_table(table)
            .map_err(|m| m.replace("; sources fill one of: ", "; file sources fill branches or one of: ")),
    }
}

/// A file source's `path`: a path or a `file://` / `s3://` URL, with an optional glob in its
/// folders or file name (not in the bucket).
fn check_file_path(path: &str) -> Result<(), String> {
    if path.trim().is_empty() {
        return Err("empty; name a file (`exports/deals.csv`), a glob (`exports/deals_*.csv`) or a URL".into());
    }
    if path.ends_with('/') {
        return Err(format!("`{path}` names a folder; name its files, e.g. `{path}*.csv`"));
    }
    if let Some((scheme, rest)) = path.split_once("://") {
        match scheme {
            "file" if !rest.starts_with('/') => {
                return Err(format!("`{path}` is not an absolute file URL; write file:///absolute/path"));
            }
            "file" => {}
            "s3" | "s3a" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() || bucket.contains(GLOB_CHARS) || key.is_empty() {
                    return Err(format!("`{path}` names no file in a bucket; write s3://bucket/prefix/file.csv"));
                }
            }
            other => {
                return Err(format!(
                    "unsupported scheme `{other}` in `{path}`: use a path, file:///absolute/path or s3://bucket/key"
                ));
            }
        }
    }
    glob::Pattern::new(path).map(|_| ()).map_err(|e| {
        format!("`{path}` is not a valid glob ({e}); `*`, `?`, `[abc]` and `**` are special, `[[]` is a literal `[`")
    })
}

#[cfg(test)]
mod tests {
    use crate::source_config::SourceConfig;
    use crate::source_config::tests::parse;

    #[test]
    fn file_sources_are_validated_with_line_and_key() {
        let head = "[sources.onec]\nkind = \"csv\"\npath = \"a.csv\"\ntable = \"deals\"\n\n[sources.onec.columns]\nsource_id = \"id\"\n";
        let e = parse(&format!("{head}amout = \"Сумма\"\n")).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:8") && e.contains("sources.onec.columns.amout"), "{e}");
        assert!(e.contains("not a column of `deals`"), "{e}");
        let e = parse(head).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:6") && e.contains("requires `pipeline`"), "{e}");
        let e = parse(&format!("{head}title = \"crm:{{Сделка\"\n")).unwrap_err().to_string();
        assert!(e.contains(":8") && e.contains("sources.onec.columns.title") && e.contains("without its"), "{e}");
        let e = parse(&head.replace("table = \"deals\"", "table = \"deals\"\ndate_format = \"%d.%Q\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":5") && e.contains("sources.onec.date_format"), "{e}");
        let e = parse(&head.replace("\"deals\"", "\"sales\"")).unwrap_err().to_string();
        assert!(e.contains(":4") && e.contains("sources.onec.table") && e.contains("intake_requests"), "{e}");
        let e = parse(&head.replace("\"csv\"", "\"xlsx\"").replace("path", "encoding = \"cp1251\"\npath"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3") && e.contains("csv files only"), "{e}");
        let ok = "[sources.plans]\nkind = \"xlsx\"\npath = \"p.xlsx\"\ntable = \"plans\"\n[sources.plans.columns]\n\
                  source_id = \"{Месяц}/{Филиал}\"\nmonth = \"Месяц\"\nmetric = \"=calls\"\ntarget = \"План\"\n\
                  branch_code = \"Филиал\"\n[sources.plans.values]\nmetric = { \"Звонки\" = \"calls\" }\n";
        parse(ok).unwrap();
        let e = parse(&ok.replace("metric = {", "kind = {")).unwrap_err().to_string();
        assert!(e.contains(":12") && e.contains("sources.plans.values.kind") && e.contains("map it first"), "{e}");
    }

    #[test]
    fn file_sources_fallbacks_and_where_are_validated_with_line_and_key() {
        let head = "[sources.onec]\nkind = \"csv\"\npath = \"a.csv\"\ntable = \"deals\"\nwhere = { pipeline = [\"Sales\"] }\n\n\
                    [sources.onec.columns]\nsource_id = \"id\"\npipeline = \"p\"\nstage = \"s\"\nsource_stage = \"s\"\n\
                    status = \"=open\"\nupdated_at = \"u\"\n";
        let ok = format!("{head}created_at = [\"{{engage}}\", \"{{u}}\", \"=2020-01-01\"]\n");
        let c = parse(&ok).unwrap();
        let SourceConfig::Csv(f) = &c["onec"] else { panic!("{c:?}") };
        assert_eq!(f.columns["created_at"].alternatives(), ["{engage}", "{u}", "=2020-01-01"]);
        assert_eq!(f.filter["pipeline"], ["Sales"]);
        let e = parse(&ok.replace("\"=2020-01-01\"]", "\"=2020-01-01\", \"{x}\"]")).unwrap_err().to_string();
        assert!(e.contains(":14") && e.contains("sources.onec.columns.created_at") && e.contains("put it last"), "{e}");
        let e = parse(&ok.replace("[\"{engage}\"", "[\"{engage\"")).unwrap_err().to_string();
        assert!(e.contains(":14") && e.contains("alternative [0]") && e.contains("without its"), "{e}");
        let e = parse(&ok.replace("created_at = [", "created_at = [3, ")).unwrap_err().to_string();
        assert!(e.contains(":14") && e.contains("sources.onec.columns.created_at"), "{e}");
        let e = parse(&ok.replace("[\"Sales\"]", "[]")).unwrap_err().to_string();
        assert!(
            e.contains(":5") && e.contains("sources.onec.where.pipeline") && e.contains("no accepted values"),
            "{e}"
        );
    }

    #[test]
    fn file_sources_tables_paths_and_kinds_are_validated() {
        let org = "[[organisation.holdings]]\nid = \"mv\"\nname = \"MavenTech\"\n";
        let tables = "[sources.agents.tables.managers.columns]\nsource_id = \"sales_agent\"\nname = \"sales_agent\"\n\
                      branch_code = \"regional_office\"\nactive = \"=true\"\n\n\
                      [sources.agents.tables.branches.columns]\nsource_id = \"regional_office\"\n\
                      name = \"regional_office\"\nholding_id = \"=mv\"\ncity = \"regional_office\"\n\
                      time_zone = \"=America/Chicago\"\n";
        let ok = format!("{org}\n[sources.agents]\nkind = \"csv\"\npath = \"maven/*.csv\"\n\n{tables}");
        let c = parse(&ok).unwrap();
        let SourceConfig::Csv(f) = &c["agents"] else { panic!("{c:?}") };
        let mapped: Vec<(&str, usize, bool)> =
            f.mappings().iter().map(|m| (m.table, m.columns.len(), m.in_tables)).collect();
        assert_eq!(mapped, [("branches", 5, true), ("managers", 4, true)]);

        // `table` on line 8 beside [sources.agents.tables.*].
        let both = ok.replace("path = \"maven/*.csv\"\n", "path = \"maven/*.csv\"\ntable = \"managers\"\n");
        let e = parse(&both).unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:8") && e.contains("key `sources.agents.table`"), "{e}");
        assert!(e.contains("both set") && e.contains("[sources.agents.tables.<canonical table>]"), "{e}");
        let neither = format!("{org}\n[sources.agents]\nkind = \"csv\"\npath = \"a.csv\"\n");
        let e = parse(&neither).unwrap_err().to_string();
        assert!(e.contains(":5") && e.contains("sources.agents.table") && e.contains("set `table`"), "{e}");
        let stray = ok.replace(
            "\n\n[sources.agents.tables.managers",
            "\n[sources.agents.columns]\nx = \"y\"\n\n[sources.agents.tables.managers",
        );
        let e = parse(&stray).unwrap_err().to_string();
        assert!(e.contains(":8") && e.contains("sources.agents.columns") && e.contains("move these"), "{e}");

        // Each table's mapping is checked like a single table's, with its own section as the key.
        let e = parse(&ok.replace("name = \"sales_agent\"\n", "")).unwrap_err().to_string();
        assert!(
            e.contains(":9") && e.contains("sources.agents.tables.managers.columns") && e.contains("`name`"),
            "{e}"
        );
        let e = parse(&ok.replace("holding_id = \"=mv\"", "holding_id = \"=south\"")).unwrap_err().to_string();
        assert!(e.contains(":18") && e.contains("tables.branches.columns.holding_id") && e.contains("`south`"), "{e}");
        let e = parse(&ok.replace("\"=America/Chicago\"", "\"=Chicago\"")).unwrap_err().to_string();
        assert!(e.contains(":20") && e.contains("tables.branches.columns.time_zone"), "{e}");
        let e = parse(&ok.replace("source_id = \"regional_office\"", "branch_code = \"regional_office\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":16") && e.contains("tables.branches.columns.branch_code") && e.contains("own id"), "{e}");
        let e = parse(&ok.replace("tables.branches", "tables.offices")).unwrap_err().to_string();
        assert!(e.contains(":15") && e.contains("key `sources.agents.tables.offices`"), "{e}");
        assert!(e.contains("not a canonical table") && e.contains("branches"), "{e}");

        // Paths: globs, URLs, kinds.
        for (path, words) in [
            ("maven/[ab.csv", "not a valid glob"),
            ("ftp://host/a.csv", "unsupported scheme `ftp`"),
            ("file://relative/a.csv", "absolute"),
            ("s3://bucket-*/a.csv", "s3://bucket/prefix/file.csv"),
            ("maven/", "names a folder"),
        ] {
            let e = parse(&ok.replace("maven/*.csv", path)).unwrap_err().to_string();
            assert!(e.contains(":7") && e.contains("key `sources.agents.path`") && e.contains(words), "{path}: {e}");
        }
        for path in ["file:///srv/exports/deals_*.csv", "s3://bucket/exports/**/*.csv", "/srv/a.csv", "a[[]1].csv"] {
            parse(&ok.replace("maven/*.csv", path)).unwrap();
        }
        let secret = ok.replace(
            "path = \"maven/*.csv\"\n",
            "path = \"s3://b/x.csv\"\nstorage_options = { aws_region = \"eu\", aws_secret_access_key = \"hunter2\" }\n",
        );
        let e = parse(&secret).unwrap_err().to_string();
        assert!(e.contains("sources.agents.storage_options.aws_secret_access_key") && !e.contains("hunter2"), "{e}");
        let jsonl = ok.replace("kind = \"csv\"", "kind = \"jsonl\"");
        assert_eq!(parse(&jsonl).unwrap()["agents"].kind(), "jsonl");
        let e = parse(&jsonl.replace("path =", "delimiter = \";\"\npath =")).unwrap_err().to_string();
        assert!(e.contains(":7") && e.contains("sources.agents.delimiter") && e.contains("csv files only"), "{e}");
        let e = parse(&jsonl.replace("path =", "encoding = \"cp1251\"\npath =")).unwrap_err().to_string();
        assert!(e.contains("sources.agents.encoding") && e.contains("UTF-8"), "{e}");
    }
}
