//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`), rendered from the route table
//! (`routes.rs`): every route the server registers is documented by the same entry.

use serde_json::{Map, Value, json};

use crate::error::ErrorCode;
use crate::query::{Kind, Param};
use crate::route::{JSON, Route, schema};

/// The document's own route.
pub const PATH: &str = "/api/v1/openapi.json";

fn param_schema(kind: Kind) -> Value {
    match kind {
        Kind::Month => json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$", "examples": ["2025-01"] }),
        Kind::Date => json!({ "type": "string", "format": "date" }),
        Kind::List => json!({ "type": "string", "description": "Comma-separated values; the parameter may repeat." }),
        Kind::Integer(max) if max == usize::MAX => json!({ "type": "integer", "minimum": 0 }),
        Kind::Integer(max) => json!({ "type": "integer", "minimum": 0, "maximum": max }),
        Kind::Enum(values) => json!({ "type": "string", "enum": values }),
    }
}

fn parameter(p: &Param) -> Value {
    json!({
        "name": p.name,
        "in": "query",
        "required": p.required,
        "description": p.description,
        "schema": param_schema(p.kind),
    })
}

fn operation(r: &Route) -> Value {
    let mut parameters: Vec<Value> = (r.params)().iter().map(parameter).collect();
    // OpenAPI requires every `{name}` in a path to be declared as a path parameter.
    for segment in r.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }));
        }
    }
    let mut op = json!({
        "tags": [r.tag],
        "summary": r.summary,
        "description": r.description,
        "operationId": operation_id(r),
        "parameters": parameters,
        "responses": {
            "200": { "description": "OK", "content": { r.content_type: { "schema": (r.response)() } } },
            "400": error_response("Bad request: an unknown or malformed parameter; the message lists the valid choices."),
            "500": error_response("Internal error (details in the server log)."),
        },
    });
    if let (Some(body), Some(o)) = (r.request_body, op.as_object_mut()) {
        o.insert("requestBody".into(), json!({ "required": true, "content": { JSON: { "schema": body() } } }));
    }
    op
}

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { JSON: { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn operation_id(r: &Route) -> String {
    let path: String = r
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
        .collect::<Vec<_>>()
        .join("_");
    format!("{}_{}", r.method, if path.is_empty() { "index".into() } else { path })
}

/// The whole document.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.insert(r.method.to_string(), operation(r));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dealhouse API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sales analytics over the dealhouse warehouse: semantic-layer metrics, dashboard data, \
                read-only SQL. Money is an exact decimal string in the reporting currency (`currency` of \
                /api/v1/dimensions, RUB unless the project sets another); months are first days (YYYY-MM-01) in \
                answers and YYYY-MM in filters; local days and months use the branch's time zone.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": schema::obj(&[
                    ("code", error_codes()),
                    ("message", schema::text("What was wrong and how to fix it.")),
                ]),
            },
        },
    })
}

/// The `code` of the `Error` schema: every [`ErrorCode`], so the document cannot drift from them.
fn error_codes() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "string",
        "enum": codes,
        "description": "Stable machine-readable code (unknown_parameter, unknown_measure, bad_parameter, ...).",
    })
}
