//! The query files: every SQL statement an endpoint runs, one `api/queries/**/NAME.sql` file
//! each (compiled in), named by its stem. Handlers parse their parameters, [`bind`] a query file
//! with them and page the rows; they hold no SQL. Each file is pinned by `.slt` cases
//! (`api/tests/slt`), and the OpenAPI schema of its rows is its planned Arrow schema with its
//! `-- column` docs (`columns.rs`).
//!
//! A query file is a model file's format (`warehouse::models`: the first comment line describes
//! it, `-- column NAME: doc` documents each output column) plus how request parameters enter it:
//!
//! ```sql
//! -- The deals behind any aggregate.
//! -- filter deals: d.branch_id in :branch
//! -- filter deals: {period} >= :from
//! -- choice period: created = d.created_month, closed = d.closed_month
//! -- column *: = fct_deal
//! -- column client_name: the client's name
//! select d.*, c.name as client_name from fct_deal d left join clients c using (client_id)
//! where {deals}
//! ```
//!
//! - `:param` is the request parameter's value, always a bound parameter (`$n`), never text:
//!   after `in` a list parameter becomes `($1, $2, ...)`; elsewhere a list stands for its first
//!   value; months and days are dates, integers `bigint`; an absent parameter is a typed null.
//! - `-- filter SLOT: CONDITION` lines are and-ed into `{SLOT}`, each only when every parameter
//!   it names is given (`true` when none is), so an absent filter costs nothing.
//! - `-- choice PARAM: value = sql, ...` puts the fragment chosen by an enum parameter at
//!   `{PARAM}` (the first when absent): sort columns, which month a period compares.
//! - `{query.NAME}` is another query file (with the same parameters) as a subquery, so a page
//!   and its totals read one selection; `{tables.NAME}` is the semantic layer's table of that
//!   name (`metrics.toml`), so a set of rows is defined once.
//! - `-- column NAME: = TABLE[.COLUMN]` takes the doc of a table's or query file's column;
//!   `-- column *: = TABLE` does so for every column not documented otherwise.

mod render;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use dealhouse_warehouse::datafusion::common::ScalarValue;
use dealhouse_warehouse::models::Model;
use rust_embed::RustEmbed;
use serde_json::Value;

use crate::query::{Args, Page, Sql};
use crate::{ApiError, Error};
use dealhouse_warehouse::session::QuerySession;

#[cfg(test)]
use render::params_of;

#[derive(RustEmbed)]
#[folder = "queries/"]
struct Files;

/// One query file, parsed.
#[derive(Debug, Clone)]
pub struct QueryFile {
    /// The file stem.
    pub name: String,
    /// `queries/sales/funnel.sql`.
    pub origin: String,
    /// The whole file, slots and parameters unfilled.
    text: String,
    /// The first header line.
    pub description: String,
    /// `-- column NAME: doc` lines (a doc may be a `= TABLE[.COLUMN]` reference).
    pub columns: Vec<(String, String)>,
    /// `-- filter SLOT: CONDITION` lines, by slot, in file order.
    filters: BTreeMap<String, Vec<String>>,
    /// `-- choice PARAM: value = fragment, ...`, by parameter, the default first.
    choices: BTreeMap<String, Vec<(String, String)>>,
}

/// Every query file, parsed once (a bad file is a build mistake the unit tests catch; the
/// server logs it and answers 500 where it is needed).
pub fn files() -> Result<&'static BTreeMap<String, QueryFile>, &'static str> {
    static FILES: OnceLock<Result<BTreeMap<String, QueryFile>, String>> = OnceLock::new();
    FILES.get_or_init(|| load().map_err(|e| e.to_string())).as_ref().map_err(String::as_str)
}

fn load() -> Result<BTreeMap<String, QueryFile>, Error> {
    let mut out = BTreeMap::new();
    for path in Files::iter().filter(|p| p.ends_with(".sql")) {
        let Some(file) = Files::get(&path) else { continue };
        let origin = format!("api/queries/{path}");
        let text = String::from_utf8(file.data.into_owned())
            .map_err(|_| Error::QueryFile { origin: origin.clone(), message: "not UTF-8".into() })?;
        let name = path.rsplit('/').next().and_then(|f| f.strip_suffix(".sql")).unwrap_or_default().to_string();
        let parsed = QueryFile::parse(&name, &origin, &text)?;
        if let Some(other) = out.insert(name.clone(), parsed) {
            return Err(Error::QueryFile {
                origin,
                message: format!("`{name}` is also {}; query file names are unique", other.origin),
            });
        }
    }
    // The model parser reads the header's docs from the SQL with its slots filled, and checks
    // that statement parses; a slot naming nothing fails in the filling.
    let mut docs = BTreeMap::new();
    for file in out.values() {
        let model = Model::parse(&file.name, &file.origin, &render::schema_text(&out, file)?)?;
        if model.description.is_empty() {
            return Err(Error::QueryFile { origin: file.origin.clone(), message: "no description line".into() });
        }
        docs.insert(file.name.clone(), (model.description, model.columns));
    }
    for (name, (description, columns)) in docs {
        if let Some(file) = out.get_mut(&name) {
            file.description = description;
            file.columns = columns;
        }
    }
    Ok(out)
}

