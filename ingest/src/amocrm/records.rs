//! amoCRM API v4 records -> canonical rows.
//!
//! Values are typed JSON: ids and prices are integers, instants are Unix seconds. A record that
//! does not map (a status missing from the stage config, a negative price, a missing timestamp)
//! yields a reason instead of a row; the caller quarantines it and keeps the rest of the page.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dealhouse_warehouse::ProjectConfig;

use super::config::AmoCrmConfig;
use dealhouse_warehouse::schema::{Client, Deal, DealStageChange, Manager, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::wire::{LEAD_STATUS_CHANGED, LOST, WON};

/// An integer field (amoCRM writes ids and times as JSON numbers).
pub(crate) fn int(record: &Value, field: &str) -> Option<i64> {
    match record.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A text field, trimmed; empty means absent.
pub(crate) fn text(record: &Value, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The record's id as text (events have string ids, the rest integers).
pub(crate) fn id_text(record: &Value) -> Option<String> {
    text(record, "id")
}

/// A Unix-seconds field: Ok(None) when absent, null or 0, an error naming the field when it is
/// not a time.
pub(crate) fn unix(record: &Value, field: &str) -> Result<Option<DateTime<Utc>>, String> {
    match record.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(0) => Ok(None),
            Some(secs) => {
                DateTime::from_timestamp(secs, 0).map(Some).ok_or_else(|| format!("{field} {secs} is out of range"))
            }
            None => Err(format!("{field} `{v}` is not Unix seconds")),
        },
    }
}

pub(crate) fn required_unix(record: &Value, field: &str) -> Result<DateTime<Utc>, String> {
    unix(record, field)?.ok_or_else(|| format!("{field} is missing"))
}

/// Lookups the mapping needs, read once per source: users' branches, pipeline and status
/// names, loss reasons.
#[derive(Debug, Default)]
pub(crate) struct Reference {
    /// /api/v4/users records as read, for the `managers` stream.
    pub users: Vec<Value>,
    /// User id -> branch id (through the user's group and the branches' `codes`).
    user_branch: HashMap<i64, Option<String>>,
    /// Pipeline id -> name.
    pub pipelines: HashMap<i64, String>,
    /// (pipeline id, status id) -> status name.
    pub statuses: HashMap<(i64, i64), String>,
    /// Loss reason id -> name.
    loss_reasons: HashMap<i64, String>,
}

impl Reference {
    /// Builds the lookups from users, pipelines and loss reasons as the API returns them.
    pub(crate) fn build(
        source: &str,
        project: &ProjectConfig,
        users: Vec<Value>,
        pipelines: &[Value],
        loss_reasons: &[Value],
    ) -> Self {
        let user_branch = users
            .iter()
            .filter_map(|u| {
                let group = u.get("rights").and_then(|r| int(r, "group_id")).filter(|g| *g != 0);
                let branch = group.and_then(|g| project.branch_by_code(source, &g.to_string())).map(|b| b.id.clone());
                Some((int(u, "id")?, branch))
            })
            .collect();
        let mut names = HashMap::new();
        let mut statuses = HashMap::new();
        for p in pipelines {
            let Some(pid) = int(p, "id") else { continue };
            names.insert(pid, text(p, "name").unwrap_or_default());
            let list = p.pointer("/_embedded/statuses").and_then(Value::as_array).cloned().unwrap_or_default();
            for s in list {
                if let Some(sid) = int(&s, "id") {
                    statuses.insert((pid, sid), text(&s, "name").unwrap_or_default());
                }
            }
        }
        let loss_reasons =
            loss_reasons.iter().filter_map(|r| Some((int(r, "id")?, text(r, "name").unwrap_or_default()))).collect();
        Self { users, user_branch, pipelines: names, statuses, loss_reasons }
    }

    fn branch_of_user(&self, user: Option<i64>) -> Option<String> {
        self.user_branch.get(&user?).cloned().flatten()
    }
}

/// Maps the amoCRM records of one source onto canonical rows.
pub(crate) struct AmoCrmRecords<'a> {
    pub source: &'a str,
    pub config: &'a AmoCrmConfig,
    pub reference: &'a Reference,
}

