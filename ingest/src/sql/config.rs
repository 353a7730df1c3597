//! `kind = "sqlite" | "postgres" | "mysql"`: where the database is and one query per canonical
//! table.

use std::collections::BTreeMap;
use std::path::PathBuf;

use dealhouse_warehouse::config::{ConfigIssue, KeyPath};
use serde::Deserialize;
use url::Url;

use crate::column_specs::{ColumnRule, SpecText, check_spec_text};
use crate::source_config::{check_source_table, check_time_zone, default_lookback};

/// `kind = "sqlite" | "postgres" | "mysql"`: one query per canonical table whose result columns
/// are named as the canonical columns (or mapped to them by the table's `columns`, with the
/// grammar of file sources, and translated by its `values`).
///
/// A sqlite source reads the file in `path`; a postgres or mysql source connects to the URL held
/// in the environment variable `url_env` (or, discouraged, written inline in `url`). The row's
/// canonical id (`deal_id`, `request_id`, ...) defaults to `{source}:{source_id}`; a
/// `branch_code` column is translated to `branch_id` through the branches' `codes`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `kind = "sqlite"` only: the database file, relative to the project directory.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `kind = "postgres" | "mysql"`: environment variable holding the connection URL
    /// (`postgres://user:password@host:5432/database`, `mysql://user:password@host:3306/database`).
    #[serde(default)]
    pub url_env: Option<String>,
    /// `kind = "postgres" | "mysql"`: the connection URL written inline. Discouraged: the file
    /// then holds the password; prefer `url_env`. Never logged.
    #[serde(default)]
    pub url: Option<Secret>,
    /// Zone of timestamps stored without an offset (legacy systems keep local time); default UTC.
    /// PostgreSQL `timestamptz` and MySQL `TIMESTAMP` values are instants already and ignore it.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Canonical table -> how to read it.
    pub tables: BTreeMap<String, SqlTableConfig>,
    /// ISO 4217 code of the money this source's rows carry when a row names none (a `currency`
    /// column, Bitrix24's CURRENCY_ID); default the reporting currency (`[reporting]`).
    #[serde(default)]
    pub currency: Option<String>,
}

/// A secret written in the file (a URL with a password): it prints as `<redacted>` in debug
/// output, so a logged config never shows it.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `[sources.<name>.tables.<canonical table>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlTableConfig {
    /// A SELECT producing canonical column names (`source_id` required).
    pub query: String,
    /// Result column to read incrementally by (`updated_at`, an increasing id); rows with a value
    /// >= the last committed one (minus `lookback_seconds` for timestamps) are re-read.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Seconds re-read before a timestamp cursor.
    #[serde(default = "default_lookback")]
    pub lookback_seconds: u64,
    /// Canonical column -> result column (`"{engage_date}"` or `"engage_date"`), template or
    /// `=constant`, or a list of them tried in order (the first non-empty value wins), as a file
    /// source's `columns`. A canonical column not listed is the result column of its name.
    /// Rows are filtered in the query's own WHERE, so SQL tables have no `where`.
    #[serde(default)]
    pub columns: BTreeMap<String, SpecText>,
    /// Canonical column -> (raw value -> canonical value); `"*"` maps every value not listed.
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

