//! The dashboards' definitions: `GET /api/v1/dashboards` (the menu) and `/dashboards/{id}` (one
//! definition), from the `dashboards` crate. The data their panels show comes from the
//! endpoints in `endpoints/` and the semantic layer (`measures.rs`).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::route::{JSON, Route, schema as s};
use crate::{ApiError, ErrorCode};

const LIST: &str = "/api/v1/dashboards";
const ONE: &str = "/api/v1/dashboards/{id}";

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: LIST,
            served_at: None,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "The dashboards, in menu order",
            description: "Id, order, title and description (ru and en) of every dashboard defined in \
                dashboards/definitions/*.toml (compiled in).",
            params: Vec::new,
            response: list_schema,
            handler: || get(list),
        },
        Route {
            method: "get",
            path: ONE,
            served_at: None,
            tag: "dashboards",
            content_type: JSON,
            request_body: None,
            summary: "One dashboard's definition",
            description: "The definition file as JSON: panels with their chart type, query (a /api/v1/metrics \
                query or a named endpoint with fixed parameters, the period and the shared filters it takes), \
                fields and drill-down. 404 for an unknown id.",
            params: Vec::new,
            response: || json!({ "type": "object", "description": "See dashboards/src/definition.rs." }),
            handler: || get(one),
        },
    ]
}

fn definitions_or_500() -> Result<&'static [dealhouse_dashboards::Dashboard], ApiError> {
    dealhouse_dashboards::dashboards().map_err(|e| {
        tracing::error!(error = %e, "a dashboard definition is invalid");
        ApiError::internal()
    })
}

async fn list() -> Result<Json<Value>, ApiError> {
    let dashboards: Vec<Value> = definitions_or_500()?
        .iter()
        .map(|d| json!({ "id": d.id, "order": d.order, "title": d.title, "description": d.description }))
        .collect();
    Ok(Json(json!({ "dashboards": dashboards })))
}

async fn one(Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let all = definitions_or_500()?;
    let Some(d) = all.iter().find(|d| d.id == id) else {
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no dashboard `{}`; dashboards: {}", id.chars().take(60).collect::<String>(), ids.join(", ")),
        ));
    };
    Ok(Json(serde_json::to_value(d).unwrap_or(Value::Null)))
}

fn list_schema() -> Value {
    let label = || s::obj(&[("ru", s::text("Russian.")), ("en", s::text("English."))]);
    s::obj(&[(
        "dashboards",
        s::array(s::obj(&[
            ("id", s::text("Id (`#/<id>` in the UI).")),
            ("order", s::int("Menu position.")),
            ("title", label()),
            ("description", label()),
        ])),
    )])
}
