//! The Arrow type and doc of every column the endpoints read or answer: canonical tables
//! (`schema.rs`), built-in models and query files (their `-- column` docs), each model and query
//! file planned once over empty tables. The OpenAPI schemas of answer rows derive from these,
//! so a column's type or doc is written once, where its SQL is.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, SchemaRef};
use dealhouse_warehouse::datafusion::datasource::MemTable;
use dealhouse_warehouse::schema::canonical_tables;
use dealhouse_warehouse::{models, session};
use serde_json::{Value, json};

use crate::route::schema;

/// One table's output schema and its column docs.
struct Table {
    schema: SchemaRef,
    docs: BTreeMap<String, String>,
}

/// Marks a column [`of_query`] could not type or document, for the unit tests that check every
/// answer column has both.
pub const UNKNOWN: &str = "(unknown column)";

/// Canonical tables and models, then query files, by name.
static TABLES: OnceLock<(BTreeMap<String, Table>, BTreeMap<String, Table>)> = OnceLock::new();

/// Plans every built-in model over empty canonical tables, in dependency order, then every
/// query file over them (once per process). Must have run before [`of_query`] answers: the
/// OpenAPI handler awaits it.
pub async fn load() -> crate::Result<()> {
    if TABLES.get().is_some() {
        return Ok(());
    }
    let ctx = session::new_context();
    let mut out = BTreeMap::new();
    let canonical = canonical_tables();
    for def in &canonical {
        let schema = def.schema();
        ctx.register_table(def.name, Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?))?;
        let docs = def.columns.iter().map(|c| (c.name.to_string(), c.doc.to_string())).collect();
        out.insert(def.name.to_string(), Table { schema, docs });
    }
    // The models' build parameters (their values do not change any type).
    ctx.register_table(models::PARAMS_TABLE, models::params_table(&Default::default())?)?;
    let all = models::load_models(None)?;
    let base: BTreeSet<String> = canonical.iter().map(|t| t.name.to_string()).collect();
    for level in models::plan(&all, &base)? {
        for name in level {
            let Some(model) = all.get(&name) else { continue };
            let df = ctx.sql(&model.sql).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            ctx.register_table(name.as_str(), Arc::new(MemTable::try_new(schema.clone(), vec![vec![]])?))?;
            out.insert(name, Table { schema, docs: model.columns.iter().cloned().collect() });
        }
    }
    let files = crate::queries::files()
        .map_err(|e| crate::Error::QueryFile { origin: "api/queries".into(), message: e.to_string() })?;
    let mut planned = BTreeMap::new();
    for (name, file) in files {
        let df = ctx.sql(&file.schema_text()?).await?;
        planned.insert(name.as_str(), Arc::new(df.schema().as_arrow().clone()));
    }
    let mut queries = BTreeMap::new();
    for (name, schema) in &planned {
        let docs = schema
            .fields()
            .iter()
            .filter_map(|f| query_doc(&out, files, name, f.name(), 0).map(|d| (f.name().clone(), d)))
            .collect();
        queries.insert(name.to_string(), Table { schema: schema.clone(), docs });
    }
    // A concurrent first call may have set it already: the same result.
    let _ = TABLES.set((out, queries));
    Ok(())
}

/// The doc of a query file's output column: its own `-- column` line, else its `-- column *`
/// line; a `= TABLE[.COLUMN]` doc is that column's doc (a table's or another query file's).
fn query_doc(
    tables: &BTreeMap<String, Table>,
    files: &BTreeMap<String, crate::queries::QueryFile>,
    query: &str,
    column: &str,
    depth: usize,
) -> Option<String> {
    let file = files.get(query)?;
    let find = |c: &str| file.columns.iter().find(|(n, _)| n == c).map(|(_, d)| d.as_str());
    let doc = find(column).or_else(|| find("*"))?;
    let Some(target) = doc.strip_prefix('=') else {
        return Some(doc.to_string()).filter(|d| !d.is_empty());
    };
    let (table, other) = target.trim().split_once('.').unwrap_or((target.trim(), column));
    if let Some(t) = tables.get(table) {
        return t.docs.get(other).cloned().filter(|d| !d.is_empty());
    }
    // Another query file; a chain this long is a cycle.
    (depth < 8).then(|| query_doc(tables, files, table, other, depth + 1)).flatten()
}

/// The Arrow schema of every canonical table and built-in model, planned over empty tables:
/// what the query files' `.slt` fixtures are cast to.
pub async fn input_schemas() -> crate::Result<BTreeMap<String, SchemaRef>> {
    load().await?;
    Ok(TABLES.get().map(|(t, _)| t.iter().map(|(n, t)| (n.clone(), t.schema.clone())).collect()).unwrap_or_default())
}