impl AmoCrmRecords<'_> {
    pub(crate) fn id(&self, upstream: impl std::fmt::Display) -> String {
        format!("{}:{upstream}", self.source)
    }

    /// A user reference (`responsible_user_id`, `created_by`): 0 is "nobody" (a robot).
    pub(crate) fn user(&self, record: &Value, field: &str) -> Option<String> {
        int(record, field).filter(|u| *u != 0).map(|u| self.id(u))
    }

    /// The canonical stage and status of a (pipeline, status) pair.
    pub(crate) fn stage(&self, pipeline: i64, status: i64) -> Result<(String, &'static str), String> {
        match status {
            WON => return Ok(("won".into(), "won")),
            LOST => return Ok(("lost".into(), "lost")),
            _ => {}
        }
        if let Some(stage) = self.config.stages.get(&pipeline.to_string()).and_then(|s| s.get(&status.to_string())) {
            return Ok((stage.clone(), "open"));
        }
        let known = match (self.reference.statuses.get(&(pipeline, status)), self.reference.pipelines.get(&pipeline)) {
            (Some(s), Some(p)) => format!(" (\"{s}\" in pipeline \"{p}\")"),
            (None, Some(p)) => format!(" (not a status of pipeline \"{p}\" in /api/v4/leads/pipelines)"),
            _ => " (the pipeline is not in /api/v4/leads/pipelines)".to_string(),
        };
        Err(format!(
            "status {status} of pipeline {pipeline}{known} is not mapped: add `{status} = \"<stage>\"` under \
             [sources.{}.stages.{pipeline}] in dealhouse.toml (stages: new, contact, proposal, negotiation, contract), \
             then run `dealhouse sync`: it reads the records quarantined for it again",
            self.source
        ))
    }

    pub(crate) fn manager(&self, r: &Value) -> Result<Manager, String> {
        let id = int(r, "id").ok_or("the user has no id")?;
        let name = text(r, "name").or_else(|| text(r, "email")).unwrap_or_else(|| format!("user {id}"));
        let active = r.get("rights").and_then(|x| x.get("is_active")).and_then(Value::as_bool).unwrap_or(true);
        Ok(Manager {
            manager_id: self.id(id),
            branch_id: self.reference.branch_of_user(Some(id)),
            name,
            active,
            source_system: self.source.to_string(),
            source_id: id.to_string(),
        })
    }

    pub(crate) fn client(&self, r: &Value) -> Result<Client, String> {
        let id = int(r, "id").ok_or("the company has no id")?;
        let inn = self.config.inn_field_id.and_then(|field| custom_field(r, field));
        Ok(Client {
            client_id: self.id(id),
            name: text(r, "name").unwrap_or_else(|| format!("company {id}")),
            inn,
            kind: None,
            branch_id: self.reference.branch_of_user(int(r, "responsible_user_id")),
            created_at: unix(r, "created_at")?,
            source_system: self.source.to_string(),
            source_id: id.to_string(),
        })
    }

    pub(crate) fn deal(&self, r: &Value) -> Result<Deal, String> {
        let id = int(r, "id").ok_or("the lead has no id")?;
        let pipeline = int(r, "pipeline_id").ok_or("pipeline_id is missing")?;
        let status_id = int(r, "status_id").ok_or("status_id is missing")?;
        let (stage, status) = self.stage(pipeline, status_id)?;
        let amount = price(r)?;
        let commission = match (amount, self.config.commission_rate) {
            (Some(a), Some(rate)) => {
                Some(Money((a.0 * rate).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)))
            }
            _ => None,
        };
        let lost_reason = match (status, int(r, "loss_reason_id").filter(|l| *l != 0)) {
            ("lost", Some(reason)) => Some(
                self.reference.loss_reasons.get(&reason).cloned().unwrap_or_else(|| format!("loss reason {reason}")),
            ),
            _ => None,
        };
        let company = r
            .pointer("/_embedded/companies")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(|c| int(c, "id"));
        let responsible = int(r, "responsible_user_id").filter(|u| *u != 0);
        Ok(Deal {
            deal_id: self.id(id),
            title: text(r, "name"),
            client_id: company.map(|c| self.id(c)),
            manager_id: responsible.map(|u| self.id(u)),
            branch_id: self.reference.branch_of_user(responsible),
            pipeline: pipeline.to_string(),
            stage,
            source_stage: format!("{pipeline}:{status_id}"),
            status: status.to_string(),
            lost_reason,
            amount,
            commission,
            created_at: required_unix(r, "created_at")?,
            updated_at: required_unix(r, "updated_at")?,
            closed_at: if status == "open" { None } else { unix(r, "closed_at")? },
            deleted: r.get("is_deleted").and_then(Value::as_bool).unwrap_or(false),
            // amoCRM prices leads in the account's currency, which the source's setting names.
            currency: self.config.currency.clone(),
            source_system: self.source.to_string(),
            source_id: id.to_string(),
        })
    }

    /// A `lead_status_changed` event.
    pub(crate) fn stage_change(&self, r: &Value) -> Result<DealStageChange, String> {
        let id = id_text(r).ok_or("the event has no id")?;
        if let Some(t) = text(r, "type")
            && t != LEAD_STATUS_CHANGED
        {
            return Err(format!("event type `{t}` is not lead_status_changed"));
        }
        let lead = int(r, "entity_id").ok_or("entity_id is missing")?;
        let status_of = |field: &str| -> Option<(i64, i64)> {
            let s = r.get(field)?.as_array()?.iter().find_map(|v| v.get("lead_status"))?;
            Some((int(s, "pipeline_id")?, int(s, "id")?))
        };
        let (to_pipeline, to_status) =
            status_of("value_after").ok_or("value_after has no lead_status {id, pipeline_id}")?;
        let from_stage = match status_of("value_before") {
            Some((p, s)) => Some(self.stage(p, s)?.0),
            None => None,
        };
        Ok(DealStageChange {
            deal_id: self.id(lead),
            from_stage,
            to_stage: self.stage(to_pipeline, to_status)?.0,
            changed_at: required_unix(r, "created_at")?,
            changed_by: self.user(r, "created_by"),
            source_system: self.source.to_string(),
            source_id: id,
        })
    }
}

