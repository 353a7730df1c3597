//! One documented route: the type every module describes its routes with, and the JSON-schema
//! builders for their answers. `routes.rs` lists them (registers and documents each once);
//! `openapi.rs` renders them.

use axum::routing::MethodRouter;
use serde_json::Value;

use crate::AppState;
use crate::query::Param;

/// Media type of the JSON answers.
pub const JSON: &str = "application/json";

/// One route. The same entry registers the handler and writes its OpenAPI operation.
pub struct Route {
    /// HTTP method, lowercase as OpenAPI spells it.
    pub method: &'static str,
    /// Path in OpenAPI's `{param}` syntax (also axum's, unless `served_at` says otherwise).
    pub path: &'static str,
    /// The path axum matches when it differs from the documented one (a catch-all `{*path}`).
    pub served_at: Option<&'static str>,
    /// Grouping tag in the document.
    pub tag: &'static str,
    /// Media type of the 200 answer.
    pub content_type: &'static str,
    /// JSON schema of the request body, for routes that take one.
    pub request_body: Option<fn() -> Value>,
    /// One line.
    pub summary: &'static str,
    /// What it answers and how its numbers are defined.
    pub description: &'static str,
    /// Query parameters.
    pub params: fn() -> Vec<Param>,
    /// JSON schema of the 200 answer.
    pub response: fn() -> Value,
    /// The handler, with its method.
    pub handler: fn() -> MethodRouter<AppState>,
}

impl Route {
    /// The path the router registers.
    pub fn axum_path(&self) -> &'static str {
        self.served_at.unwrap_or(self.path)
    }
}

/// JSON-schema builders for the route table's answers.
pub mod schema {
    use serde_json::{Map, Value, json};

    /// An object with these properties, all present (nullable ones say so in their type).
    pub fn obj<K: AsRef<str>>(props: &[(K, Value)]) -> Value {
        let mut properties = Map::new();
        for (k, v) in props {
            properties.insert(k.as_ref().to_string(), v.clone());
        }
        let required: Vec<&str> = props.iter().map(|(k, _)| k.as_ref()).collect();
        json!({ "type": "object", "properties": properties, "required": required })
    }

    fn typed(t: &str, description: &str) -> Value {
        json!({ "type": t, "description": description })
    }

    /// Text.
    pub fn text(description: &str) -> Value {
        typed("string", description)
    }

    /// An exact decimal as a string (money).
    pub fn decimal(description: &str) -> Value {
        json!({ "type": "string", "format": "decimal", "pattern": "^-?[0-9]+(\\.[0-9]+)?$", "description": description })
    }

    /// An integer.
    pub fn int(description: &str) -> Value {
        typed("integer", description)
    }

    /// A number.
    pub fn num(description: &str) -> Value {
        typed("number", description)
    }

    /// A boolean.
    pub fn boolean(description: &str) -> Value {
        typed("boolean", description)
    }

    /// A calendar date, YYYY-MM-DD.
    pub fn date(description: &str) -> Value {
        json!({ "type": "string", "format": "date", "description": description })
    }

    /// An instant (UTC).
    pub fn timestamp(description: &str) -> Value {
        json!({ "type": "string", "format": "date-time", "description": description })
    }

    /// The same, or null.
    pub fn nullable(mut v: Value) -> Value {
        if let Some(t) = v.get("type").and_then(Value::as_str).map(str::to_string) {
            v["type"] = json!([t, "null"]);
        }
        v
    }

    /// An array of these.
    pub fn array(items: Value) -> Value {
        json!({ "type": "array", "items": items })
    }

    /// A page of rows: `{total, limit, offset, rows}` plus extra fields.
    pub fn page(row: Value, extra: &[(&str, Value)]) -> Value {
        let mut props = vec![
            ("total", int("Rows matching the filters, over every page.")),
            ("limit", int("Page size.")),
            ("offset", int("Rows skipped.")),
            ("rows", array(row)),
        ];
        props.extend(extra.iter().cloned());
        obj(&props)
    }
}
