//! The Arrow type and doc of every column the endpoints read: canonical tables (`schema.rs`) and
//! built-in models (their `-- column` docs), each model planned once over empty tables. The
//! OpenAPI answer schemas of rows taken from a table derive from these, so a model's column
//! type or doc is written once, in the model.

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

/// Marks a column [`of`] could not find, for the unit test that checks every documented one.
pub const UNKNOWN: &str = "(unknown column)";

static TABLES: OnceLock<BTreeMap<String, Table>> = OnceLock::new();

/// Plans every built-in model over empty canonical tables, in dependency order (once per
/// process). Must have run before [`of`] answers: the OpenAPI handler awaits it.
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
    // A concurrent first call may have set it already: the same result.
    let _ = TABLES.set(out);
    Ok(())
}

/// `(column, JSON schema)` of these columns of `table`: the JSON type from the Arrow type
/// (decimals as exact strings, instants as date-time and days as date strings), nullable when
/// the field is, the description from the column's doc.
pub fn of(table: &str, columns: &[&'static str]) -> Vec<(&'static str, Value)> {
    let found = TABLES.get().and_then(|t| t.get(table));
    columns
        .iter()
        .map(|c| {
            let field = found.and_then(|t| t.schema.field_with_name(c).ok().map(|f| (t, f)));
            let Some((t, f)) = field else {
                // Only when `load` failed (logged there) or a name is wrong (a unit test checks).
                return (*c, json!({ "description": format!("{UNKNOWN} {table}.{c}") }));
            };
            let doc = t.docs.get(*c).map_or("", String::as_str);
            let typed = json_type(f.data_type(), &capitalized(doc));
            (*c, if f.is_nullable() { schema::nullable(typed) } else { typed })
        })
        .collect()
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

/// A column doc as a sentence.
fn capitalized(doc: &str) -> String {
    let mut chars = doc.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str().trim_end_matches('.')),
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
}