impl QueryFile {
    /// Reads the header's `filter` and `choice` lines; docs come from the model parser later.
    fn parse(name: &str, origin: &str, text: &str) -> Result<Self, Error> {
        let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut choices = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix("--") else {
                if line.trim().is_empty() {
                    continue;
                }
                break;
            };
            let bad = |message: String| Error::QueryFile { origin: format!("{origin}:{}", i + 1), message };
            let comment = comment.trim();
            if let Some(spec) = comment.strip_prefix("filter ") {
                let (slot, condition) = spec
                    .split_once(':')
                    .ok_or_else(|| bad(format!("`-- filter {spec}`: write `-- filter SLOT: CONDITION`")))?;
                let (slot, condition) = (slot.trim(), condition.trim());
                if !is_name(slot) || condition.is_empty() {
                    return Err(bad(format!("`-- filter {spec}`: write `-- filter SLOT: CONDITION`")));
                }
                filters.entry(slot.to_string()).or_default().push(condition.to_string());
            } else if let Some(spec) = comment.strip_prefix("choice ") {
                let usage = || bad(format!("`-- choice {spec}`: write `-- choice PARAM: value = sql, value = sql`"));
                let (param, list) = spec.split_once(':').ok_or_else(usage)?;
                let mut options = vec![];
                for option in render::split_top_level(list) {
                    let (value, fragment) = option.split_once('=').ok_or_else(usage)?;
                    options.push((value.trim().to_string(), fragment.trim().to_string()));
                }
                if !is_name(param.trim()) || options.is_empty() {
                    return Err(usage());
                }
                choices.insert(param.trim().to_string(), options);
            }
        }
        if let Some(slot) = filters.keys().find(|s| choices.contains_key(*s)) {
            return Err(Error::QueryFile {
                origin: origin.into(),
                message: format!("`{{{slot}}}` is both a filter and a choice"),
            });
        }
        Ok(Self {
            name: name.into(),
            origin: origin.into(),
            text: text.into(),
            description: String::new(),
            columns: vec![],
            filters,
            choices,
        })
    }

    /// The SQL with every filter `true`, every choice its default and every parameter null:
    /// what `columns.rs` plans for the answer's schema.
    pub fn schema_text(&self) -> Result<String, Error> {
        let files = files().map_err(|e| Error::QueryFile { origin: self.origin.clone(), message: e.to_string() })?;
        render::schema_text(files, self)
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A query file with the request's parameters bound: its SQL and the values of its `$n`.
#[derive(Debug)]
pub(crate) struct Bound {
    text: String,
    sql: Sql,
}

/// Fills the query file `name` with the request's parameters. An unknown name or a bad file is
/// the server's fault: logged, and a 500 without detail.
pub(crate) fn bind(name: &str, args: &Args) -> Result<Bound, ApiError> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(query = name, error = %e, "query file cannot be used");
        ApiError::internal()
    };
    let files = files().map_err(|e| internal(&e))?;
    let file = files.get(name).ok_or_else(|| internal(&"no such query file"))?;
    let (text, sql) = render::bind(files, file, args).map_err(|e| internal(&e))?;
    Ok(Bound { text, sql })
}

impl Bound {
    /// Every row, as JSON objects.
    pub async fn rows(&self, session: &QuerySession) -> Result<Vec<Value>, ApiError> {
        self.sql.rows(session, &self.text).await
    }

    /// The first row (null when there is none): totals and summaries.
    pub async fn first(&self, session: &QuerySession) -> Result<Value, ApiError> {
        Ok(self.rows(session).await?.into_iter().next().unwrap_or(Value::Null))
    }

    /// One page of the rows and how many there are in all.
    pub async fn page(&self, session: &QuerySession, page: Page) -> Result<(usize, Vec<Value>), ApiError> {
        self.sql.page(session, &self.text, page).await
    }
}

/// For the query files' `.slt` runner (`api/tests/slt.rs`): the SQL of `name` and its bound
/// values for these query parameters, read as a route reads them, with every route's
/// parameters valid (a name no route documents is refused).
pub fn render_for_test(name: &str, pairs: Vec<(String, String)>) -> Result<(String, Vec<ScalarValue>), String> {
    let mut params = vec![];
    for route in crate::routes::all() {
        for p in (route.params)() {
            // A case gives what it tests; no parameter is required of it.
            if !params.iter().any(|q: &crate::query::Param| q.name == p.name) {
                params.push(crate::query::Param { required: false, ..p });
            }
        }
    }
    let args = Args::parse("slt", pairs, &params).map_err(|e| e.message)?;
    let files = files()?;
    let file = files.get(name).ok_or_else(|| format!("no query file `{name}`; there are: {}", names(files)))?;
    let (text, sql) = render::bind(files, file, &args).map_err(|e| e.to_string())?;
    Ok((text, sql.into_params()))
}

/// For the `.slt` runner: the Arrow schema of every canonical table and built-in model (planned
/// over empty tables), which its fixture tables are cast to.
pub async fn input_schemas()
-> Result<BTreeMap<String, dealhouse_warehouse::datafusion::arrow::datatypes::SchemaRef>, Error> {
    crate::columns::input_schemas().await
}

fn names(files: &BTreeMap<String, QueryFile>) -> String {
    files.keys().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_parses_and_names_only_documented_parameters() {
        let files = files().unwrap();
        assert!(files.len() > 10, "query files not embedded: {:?}", files.keys());
        let mut known = std::collections::BTreeSet::new();
        for route in crate::routes::all() {
            for p in (route.params)() {
                known.insert(p.name);
            }
        }
        for f in files.values() {
            for p in params_of(f).unwrap() {
                assert!(known.contains(p.as_str()), "{}: `:{p}` is no route's parameter", f.origin);
            }
        }
    }
}