impl SqlTableConfig {
    /// The result columns reading this table needs: `source_id` (replays select rows by it),
    /// the cursor, and every column the `columns` specs name.
    pub fn needed_columns(&self) -> Vec<String> {
        let mut needed = vec!["source_id".to_string()];
        needed.extend(self.cursor.clone());
        for text in self.columns.values() {
            if let Ok(rule) = ColumnRule::parse(text) {
                needed.extend(rule.headers().into_iter().cloned());
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        needed.retain(|c| seen.insert(c.clone()));
        needed
    }
}

/// URL schemes each SQL server kind accepts.
pub fn sql_url_schemes(kind: &str) -> &'static [&'static str] {
    match kind {
        "postgres" => &["postgres", "postgresql"],
        "mysql" => &["mysql", "mariadb"],
        _ => &[],
    }
}

impl SqlConfig {
    /// A file (sqlite) or a connection (postgres, mysql), and a query for each canonical table.
    /// `at` is `sources.<name>`.
    pub(crate) fn validate(&self, at: &KeyPath, name: &str, kind: &str) -> Result<(), ConfigIssue> {
        check_time_zone(self.time_zone.as_ref()).map_err(|m| at.key("time_zone").issue(m))?;
        if kind == "sqlite" {
            for (k, set) in [("url_env", self.url_env.is_some()), ("url", self.url.is_some())] {
                if set {
                    return Err(at.key(k).issue(format!(
                        "source `{name}` is kind = \"sqlite\", which reads the file in `path`; `{k}` is for \
                         kind = \"postgres\" or \"mysql\": remove it or change the kind"
                    )));
                }
            }
            if self.path.as_ref().is_none_or(|p| p.as_os_str().is_empty()) {
                return Err(at.key("path").issue(format!(
                    "source `{name}`: set `path` to the database file (relative to the project directory)"
                )));
            }
        } else {
            self.check_server_connection(name, kind).map_err(|(k, m)| at.key(k).issue(m))?;
        }
        if self.tables.is_empty() {
            return Err(at.key("tables").issue(format!(
                "no tables: add [sources.{name}.tables.<canonical table>] with a `query` selecting canonical column names"
            )));
        }
        for (table, t) in &self.tables {
            let tkey = at.keys(["tables", table.as_str()]);
            check_source_table(table).map_err(|m| tkey.issue(m))?;
            if t.query.trim().is_empty() {
                return Err(tkey
                    .key("query")
                    .issue("the query is empty; select canonical column names, `source_id` included"));
            }
            if t.cursor.as_deref().is_some_and(|c| c.trim().is_empty()) {
                return Err(tkey
                    .key("cursor")
                    .issue("the cursor column name is empty; remove the key to read everything each time"));
            }
            validate_table_mapping(&tkey, table, t)?;
        }
        Ok(())
    }

    /// A postgres/mysql source names its server by `url_env` or `url`, never by `path`. Errors
    /// as (key under the source, message); messages never repeat the URL: it may hold a password.
    fn check_server_connection(&self, name: &str, kind: &str) -> Result<(), (&'static str, String)> {
        let schemes = sql_url_schemes(kind);
        let example =
            format!("{}://user:password@host:{}/database", schemes[0], if kind == "mysql" { 3306 } else { 5432 });
        if self.path.is_some() {
            return Err((
                "path",
                format!(
                    "source `{name}` is kind = \"{kind}\": `path` is for kind = \"sqlite\" only; connect with \
                     url_env = \"ENV_VAR\" naming a variable that holds {example}"
                ),
            ));
        }
        match (&self.url_env, &self.url) {
            (Some(_), Some(_)) => Err((
                "url",
                format!(
                    "source `{name}` sets both `url_env` and `url`; keep one (url_env keeps the password out of the file)"
                ),
            )),
            (None, None) => Err((
                "url_env",
                format!(
                    "source `{name}` (kind = \"{kind}\") needs a connection: set url_env = \"ENV_VAR\" naming a \
                     variable that holds {example} (or `url`, which puts the password in this file)"
                ),
            )),
            (Some(var), None) => {
                let valid = !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if valid && !var.starts_with(|c: char| c.is_ascii_digit()) {
                    Ok(())
                } else {
                    Err((
                        "url_env",
                        format!(
                            "`{var}` is not an environment variable name; use letters, digits and _ (e.g. LEGACY_DB_URL)"
                        ),
                    ))
                }
            }
            (None, Some(url)) => match Url::parse(url.expose()) {
                Err(e) => Err(("url", format!("not a valid URL ({e}); expected {example}"))),
                Ok(u) if !schemes.contains(&u.scheme()) => Err((
                    "url",
                    format!(
                        "the URL scheme is `{}`, but source `{name}` is kind = \"{kind}\": expected {example}",
                        u.scheme()
                    ),
                )),
                Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                    Err(("url", format!("the URL names no host; expected {example}")))
                }
                Ok(_) => Ok(()),
            },
        }
    }
}

