//! Tasks and notes: the lists the `activities` stream reads.
//!
//! - `GET /api/v4/tasks`: `filter[updated_at]` (a timestamp = from it, or `[from]`/`[to]`),
//!   `filter[id]`, `filter[responsible_user_id]`, `filter[task_type]` (one id or a list),
//!   `filter[is_completed]` (1 completed, 0 open), `filter[entity_type]` (leads, contacts,
//!   companies, customers) and `filter[entity_id]` (only with `filter[entity_type]`);
//!   `order[created_at|complete_till|id]`.
//! - `GET /api/v4/{leads,contacts,companies}/notes`: `filter[id]`, `filter[note_type]` (one type
//!   or a list, `filter[note_type][]=call_in&filter[note_type][]=call_out`), `filter[updated_at]`;
//!   `order[updated_at|id]`. A note's `_links.self` is `/api/v4/<entity type>/<entity id>/notes/<id>`.
//!
//! Both page like leads (`page`, `limit` at most 250, `_links.next` while rows remain, 204 when
//! a page is empty).

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Value, json};

use super::params::{Query, in_range, int_field, page_of, sort_among};
use super::{AmoCrmSimulatorData, SimulatorState, invalid, with_self};
use crate::amocrm::wire::{MAX_LIMIT, TASKS};

/// Whether `record[field]` is one of `wanted` (an empty list keeps every record).
fn one_of(record: &Value, field: &str, wanted: &[String]) -> bool {
    if wanted.is_empty() {
        return true;
    }
    let value = match record.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return false,
    };
    wanted.contains(&value)
}

pub(super) fn tasks(state: &SimulatorState, data: &AmoCrmSimulatorData, q: &Query) -> Response {
    let range = match q.range("updated_at") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let completed = match q.get("filter[is_completed]").map(str::trim) {
        None => None,
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => return invalid("filter[is_completed]", "This value should be of type bool."),
    };
    let entity_type = q.get("filter[entity_type]").map(str::trim);
    if let Some(t) = entity_type
        && !matches!(t, "leads" | "contacts" | "companies" | "customers")
    {
        return invalid("filter[entity_type]", "The value you selected is not a valid choice.");
    }
    let entity_ids = q.list("filter[entity_id]");
    if !entity_ids.is_empty() && entity_type.is_none() {
        return invalid("filter[entity_id]", "filter[entity_type] is required with filter[entity_id].");
    }
    let (ids, users, types) =
        (q.list("filter[id]"), q.list("filter[responsible_user_id]"), q.list("filter[task_type]"));
    let mut rows: Vec<Value> = data
        .tasks
        .values()
        .filter(|t| in_range(int_field(t, "updated_at"), range))
        .filter(|t| completed.is_none_or(|c| t.get("is_completed").and_then(Value::as_bool) == Some(c)))
        .filter(|t| entity_type.is_none_or(|e| t.get("entity_type").and_then(Value::as_str) == Some(e)))
        .filter(|t| one_of(t, "entity_id", &entity_ids) && one_of(t, "id", &ids))
        .filter(|t| one_of(t, "responsible_user_id", &users) && one_of(t, "task_type_id", &types))
        .map(|t| with_self(state, "tasks", t))
        .collect();
    if let Err(r) = sort_among(&mut rows, q, &["created_at", "complete_till", "id"]) {
        return r;
    }
    page_of(state, TASKS, "tasks", q, &rows, MAX_LIMIT)
}