/// `price`: whole rubles as amoCRM keeps them; negative or fractional-kopeck values are refused.
fn price(r: &Value) -> Result<Option<Money>, String> {
    let value = match r.get("price") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => {
            n.to_string().parse::<Decimal>().map_err(|e| format!("price `{n}` is not a number ({e})"))?
        }
        Some(other) => return Err(format!("price `{other}` is not a number")),
    };
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!("price {value} is negative; correct the lead's budget in amoCRM"));
    }
    if value.round_dp(2) != value {
        return Err(format!("price {value} has more than 2 decimals"));
    }
    Ok(Some(Money(value)))
}

/// The first value of custom field `field_id` as text.
fn custom_field(r: &Value, field_id: i64) -> Option<String> {
    r.get("custom_fields_values")?
        .as_array()?
        .iter()
        .find(|f| int(f, "field_id") == Some(field_id))?
        .get("values")?
        .as_array()?
        .first()
        .and_then(|v| text(v, "value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> AmoCrmConfig {
        let toml = "[sources.amo]\nkind = \"amocrm\"\nsimulate_from = \"a\"\ncommission_rate = \"0.125\"\ninn_field_id = 77\n\
                    currency = \"KZT\"\n[sources.amo.stages.5]\n51 = \"new\"\n52 = \"proposal\"\n";
        let parsed = crate::source_config::tests::parse(toml).unwrap();
        match parsed.get("amo") {
            Some(crate::source_config::SourceConfig::AmoCrm(a)) => a.clone(),
            _ => unreachable!(),
        }
    }

    fn lead(changes: Value) -> Value {
        let mut l = json!({"id": 9, "name": "Концерт", "price": 1001, "responsible_user_id": 3, "status_id": 52,
            "pipeline_id": 5, "loss_reason_id": null, "created_at": 1_700_000_000, "updated_at": 1_700_003_600,
            "closed_at": null, "is_deleted": false, "custom_fields_values": null,
            "_embedded": {"tags": [], "companies": [{"id": 44}], "contacts": [{"id": 8, "is_main": true}]}});
        for (k, v) in changes.as_object().unwrap() {
            l[k] = v.clone();
        }
        l
    }

    #[test]
    fn amocrm_lead_mapping_is_exact() {
        let config = config();
        let mut reference = Reference::default();
        reference.loss_reasons.insert(4, "Дорого".into());
        let m = AmoCrmRecords { source: "amo", config: &config, reference: &reference };
        let d = m.deal(&lead(json!({}))).unwrap();
        // 12.5% of 1001 = 125.125, rounded half away from zero to the kopeck.
        assert_eq!(
            (d.amount, d.commission),
            (Some(Money(Decimal::from(1001))), Some(Money("125.13".parse().unwrap())))
        );
        assert_eq!((d.stage.as_str(), d.status.as_str(), d.source_stage.as_str()), ("proposal", "open", "5:52"));
        assert_eq!((d.client_id.as_deref(), d.manager_id.as_deref()), (Some("amo:44"), Some("amo:3")));
        // 1_700_000_000 is 2023-11-14T22:13:20Z.
        assert_eq!(d.created_at.to_rfc3339(), "2023-11-14T22:13:20+00:00");
        assert_eq!((d.closed_at, d.deleted, d.lost_reason), (None, false, None));
        // The price is in the account's currency, the source's `currency`.
        assert_eq!(d.currency.as_deref(), Some("KZT"));
        let lost = m.deal(&lead(json!({"status_id": 143, "loss_reason_id": 4, "closed_at": 1_700_007_200}))).unwrap();
        assert_eq!(
            (lost.stage.as_str(), lost.status.as_str(), lost.lost_reason.as_deref()),
            ("lost", "lost", Some("Дорого"))
        );
        assert_eq!(lost.closed_at.map(|t| t.timestamp()), Some(1_700_007_200));
        let won = m.deal(&lead(json!({"status_id": 142, "pipeline_id": 6, "closed_at": 1_700_007_200}))).unwrap();
        assert_eq!((won.stage.as_str(), won.status.as_str()), ("won", "won"), "142 is won in any pipeline");
        assert!(m.deal(&lead(json!({"is_deleted": true}))).unwrap().deleted);
        assert_eq!(m.deal(&lead(json!({"price": null}))).unwrap().commission, None);
        for (change, needle) in [
            (json!({"price": -5}), "price -5 is negative"),
            (json!({"price": "12"}), "price `\"12\"` is not a number"),
            (json!({"status_id": 53}), "[sources.amo.stages.5]"),
            (json!({"pipeline_id": 6}), "status 52 of pipeline 6"),
            (json!({"updated_at": "yesterday"}), "updated_at"),
            (json!({"created_at": null}), "created_at is missing"),
        ] {
            let e = m.deal(&lead(change.clone())).unwrap_err();
            assert!(e.contains(needle), "{change}: {e}");
        }
    }

    #[test]
    fn amocrm_events_users_and_companies_map() {
        let config = config();
        let reference = Reference::default();
        let m = AmoCrmRecords { source: "amo", config: &config, reference: &reference };
        let event = |before: Value, by: i64| {
            json!({"id": "01abc", "type": "lead_status_changed", "entity_id": 9, "entity_type": "lead",
                   "created_by": by, "created_at": 1_700_000_060,
                   "value_after": [{"lead_status": {"id": 142, "pipeline_id": 5}}], "value_before": before})
        };
        let c = m.stage_change(&event(json!([{"lead_status": {"id": 51, "pipeline_id": 5}}]), 0)).unwrap();
        assert_eq!(
            (c.deal_id.as_str(), c.from_stage.as_deref(), c.to_stage.as_str(), c.changed_by, c.source_id.as_str()),
            ("amo:9", Some("new"), "won", None, "01abc"),
            "created_by 0 is a robot"
        );
        assert_eq!(c.changed_at.timestamp(), 1_700_000_060);
        let c = m.stage_change(&event(json!([]), 3)).unwrap();
        assert_eq!((c.from_stage, c.changed_by.as_deref()), (None, Some("amo:3")));
        let e = m.stage_change(&event(json!([{"lead_status": {"id": 99, "pipeline_id": 5}}]), 3)).unwrap_err();
        assert!(e.contains("status 99 of pipeline 5"), "{e}");

        let u = m.manager(&json!({"id": 3, "name": "Анна", "rights": {"is_active": false, "group_id": 0}})).unwrap();
        assert_eq!((u.manager_id.as_str(), u.name.as_str(), u.active, u.branch_id), ("amo:3", "Анна", false, None));
        let c = m
            .client(&json!({"id": 44, "name": "ООО Арена", "created_at": 1_600_000_000,
                "custom_fields_values": [{"field_id": 12, "values": [{"value": "x"}]}, {"field_id": 77, "values": [{"value": "7701234567"}]}]}))
            .unwrap();
        assert_eq!((c.client_id.as_str(), c.inn.as_deref()), ("amo:44", Some("7701234567")));
    }
}