/// `(column, JSON schema)` of these columns of a canonical table or model, as [`of_query`] types
/// them (the endpoints answer query files' columns; tests look at the tables'.)
#[cfg(test)]
pub fn of(table: &str, columns: &[&'static str]) -> Vec<(&'static str, Value)> {
    let found = TABLES.get().and_then(|(t, _)| t.get(table));
    columns.iter().map(|c| (*c, column(found, table, c))).collect()
}

/// `(column, JSON schema)` of every output column of the query file `name`, in its SELECT's
/// order: the JSON type from the Arrow type (decimals as exact strings, instants as date-time
/// and days as date strings), nullable when the field is, the description from the column's doc.
pub fn of_query(name: &str) -> Vec<(String, Value)> {
    let Some(found) = TABLES.get().and_then(|(_, q)| q.get(name)) else {
        // Only when `load` failed (logged there) or the name is wrong (a unit test checks).
        return vec![("?".into(), json!({ "description": format!("{UNKNOWN} query file {name}") }))];
    };
    found.schema.fields().iter().map(|f| (f.name().clone(), column(Some(found), name, f.name()))).collect()
}

fn column(found: Option<&Table>, table: &str, c: &str) -> Value {
    let field = found.and_then(|t| t.schema.field_with_name(c).ok().map(|f| (t, f)));
    let Some((t, f)) = field else {
        return json!({ "description": format!("{UNKNOWN} {table}.{c}") });
    };
    let Some(doc) = t.docs.get(c) else {
        return json!({ "description": format!("{UNKNOWN} {table}.{c} (undocumented)") });
    };
    let typed = json_type(f.data_type(), &capitalized(doc));
    if f.is_nullable() { schema::nullable(typed) } else { typed }
}

fn json_type(t: &DataType, description: &str) -> Value {
    match t {
        DataType::Decimal128(..) | DataType::Decimal256(..) => schema::decimal(description),
        DataType::Timestamp(..) => schema::timestamp(description),
        DataType::Date32 | DataType::Date64 => schema::date(description),
        DataType::Boolean => schema::boolean(description),
        t if t.is_integer() => schema::int(description),
        t if t.is_floating() => schema::num(description),
        _ => schema::text(description),
    }
}

/// A column doc as a sentence; one that starts with a column name (`won / closed` is not, but
/// `deals_won / deals_reached` is) keeps the name's case.
fn capitalized(doc: &str) -> String {
    let first_word = doc.split_whitespace().next().unwrap_or_default();
    let mut chars = doc.chars();
    match chars.next() {
        Some(first) if !first_word.contains('_') => {
            format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.'))
        }
        Some(_) => format!("{}.", doc.trim_end_matches('.')),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn model_columns_have_their_arrow_types_and_docs() {
        load().await.unwrap();
        let cols: BTreeMap<&str, Value> =
            of("mart_intake_request", &["request_id", "age_days", "unified", "month"]).into_iter().collect();
        assert_eq!(cols["request_id"]["type"], "string");
        assert_eq!(cols["request_id"]["description"], "The request.");
        assert_eq!(cols["age_days"]["type"], json!(["integer", "null"]));
        assert_eq!(cols["unified"]["type"], "boolean");
        assert_eq!(cols["month"]["format"], "date");
        let money: BTreeMap<&str, Value> = of("mart_deal_board", &["amount", "entered_stage_at"]).into_iter().collect();
        assert_eq!(money["amount"]["format"], "decimal");
        assert_eq!(money["entered_stage_at"]["format"], "date-time");
    }

    /// Every query file plans over the models' empty tables (`load` fails otherwise), each of
    /// its output columns has a doc (its own, a `*` one, or one it refers to), and every
    /// `-- column` line names an output column.
    #[tokio::test]
    async fn every_query_file_plans_and_documents_every_column() {
        load().await.unwrap();
        let files = crate::queries::files().unwrap();
        for (name, file) in files {
            let cols = of_query(name);
            for (c, v) in &cols {
                assert!(!v.to_string().contains(UNKNOWN), "{}: column `{c}` has no doc: {v}", file.origin);
            }
            for (c, _) in &file.columns {
                assert!(
                    c == "*" || cols.iter().any(|(o, _)| o == c),
                    "{}: documents `{c}`, which it does not answer",
                    file.origin
                );
            }
        }
        let funnel: BTreeMap<String, Value> = of_query("funnel").into_iter().collect();
        assert_eq!(funnel["amount_reached"]["format"], "decimal");
        assert_eq!(funnel["step_conversion"]["description"], "deals_advanced / deals_reached.");
        // A `= table` doc is the table's.
        let deals: BTreeMap<String, Value> = of_query("deals").into_iter().collect();
        assert_eq!(deals["deal_id"]["description"], of("fct_deal", &["deal_id"])[0].1["description"]);
    }
}