/// The notes of one entity type (`leads`, `contacts`, `companies`).
pub(super) fn notes(state: &SimulatorState, entity_type: &str, notes: &BTreeMap<i64, Value>, q: &Query) -> Response {
    let range = match q.range("updated_at") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (ids, types) = (q.list("filter[id]"), q.list("filter[note_type]"));
    let mut rows: Vec<Value> = notes
        .values()
        .filter(|n| in_range(int_field(n, "updated_at"), range))
        .filter(|n| one_of(n, "id", &ids) && one_of(n, "note_type", &types))
        .map(|n| {
            let mut note = n.clone();
            if let (Value::Object(m), Some(id), Some(entity)) = (&mut note, n.get("id"), n.get("entity_id")) {
                let href = format!("{}/api/v4/{entity_type}/{entity}/notes/{id}", state.origin);
                m.insert("_links".into(), json!({"self": {"href": href}}));
            }
            note
        })
        .collect();
    if let Err(r) = sort_among(&mut rows, q, &["updated_at", "id"]) {
        return r;
    }
    page_of(state, &format!("/api/v4/{entity_type}/notes"), "notes", q, &rows, MAX_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::super::AmoCrmSimulator;
    use super::*;

    async fn get(url: &str) -> (u16, Option<Value>) {
        let r = reqwest::Client::new().get(url).bearer_auth("tok").send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_str(&r.text().await.unwrap()).ok())
    }

    fn ids(answer: &Option<Value>, key: &str) -> Vec<i64> {
        answer.as_ref().unwrap()["_embedded"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    }

    /// 260 tasks: type 1, 2, 3 in turn, every other one completed, on leads, then contacts and
    /// companies by tens; 6 notes of leads, call_in, call_out and common in turn.
    fn data() -> AmoCrmSimulatorData {
        let mut d = AmoCrmSimulatorData::default();
        for i in 1..=260 {
            let entity = ["leads", "contacts", "companies"][((i / 10) % 3) as usize];
            d.tasks.insert(
                i,
                json!({"id": i, "task_type_id": (i % 3) + 1, "is_completed": i % 2 == 0, "entity_type": entity,
                       "entity_id": i % 7, "responsible_user_id": (i % 4) + 1, "created_at": 1000 + i,
                       "updated_at": 5000 - i, "complete_till": 9000 + (i % 5), "result": [], "text": "t"}),
            );
        }
        for i in 1..=6 {
            let note_type = ["call_in", "call_out", "common"][(i % 3) as usize];
            d.lead_notes.insert(
                100 + i,
                json!({"id": 100 + i, "entity_id": 9, "note_type": note_type, "created_at": 2000 + i,
                       "updated_at": 2000 + i, "params": {}}),
            );
        }
        d
    }

    #[tokio::test]
    async fn amocrm_simulator_serves_tasks_and_notes_as_documented() {
        let sim = AmoCrmSimulator::start(data(), "tok").await.unwrap();
        sim.set_rate_limit(false);
        let base = sim.base_url();
        // 260 tasks: 250 then 10; `next` only on the first page.
        let (s, j) = get(&format!("{base}/api/v4/tasks?limit=250&order[id]=asc")).await;
        assert_eq!((s, ids(&j, "tasks").len()), (200, 250));
        let next = j.as_ref().unwrap()["_links"]["next"]["href"].as_str().unwrap().to_string();
        assert!(next.contains("page=2"), "{next}");
        let (_, j) = get(&next).await;
        assert_eq!(ids(&j, "tasks"), (251..=260).collect::<Vec<_>>());
        assert!(j.as_ref().unwrap()["_links"].get("next").is_none());
        assert_eq!(
            j.as_ref().unwrap()["_embedded"]["tasks"][0]["_links"]["self"]["href"],
            json!(format!("{base}/api/v4/tasks/251"))
        );
        // updated_at = 5000 - i: from 4995 are tasks 1..=5; to 4996 leaves 1..=4 out.
        let (_, j) = get(&format!("{base}/api/v4/tasks?filter[updated_at][from]=4995")).await;
        assert_eq!(ids(&j, "tasks"), [1, 2, 3, 4, 5]);
        let (_, j) = get(&format!("{base}/api/v4/tasks?filter[updated_at]=4995&filter[updated_at][to]=4996")).await;
        assert_eq!(ids(&j, "tasks"), [4, 5]);
        // Completed meetings (type 2: i % 3 == 1, even i) on leads (i / 10 % 3 == 0) 1..=9.
        let (_, j) = get(&format!(
            "{base}/api/v4/tasks?filter[is_completed]=1&filter[task_type][]=2&filter[entity_type]=leads&limit=5"
        ))
        .await;
        assert_eq!(ids(&j, "tasks"), [4, 34, 64, 94, 124]);
        let (_, j) =
            get(&format!("{base}/api/v4/tasks?filter[entity_type]=leads&filter[entity_id][]=3&filter[id][]=3,10,66"))
                .await;
        assert_eq!(ids(&j, "tasks"), [3, 66]);
        // complete_till = 9000 + i % 5, newest first, then by id descending.
        let (_, j) = get(&format!("{base}/api/v4/tasks?order[complete_till]=desc&limit=3")).await;
        assert_eq!(ids(&j, "tasks"), [259, 254, 249]);
        let (s, _) = get(&format!("{base}/api/v4/tasks?filter[entity_id]=3")).await;
        assert_eq!(s, 400, "entity_id needs entity_type");
        let (s, j) = get(&format!("{base}/api/v4/tasks?order[updated_at]=asc")).await;
        assert_eq!(s, 400);
        assert_eq!(j.unwrap()["validation-errors"][0]["errors"][0]["path"], json!("order[updated_at]"));
        let (s, j) = get(&format!("{base}/api/v4/tasks?filter[updated_at][from]=6000")).await;
        assert_eq!((s, j), (204, None));

        // Notes of leads: calls only, both directions, with their own self links.
        let (s, j) =
            get(&format!("{base}/api/v4/leads/notes?filter[note_type][]=call_in&filter[note_type][]=call_out")).await;
        assert_eq!((s, ids(&j, "notes")), (200, vec![101, 103, 104, 106]));
        assert_eq!(
            j.as_ref().unwrap()["_embedded"]["notes"][0]["_links"]["self"]["href"],
            json!(format!("{base}/api/v4/leads/9/notes/101"))
        );
        let (_, j) =
            get(&format!("{base}/api/v4/leads/notes?filter[note_type]=call_out&filter[updated_at][from]=2003")).await;
        assert_eq!(ids(&j, "notes"), [104]);
        let (_, j) = get(&format!("{base}/api/v4/leads/notes?order[updated_at]=desc&limit=2&page=2")).await;
        assert_eq!(ids(&j, "notes"), [104, 103]);
        let (s, j) = get(&format!("{base}/api/v4/companies/notes")).await;
        assert_eq!((s, j), (204, None), "no company notes");
        assert_eq!(sim.served("/api/v4/leads/notes"), 3);
    }
}
