//! The route table: every route the server has, in one list. Each entry both registers its
//! handler ([`router`]) and documents it (`openapi.rs` renders the same list), so nothing is
//! served undocumented. The modules listed here implement and describe their routes; only this
//! module knows them all.

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;
use crate::endpoints::{audit, board, clients, deal_card, dimensions, migration, sales, team};
use crate::route::{JSON, Route};
use crate::{assets, columns, dashboards, health, intake, measures, openapi, prometheus, sql};

/// Every route, in the order the OpenAPI document lists them.
pub fn all() -> Vec<Route> {
    let mut out = vec![];
    out.extend(assets::routes());
    out.extend(health::routes());
    out.extend(sql::routes());
    out.extend(prometheus::routes());
    out.extend(intake::routes());
    out.push(Route {
        method: "get",
        path: openapi::PATH,
        served_at: None,
        tag: "ops",
        content_type: JSON,
        request_body: None,
        summary: "This OpenAPI document",
        description: "OpenAPI 3.1 description of every route.",
        params: Vec::new,
        response: || json!({ "type": "object", "description": "An OpenAPI 3.1 document." }),
        handler: || get(openapi_document),
    });
    out.extend(measures::routes());
    out.extend(sales::routes());
    out.extend(clients::routes());
    out.extend(team::routes());
    out.extend(dimensions::routes());
    out.extend(dashboards::routes());
    out.extend(board::routes());
    out.extend(migration::routes());
    out.extend(deal_card::routes());
    out.extend(crate::alerts::routes());
    out.extend(audit::routes());
    out
}

/// Every route of the table, registered with its handler.
pub fn router() -> Router<AppState> {
    all().into_iter().fold(Router::new(), |router, r| router.route(r.axum_path(), (r.handler)()))
}

async fn openapi_document() -> Json<Value> {
    // Answer schemas of rows read from a model take the model's column types and docs.
    if let Err(e) = columns::load().await {
        tracing::error!(error = %e, "cannot plan the models for the OpenAPI document's column types");
    }
    Json(openapi::document(&all()))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dealhouse_dashboards::{Filter, Period};

    use super::*;
    use crate::measures::MetricsQuery;
    use crate::query::Args;

    #[tokio::test]
    async fn every_route_is_registered_once_and_documented() {
        columns::load().await.unwrap();
        let doc = openapi::document(&all());
        // Every column taken from a table exists there (an unknown one has no type).
        let text = doc.to_string();
        assert!(!text.contains(columns::UNKNOWN), "a documented column is not in its table: {text}");
        let mut seen = BTreeSet::new();
        for r in all() {
            assert!(seen.insert((r.method, r.path)), "{} {} is in the table twice", r.method, r.path);
            assert!(
                doc["paths"][r.path][r.method].is_object(),
                "{} {} is not in the OpenAPI document",
                r.method,
                r.path
            );
        }
        // Building the router panics on a route registered twice or a malformed path.
        let _ = router();
    }

    /// The query parameters the browser sends for a panel, with sample shared-filter values.
    fn panel_params(q: &dealhouse_dashboards::Query) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = q.params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if !q.measures.is_empty() {
            out.push(("measures".into(), q.measures.join(",")));
            if !q.by.is_empty() {
                out.push(("by".into(), q.by.join(",")));
            }
        }
        if q.period != Period::None {
            out.push(("from".into(), "2025-01".into()));
            out.push(("to".into(), "2025-03".into()));
        }
        for f in &q.filters {
            let name = match f {
                Filter::Holding => "holding",
                Filter::Branch => "branch",
                Filter::Manager => "manager",
                Filter::Pipeline => "pipeline",
            };
            out.push((name.into(), "x".into()));
        }
        out
    }

    /// Every panel's query is one the API accepts: its endpoint exists, its parameters (fixed
    /// and the shared filters it declares) are documented for that endpoint, and a metrics query
    /// resolves against the semantic layer (measures, dimensions, required and excluded ones).
    #[test]
    fn every_panel_query_is_accepted_by_the_api() {
        let routes = all();
        let catalog = crate::semantic::catalog().unwrap();
        for d in dealhouse_dashboards::dashboards().unwrap() {
            for p in &d.panels {
                let at = format!("{}.toml panel `{}`", d.id, p.id);
                let pairs = panel_params(&p.query);
                match &p.query.endpoint {
                    Some(e) => {
                        let path = format!("/api/v1/{e}");
                        let route = routes
                            .iter()
                            .find(|r| r.path == path && r.method == "get")
                            .unwrap_or_else(|| panic!("{at}: no endpoint {path}"));
                        Args::parse(&path, pairs, &(route.params)()).unwrap_or_else(|e| panic!("{at}: {}", e.message));
                    }
                    None => {
                        let args = Args::parse(measures::PATH, pairs, &measures::params())
                            .unwrap_or_else(|e| panic!("{at}: {}", e.message));
                        MetricsQuery::resolve(catalog, &args).unwrap_or_else(|e| panic!("{at}: {}", e.message));
                    }
                }
            }
        }
    }
}
