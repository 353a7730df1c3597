//! Leads, companies, users and events: the lists the deal streams read.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::params::{Query, has_id, in_range, int_field, page_body, page_of, sort};
use super::{AmoCrmSimulatorData, SimulatorState, hal, with_self};
use crate::amocrm::wire::{COMPANIES, EVENTS, LEADS, MAX_EVENTS_LIMIT, MAX_LIMIT, USERS};

pub(super) fn leads(state: &SimulatorState, data: &AmoCrmSimulatorData, q: &Query) -> Response {
    let range = match q.range("updated_at") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let only_deleted = q.with("only_deleted");
    let ids = q.list("filter[id]");
    let contacts = q.with("contacts");
    let mut rows: Vec<Value> = data
        .leads
        .values()
        .filter(|l| has_id(l, &ids))
        .filter(|l| l.get("is_deleted").and_then(Value::as_bool).unwrap_or(false) == only_deleted)
        .filter(|l| in_range(int_field(l, "updated_at"), range))
        .map(|l| {
            if only_deleted {
                return with_self(
                    state,
                    "leads",
                    &json!({"id": l["id"], "updated_at": l["updated_at"], "is_deleted": true}),
                );
            }
            let mut lead = with_self(state, "leads", l);
            let embedded = &mut lead["_embedded"];
            if !embedded.is_object() {
                *embedded = json!({});
            }
            for k in ["tags", "companies"] {
                if embedded.get(k).is_none() {
                    embedded[k] = json!([]);
                }
            }
            if !contacts && let Value::Object(m) = embedded {
                m.remove("contacts");
            }
            lead
        })
        .collect();
    if let Err(r) = sort(&mut rows, q) {
        return r;
    }
    page_of(state, LEADS, "leads", q, &rows, MAX_LIMIT)
}

pub(super) fn companies(state: &SimulatorState, data: &AmoCrmSimulatorData, q: &Query) -> Response {
    let range = match q.range("updated_at") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let contacts = q.with("contacts");
    let ids = q.list("filter[id]");
    let mut rows: Vec<Value> = data
        .companies
        .values()
        .filter(|c| has_id(c, &ids))
        .filter(|c| in_range(int_field(c, "updated_at"), range))
        .map(|c| {
            let mut company = with_self(state, "companies", c);
            if !contacts && let Some(Value::Object(m)) = company.get_mut("_embedded") {
                m.remove("contacts");
            }
            company
        })
        .collect();
    if let Err(r) = sort(&mut rows, q) {
        return r;
    }
    page_of(state, COMPANIES, "companies", q, &rows, MAX_LIMIT)
}

pub(super) fn users(state: &SimulatorState, data: &AmoCrmSimulatorData, q: &Query) -> Response {
    let (page, limit) = match q.paging(MAX_LIMIT) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let rows: Vec<Value> = data.users.values().map(|u| with_self(state, "users", u)).collect();
    let Some(mut body) = page_body(state, USERS, "users", q, &rows, page, limit) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    // The users list also tells the total and the page count.
    body["_total_items"] = json!(rows.len());
    body["_page_count"] = json!(rows.len().div_ceil(limit));
    hal(body)
}

pub(super) fn events(state: &SimulatorState, data: &AmoCrmSimulatorData, q: &Query) -> Response {
    let range = match q.range("created_at") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let types = q.list("filter[type]");
    let entities = q.list("filter[entity]");
    let ids = q.list("filter[id]");
    let mut rows: Vec<Value> = data
        .events
        .values()
        .filter(|e| has_id(e, &ids))
        .filter(|e| {
            types.is_empty() || e.get("type").and_then(Value::as_str).is_some_and(|t| types.iter().any(|x| x == t))
        })
        .filter(|e| {
            entities.is_empty()
                || e.get("entity_type").and_then(Value::as_str).is_some_and(|t| entities.iter().any(|x| x == t))
        })
        .filter(|e| in_range(int_field(e, "created_at"), range))
        .map(|e| with_self(state, "events", e))
        .collect();
    // Newest first, as the account lists events.
    rows.sort_by(|a, b| {
        let key = |r: &Value| (int_field(r, "created_at"), r.get("id").and_then(Value::as_str).map(str::to_string));
        key(b).cmp(&key(a))
    });
    page_of(state, EVENTS, "events", q, &rows, MAX_EVENTS_LIMIT)
}