/// A SQL table's `columns` and `values`: canonical columns (or `branch_code`), specs well formed.
fn validate_table_mapping(tkey: &KeyPath, table: &str, t: &SqlTableConfig) -> Result<(), ConfigIssue> {
    let Some(def) = dealhouse_warehouse::schema::canonical_table(table) else { return Ok(()) };
    let known = |column: &str| column == "branch_code" || def.columns.iter().any(|c| c.name == column);
    let columns = || {
        let mut names: Vec<&str> = def.columns.iter().map(|c| c.name).collect();
        names.push("branch_code");
        names.join(", ")
    };
    for (column, spec) in &t.columns {
        let ckey = tkey.keys(["columns", column.as_str()]);
        match column.as_str() {
            "source_id" => {
                return Err(ckey.issue(
                    "select the upstream id as `source_id` in the query instead (quarantined rows are read again by \
                     it); remove this key",
                ));
            }
            "source_system" => return Err(ckey.issue("`source_system` is always the source's name; remove it")),
            c if !known(c) => {
                return Err(ckey.issue(format!("`{c}` is not a column of `{table}` (columns: {})", columns())));
            }
            _ => {}
        }
        check_spec_text(spec).map_err(|msg| ckey.issue(msg))?;
    }
    for column in t.values.keys() {
        if !known(column) {
            return Err(tkey
                .keys(["values", column.as_str()])
                .issue(format!("`{column}` is not a column of `{table}` (columns: {})", columns())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::source_config::SourceConfig;
    use crate::source_config::tests::parse;

    #[test]
    fn sql_sources_are_validated_with_line_and_key() {
        let text = "[sources.legacy]\nkind = \"sqlite\"\npath = \"l.db\"\n\n[sources.legacy.tables.requests]\nquery = \"select 1\"\n";
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains(":5") && e.contains("sources.legacy.tables.requests") && e.contains("not a canonical table"),
            "{e}"
        );
        let e = parse(&text.replace("requests]", "branches]")).unwrap_err().to_string();
        assert!(e.contains("[organisation]"), "{e}");
        let e = parse(&text.replace("requests]", "intake_requests]").replace("select 1", " ")).unwrap_err().to_string();
        assert!(e.contains(":6") && e.contains("sources.legacy.tables.intake_requests.query"), "{e}");
        let e = parse(&text.replace("path", "time_zone = \"Moscow\"\npath")).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.legacy.time_zone"), "{e}");
        let e = parse(&text.replace("query = ", "qery = ")).unwrap_err().to_string();
        assert!(e.contains(":6: key `sources.legacy.tables.requests.qery`: unknown field `qery`"), "{e}");
        parse(&text.replace("requests]", "intake_requests]")).unwrap();
    }

    #[test]
    fn sql_tables_columns_and_values_are_validated_with_line_and_key() {
        let head = "[sources.legacy]\nkind = \"sqlite\"\npath = \"l.db\"\n\n[sources.legacy.tables.deals]\nquery = \"select 1\"\n";
        let ok = format!(
            "{head}[sources.legacy.tables.deals.columns]\ncreated_at = [\"{{engage_date}}\", \"=2020-01-01\"]\n\
             [sources.legacy.tables.deals.values]\nstatus = {{ \"Won\" = \"won\", \"*\" = \"open\" }}\n"
        );
        let c = parse(&ok).unwrap();
        let SourceConfig::Sqlite(s) = &c["legacy"] else { panic!("{c:?}") };
        assert_eq!(s.tables["deals"].needed_columns(), ["source_id", "engage_date"]);
        let e = parse(&ok.replace("created_at = ", "created = ")).unwrap_err().to_string();
        assert!(
            e.contains(":8") && e.contains("sources.legacy.tables.deals.columns.created") && e.contains("not a column"),
            "{e}"
        );
        let e = parse(&ok.replace("created_at = ", "source_id = ")).unwrap_err().to_string();
        assert!(e.contains(":8") && e.contains("as `source_id` in the query"), "{e}");
        let e = parse(&ok.replace("{engage_date}\"", "{engage_date\"")).unwrap_err().to_string();
        assert!(e.contains(":8") && e.contains("without its"), "{e}");
        let e = parse(&ok.replace("\"{engage_date}\", \"=2020-01-01\"", "\"=2020-01-01\", \"{engage_date}\""))
            .unwrap_err()
            .to_string();
        assert!(e.contains(":8") && e.contains("put it last"), "{e}");
        let e = parse(&ok.replace("status = {", "state = {")).unwrap_err().to_string();
        assert!(e.contains(":10") && e.contains("sources.legacy.tables.deals.values.state"), "{e}");
    }

    #[test]
    fn sql_server_sources_need_a_url_and_refuse_a_path() {
        let head = "[sources.crm_db]\nkind = \"postgres\"\n";
        let tables = "\n[sources.crm_db.tables.deals]\nquery = \"select 1\"\n";
        let ok = parse(&format!("{head}url_env = \"CRM_DB_URL\"{tables}")).unwrap();
        let SourceConfig::Postgres(c) = &ok["crm_db"] else { panic!("{ok:?}") };
        assert_eq!((c.url_env.as_deref(), c.path.as_ref()), (Some("CRM_DB_URL"), None));
        assert_eq!(ok["crm_db"].kind(), "postgres");

        let e = parse(&format!("{head}path = \"crm.db\"\nurl_env = \"CRM_DB_URL\"{tables}")).unwrap_err().to_string();
        assert!(e.contains(":3") && e.contains("sources.crm_db.path"), "{e}");
        assert!(e.contains("source `crm_db`") && e.contains("sqlite") && e.contains("url_env"), "{e}");

        let e = parse(&format!("{head}{tables}")).unwrap_err().to_string();
        assert!(e.contains("sources.crm_db.url_env") && e.contains("postgres://"), "{e}");

        let both = format!("{head}url_env = \"X\"\nurl = \"postgres://u:pw@h/db\"{tables}");
        let e = parse(&both).unwrap_err().to_string();
        assert!(e.contains(":4") && e.contains("sources.crm_db.url") && e.contains("both"), "{e}");
        assert!(!e.contains("pw@"), "a URL in the file is never echoed: {e}");

        let wrong_scheme = format!("{head}url = \"mysql://u:hunter2@h/db\"{tables}");
        let e = parse(&wrong_scheme).unwrap_err().to_string();
        assert!(e.contains("`mysql`") && e.contains("postgres://") && !e.contains("hunter2"), "{e}");
        let e = parse(&format!("{head}url_env = \"1 BAD\"{tables}")).unwrap_err().to_string();
        assert!(e.contains("sources.crm_db.url_env") && e.contains("not an environment variable"), "{e}");

        let mysql = format!(
            "[sources.m]\nkind = \"mysql\"\nurl = \"mariadb://root@127.0.0.1/test\"{}",
            tables.replace("crm_db", "m")
        );
        let parsed = parse(&mysql).unwrap();
        let SourceConfig::Mysql(c) = &parsed["m"] else { panic!() };
        assert_eq!(format!("{:?}", c.url), "Some(<redacted>)");

        let sqlite = "[sources.l]\nkind = \"sqlite\"\npath = \"l.db\"\nurl_env = \"X\"\n[sources.l.tables.deals]\nquery = \"select 1\"\n";
        let e = parse(sqlite).unwrap_err().to_string();
        assert!(e.contains(":4") && e.contains("sources.l.url_env") && e.contains("source `l`"), "{e}");
        let e = parse(&sqlite.replace("path = \"l.db\"\nurl_env = \"X\"\n", "")).unwrap_err().to_string();
        assert!(e.contains("sources.l.path"), "{e}");
    }
}
