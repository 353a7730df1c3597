//! amoCRM tasks and call notes -> canonical `activities`.
//!
//! Tasks (`/api/v4/tasks`) take their activity type from `task_type_id` through the source's
//! `task_types` (built in: 1 call, 2 meeting; others `task`). amoCRM keeps no completion time on
//! a task (`updated_at` moves with any edit), so a task is placed at its deadline
//! `complete_till`, done or not; `done` is `is_completed`, and a task completed later is read
//! again (its `updated_at` moves) and replaces its planned row.
//!
//! Call notes (`note_type` call_in / call_out of leads, contacts and companies) are calls at the
//! note's `created_at`. A logged call happened, so it is done, unless `params.call_status` says
//! it never connected (5 wrong number, 6 not reached, 7 busy): those are kept with
//! `done = false`, so manager-day call counts count conversations and messages left, not dial
//! attempts (Bitrix24 likewise leaves a missed call as an uncompleted activity).
//!
//! Links: a lead's task or note belongs to that deal; a company's to that client. Contacts are
//! people, not clients in dealhouse (clients are amoCRM companies), so a contact's calls and
//! tasks carry neither and count for their manager only. Ids are `<source>:task:<id>` and
//! `<source>:note:<entity type>:<id>`: tasks, notes and leads number separately in amoCRM.

use dealhouse_warehouse::schema::Activity;
use serde_json::Value;

use super::records::{AmoCrmRecords, int, required_unix, text};
use super::wire::{CALL_IN, CALL_NOT_CONNECTED, CALL_OUT, CALL_STATUSES, ENTITY_COMPANIES, ENTITY_LEADS};

