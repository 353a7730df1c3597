//! The OpenAPI 3.1 document (`GET /api/v1/openapi.json`), written from the same route table that
//! registers the dashboard-data handlers, plus entries for the routes `lib.rs` registers itself.

use axum::Json;
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::endpoints::{JSON, Route};
use crate::query::{Kind, Param};

/// The document's own route.
pub const PATH: &str = "/api/v1/openapi.json";

/// Every route the server has: those `lib.rs` registers by hand (documented here), the
/// dashboard-data routes, and this document.
pub fn all_routes() -> Vec<Route> {
    let mut out = vec![
        Route {
            method: "get",
            path: "/",
            tag: "dashboards",
            content_type: "text/html",
            request_body: None,
            summary: "The dashboards page",
            description: "The single-page dashboards UI (assets are embedded; works offline).",
            params: Vec::new,
            response: || schema::text("HTML."),
            handler: None,
        },
        Route {
            method: "get",
            path: "/assets/{path}",
            tag: "dashboards",
            content_type: "application/octet-stream",
            request_body: None,
            summary: "A dashboards asset",
            description: "A static file of the dashboards UI by its path (404 JSON error when there is none).",
            params: Vec::new,
            response: || json!({ "type": "string", "format": "binary" }),
            handler: None,
        },
        Route {
            method: "get",
            path: "/healthz",
            tag: "ops",
            content_type: "text/plain",
            request_body: None,
            summary: "Liveness",
            description: "Answers `ok` while the server runs.",
            params: Vec::new,
            response: || schema::text("`ok`."),
            handler: None,
        },
        Route {
            method: "get",
            path: "/api/v1/tables",
            tag: "sql",
            content_type: JSON,
            request_body: None,
            summary: "Every warehouse table with its version and row count",
            description: "Canonical tables and model outputs (Delta tables).",
            params: Vec::new,
            response: || {
                schema::obj(&[(
                    "tables",
                    schema::array(schema::obj(&[
                        ("name", schema::text("Table name (query it by this name).")),
                        ("version", schema::int("Delta table version.")),
                        ("rows", schema::int("Row count.")),
                    ])),
                )])
            },
            handler: None,
        },
        Route {
            method: "post",
            path: "/api/v1/sql",
            tag: "sql",
            content_type: JSON,
            request_body: Some(|| {
                schema::obj(&[("sql", schema::text("One read-only statement (SELECT, WITH, EXPLAIN, SHOW TABLES)."))])
            }),
            summary: "Read-only SQL over every table",
            description: "Runs one read-only statement; at most 10000 rows (`truncated` says when there were more). \
                Decimals come as exact strings. DDL, DML, COPY and SET are refused with 400 `bad_sql`.",
            params: Vec::new,
            response: || {
                schema::obj(&[
                    ("columns", schema::array(schema::text("Column name."))),
                    ("rows", schema::array(json!({ "type": "object", "description": "Column name -> value." }))),
                    ("truncated", schema::boolean("True when rows were cut at 10000.")),
                ])
            },
            handler: None,
        },
        Route {
            method: "get",
            path: "/readyz",
            tag: "ops",
            content_type: "text/plain",
            request_body: None,
            summary: "Readiness",
            description: "200 when the warehouse can be read, else 503 JSON `not_ready`.",
            params: Vec::new,
            response: || schema::text("`ready`."),
            handler: None,
        },
        Route {
            method: "get",
            path: "/metrics",
            tag: "ops",
            content_type: "text/plain",
            request_body: None,
            summary: "Prometheus metrics (admin token)",
            description: "Requests by route and status, latency histograms, SQL durations by outcome, running \
                queries, table versions, rows and last commits, in Prometheus text format.",
            params: Vec::new,
            response: || schema::text("Prometheus text exposition format."),
            handler: None,
        },
        Route {
            method: "post",
            path: "/api/v1/intake/{source}",
            tag: "intake",
            content_type: JSON,
            request_body: Some(|| {
                json!({
                    "description": "One JSON object, an array of objects, or JSON Lines; keys are the canonical \
                        column names of the push source's table (`source_id` required); at most 10000 records."
                })
            }),
            summary: "Push records to a `kind = \"push\"` source",
            description: "The records are committed to the source's table before the answer; a replayed \
                `source_id` replaces the stored record. Rows that do not map go to `quarantine`. 400 `bad_body` \
                when the body is not JSON objects (nothing stored), 404 `unknown_source`.",
            params: Vec::new,
            response: || {
                schema::obj(&[
                    ("table", schema::text("Canonical table written.")),
                    ("received", schema::int("Records received.")),
                    ("inserted", schema::int("Records new to the table.")),
                    ("updated", schema::int("Records that replaced a stored version.")),
                    ("quarantined", schema::int("Records quarantined with their reason.")),
                ])
            },
            handler: None,
        },
        Route {
            method: "get",
            path: PATH,
            tag: "ops",
            content_type: JSON,
            request_body: None,
            summary: "This OpenAPI document",
            description: "OpenAPI 3.1 description of every route.",
            params: Vec::new,
            response: || json!({ "type": "object", "description": "An OpenAPI 3.1 document." }),
            handler: Some(|| get(handler)),
        },
    ];
    out.extend(crate::endpoints::routes());
    // The dashboards' routes, registered by `dashboards::router` (so without handlers here).
    out.extend(crate::dashboards::documented());
    out
}

async fn handler() -> Json<Value> {
    Json(document())
}

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
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in all_routes() {
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.insert(r.method.to_string(), operation(&r));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "dealhouse API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Sales analytics over the dealhouse warehouse: semantic-layer metrics, dashboard data, \
                read-only SQL. Money is an exact decimal string in RUB; months are first days (YYYY-MM-01) in \
                answers and YYYY-MM in filters; local days and months use the branch's time zone.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": schema::obj(&[
                    ("code", schema::text("Stable machine-readable code (unknown_parameter, unknown_measure, bad_parameter, ...).")),
                    ("message", schema::text("What was wrong and how to fix it.")),
                ]),
            },
        },
    })
}

/// JSON-schema builders for the route table's answers.
pub mod schema {
    use serde_json::{Map, Value, json};

    /// An object with these properties, all present (nullable ones say so in their type).
    pub fn obj(props: &[(&str, Value)]) -> Value {
        let mut properties = Map::new();
        for (k, v) in props {
            properties.insert((*k).to_string(), v.clone());
        }
        let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
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