impl AmoCrmRecords<'_> {
    /// `(deal_id, client_id)` of an entity a task or note is linked to.
    fn linked(&self, entity_type: Option<&str>, entity_id: Option<i64>) -> (Option<String>, Option<String>) {
        match (entity_type, entity_id.filter(|id| *id != 0)) {
            (Some(ENTITY_LEADS), Some(id)) => (Some(self.id(id)), None),
            (Some(ENTITY_COMPANIES), Some(id)) => (None, Some(self.id(id))),
            _ => (None, None),
        }
    }

    /// A task of `/api/v4/tasks`.
    pub(crate) fn task(&self, r: &Value) -> Result<Activity, String> {
        let id = int(r, "id").ok_or("the task has no id")?;
        let type_id = int(r, "task_type_id").ok_or("task_type_id is missing")?;
        let done = match r.get("is_completed") {
            Some(Value::Bool(b)) => *b,
            other => return Err(format!("is_completed `{}` is not true or false", other.unwrap_or(&Value::Null))),
        };
        let deadline = required_unix(r, "complete_till")?;
        let (deal_id, client_id) = self.linked(r.get("entity_type").and_then(Value::as_str), int(r, "entity_id"));
        let source_id = format!("task:{id}");
        Ok(Activity {
            activity_id: self.id(&source_id),
            deal_id,
            client_id,
            manager_id: self.user(r, "responsible_user_id"),
            activity_type: self.config.task_type(type_id).to_string(),
            direction: None,
            at: deadline,
            due_at: Some(deadline),
            done,
            // `result` is `{"text": ...}` once a task is closed with a result, else `[]`.
            result: r.get("result").and_then(|x| text(x, "text")),
            source_system: self.source.to_string(),
            source_id,
        })
    }

    /// A call note (`call_in` / `call_out`) of `/api/v4/<entity_type>/notes`.
    pub(crate) fn call_note(&self, r: &Value, entity_type: &str) -> Result<Activity, String> {
        let id = int(r, "id").ok_or("the note has no id")?;
        let direction = match r.get("note_type").and_then(Value::as_str) {
            Some(CALL_IN) => "incoming",
            Some(CALL_OUT) => "outgoing",
            other => {
                return Err(format!(
                    "note type `{}` is not a call (call_in, call_out): the account ignored filter[note_type]",
                    other.unwrap_or("")
                ));
            }
        };
        let params = r.get("params").cloned().unwrap_or(Value::Null);
        let status = int(&params, "call_status");
        let status_name = status.and_then(|s| CALL_STATUSES.iter().find(|(id, _)| *id == s)).map(|(_, n)| *n);
        let (deal_id, client_id) = self.linked(Some(entity_type), int(r, "entity_id"));
        let source_id = format!("note:{entity_type}:{id}");
        Ok(Activity {
            activity_id: self.id(&source_id),
            deal_id,
            client_id,
            // Telephony integrations often log calls as a robot (created_by 0) for the manager.
            manager_id: self.user(r, "responsible_user_id").or_else(|| self.user(r, "created_by")),
            activity_type: "call".to_string(),
            direction: Some(direction.to_string()),
            at: required_unix(r, "created_at")?,
            due_at: None,
            done: !status.is_some_and(|s| CALL_NOT_CONNECTED.contains(&s)),
            result: text(&params, "call_result").or_else(|| status_name.map(str::to_string)),
            source_system: self.source.to_string(),
            source_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::amocrm::config::AmoCrmConfig;
    use crate::amocrm::records::Reference;

    fn config(extra: &str) -> AmoCrmConfig {
        let toml = format!("[sources.amo]\nkind = \"amocrm\"\nsimulate_from = \"a\"\n{extra}");
        match crate::source_config::tests::parse(&toml).unwrap().get("amo") {
            Some(crate::source_config::SourceConfig::AmoCrm(a)) => a.clone(),
            _ => unreachable!(),
        }
    }

    fn task(changes: Value) -> Value {
        let mut t = json!({"id": 501, "created_by": 3, "updated_by": 3, "created_at": 1_700_000_000,
            "updated_at": 1_700_000_600, "responsible_user_id": 3, "group_id": 0, "entity_id": 9,
            "entity_type": "leads", "is_completed": true, "task_type_id": 2, "text": "Встреча в офисе",
            "duration": 3600, "complete_till": 1_700_086_400, "result": {"text": "Договорились"},
            "account_id": 31_000_001});
        for (k, v) in changes.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    }

    fn note(changes: Value) -> Value {
        let mut n = json!({"id": 7001, "entity_id": 44, "created_by": 0, "updated_by": 0,
            "created_at": 1_700_000_120, "updated_at": 1_700_000_120, "responsible_user_id": 2, "group_id": 0,
            "note_type": "call_out", "params": {"uniq": "8f52d38a-5fb3-406d-93a3-a4832dc28f8b", "duration": 60,
            "source": "onlinePBX", "link": "https://example.com/rec.mp3", "phone": "+79001234567",
            "call_result": "", "call_status": 4}, "account_id": 31_000_001});
        for (k, v) in changes.as_object().unwrap() {
            n[k] = v.clone();
        }
        n
    }

    #[test]
    fn amocrm_tasks_map_by_type_deadline_and_link() {
        let config = config("[sources.amo.task_types]\n77 = \"proposal_sent\"\n");
        let reference = Reference::default();
        let m = AmoCrmRecords { source: "amo", config: &config, reference: &reference };
        let t = m.task(&task(json!({}))).unwrap();
        assert_eq!(
            (t.activity_id.as_str(), t.source_id.as_str(), t.activity_type.as_str(), t.deal_id.as_deref()),
            ("amo:task:501", "task:501", "meeting", Some("amo:9"))
        );
        // 1_700_086_400 = 2023-11-15T22:13:20Z: the deadline, also when it is placed.
        assert_eq!((t.at.timestamp(), t.due_at.map(|d| d.timestamp())), (1_700_086_400, Some(1_700_086_400)));
        assert_eq!((t.done, t.result.as_deref(), t.manager_id.as_deref()), (true, Some("Договорились"), Some("amo:3")));
        let planned = m.task(&task(json!({"is_completed": false, "result": [], "task_type_id": 1}))).unwrap();
        assert_eq!((planned.activity_type.as_str(), planned.done, planned.result), ("call", false, None));
        let custom = m.task(&task(json!({"task_type_id": 77, "entity_type": "companies", "entity_id": 44}))).unwrap();
        assert_eq!(
            (custom.activity_type.as_str(), custom.deal_id, custom.client_id.as_deref()),
            ("proposal_sent", None, Some("amo:44"))
        );
        let other =
            m.task(&task(json!({"task_type_id": 3, "entity_type": "contacts", "responsible_user_id": 0}))).unwrap();
        assert_eq!(
            (other.activity_type.as_str(), other.deal_id, other.client_id, other.manager_id),
            ("task", None, None, None)
        );
        for (change, needle) in [
            (json!({"complete_till": null}), "complete_till is missing"),
            (json!({"is_completed": "yes"}), "is_completed `\"yes\"`"),
            (json!({"task_type_id": null}), "task_type_id is missing"),
        ] {
            let e = m.task(&task(change.clone())).unwrap_err();
            assert!(e.contains(needle), "{change}: {e}");
        }
    }

    #[test]
    fn amocrm_call_notes_map_direction_status_and_link() {
        let config = config("");
        let reference = Reference::default();
        let m = AmoCrmRecords { source: "amo", config: &config, reference: &reference };
        let c = m.call_note(&note(json!({})), "companies").unwrap();
        assert_eq!(
            (
                c.activity_id.as_str(),
                c.activity_type.as_str(),
                c.direction.as_deref(),
                c.client_id.as_deref(),
                c.deal_id
            ),
            ("amo:note:companies:7001", "call", Some("outgoing"), Some("amo:44"), None)
        );
        // Status 4 (conversation held) with no result text: the status names the outcome.
        assert_eq!(
            (c.done, c.result.as_deref(), c.at.timestamp(), c.due_at),
            (true, Some("conversation held"), 1_700_000_120, None)
        );
        assert_eq!(c.manager_id.as_deref(), Some("amo:2"), "the responsible user, not the robot that logged it");
        let busy = m
            .call_note(
                &note(json!({"note_type": "call_in", "params": {"call_status": 7, "call_result": "Перезвонить"}})),
                "leads",
            )
            .unwrap();
        assert_eq!(
            (busy.direction.as_deref(), busy.done, busy.result.as_deref(), busy.deal_id.as_deref()),
            (Some("incoming"), false, Some("Перезвонить"), Some("amo:44")),
            "a busy line is a call that did not connect"
        );
        let bare =
            m.call_note(&note(json!({"params": {}, "responsible_user_id": 0, "created_by": 5})), "contacts").unwrap();
        assert_eq!(
            (bare.done, bare.result, bare.client_id, bare.manager_id.as_deref()),
            (true, None, None, Some("amo:5"))
        );
        let e = m.call_note(&note(json!({"note_type": "common"})), "leads").unwrap_err();
        assert!(e.contains("`common` is not a call"), "{e}");
        let e = m.call_note(&note(json!({"created_at": null})), "leads").unwrap_err();
        assert!(e.contains("created_at is missing"), "{e}");
    }
}
