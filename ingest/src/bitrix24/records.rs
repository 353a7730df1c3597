//! Bitrix24 wire records -> canonical rows.
//!
//! Every value on the wire is a string (`"OPPORTUNITY": "19999.99"`), datetimes are ISO 8601
//! with an offset, empty strings mean "not set". A record that does not map (bad number, bad
//! date, a stage missing from the config) yields a reason instead of a row; the caller puts it
//! in quarantine and keeps the rest of the page.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use dealhouse_warehouse::ProjectConfig;
use dealhouse_warehouse::config::check_currency_code;

use super::config::Bitrix24Config;
use dealhouse_warehouse::schema::{Activity, CLIENT_KINDS, Client, Deal, DealStageChange, Manager, Money};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use super::wire::{ENTITY_COMPANY as OWNER_COMPANY, ENTITY_DEAL as OWNER_DEAL, ID};

/// Stage-history TYPE_ID of "element created".
pub(crate) const HISTORY_CREATED: &str = "1";

/// A field as text: strings trimmed, numbers and booleans printed; empty means absent.
pub(crate) fn text(record: &Value, field: &str) -> Option<String> {
    match record.get(field)? {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "Y" } else { "N" }.to_string()),
        _ => None,
    }
}

/// The record's `ID` as an integer.
pub(crate) fn id_of(record: &Value) -> Option<i64> {
    text(record, ID)?.parse().ok()
}

/// A datetime field as an instant; None when absent or unreadable.
pub(crate) fn instant(record: &Value, field: &str) -> Option<DateTime<Utc>> {
    parse_instant(&text(record, field)?).ok()
}

fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("`{s}` is not an ISO 8601 datetime with an offset ({e})"))
}

/// A datetime field: Ok(None) when empty, an error naming the field when unreadable.
fn datetime(record: &Value, field: &str) -> Result<Option<DateTime<Utc>>, String> {
    text(record, field).map(|s| parse_instant(&s).map_err(|e| format!("{field}: {e}"))).transpose()
}

fn required_datetime(record: &Value, field: &str) -> Result<DateTime<Utc>, String> {
    datetime(record, field)?.ok_or_else(|| format!("{field} is empty"))
}

/// A money field, exact: Ok(None) when empty; an error for text that is not a number or that
/// does not fit the canonical money column.
fn money(record: &Value, field: &str) -> Result<Option<Money>, String> {
    let Some(s) = text(record, field) else { return Ok(None) };
    let d: Decimal = s.parse().map_err(|_| format!("{field} `{s}` is not a number"))?;
    let m = Money(d);
    m.to_scaled().map_err(|e| format!("{field}: {e}"))?;
    Ok(Some(m))
}

/// Users, departments and deal stages: what mapping a record needs besides the record.
#[derive(Debug, Default)]
pub(crate) struct Reference {
    /// user ID -> branch id (through the first department and its parents).
    pub user_branch: HashMap<String, Option<String>>,
    /// stage STATUS_ID -> SEMANTICS (`S`, `F`, or `P` for in progress).
    pub semantics: HashMap<String, String>,
    /// user.get records as read, for the `managers` stream.
    pub users: Vec<Value>,
    /// Client kinds `[vocabularies] client_kind` adds to the standard ones.
    pub client_kinds: Vec<String>,
}

impl Reference {
    /// Builds the lookups from department.get, user.get and crm.status.list records.
    pub(crate) fn build(
        source: &str,
        project: &ProjectConfig,
        departments: &[Value],
        users: Vec<Value>,
        statuses: &[Value],
    ) -> Self {
        let parents: HashMap<String, Option<String>> =
            departments.iter().filter_map(|d| Some((text(d, "ID")?, text(d, "PARENT").filter(|p| p != "0")))).collect();
        // A user may sit in a team under the branch's department: walk up to the first
        // department a branch claims in `codes.<source>`.
        let branch_of_department = |dept: &str| -> Option<String> {
            let mut current = Some(dept.to_string());
            for _ in 0..64 {
                let d = current?;
                if let Some(b) = project.branch_by_code(source, &d) {
                    return Some(b.id.clone());
                }
                current = parents.get(&d).cloned().flatten();
            }
            None
        };
        let user_branch = users
            .iter()
            .filter_map(|u| {
                let first = first_department(u);
                Some((text(u, "ID")?, first.as_deref().and_then(branch_of_department)))
            })
            .collect();
        let semantics = statuses
            .iter()
            .filter(|s| text(s, "ENTITY_ID").is_some_and(|e| e.starts_with("DEAL_STAGE")))
            .filter_map(|s| Some((text(s, "STATUS_ID")?, text(s, "SEMANTICS").unwrap_or_else(|| "P".into()))))
            .collect();
        Self { user_branch, semantics, users, client_kinds: project.vocabularies.client_kind.clone() }
    }

    fn branch_of_user(&self, user: Option<&str>) -> Option<String> {
        self.user_branch.get(user?).cloned().flatten()
    }
}

fn first_department(user: &Value) -> Option<String> {
    match user.get("UF_DEPARTMENT")? {
        Value::Array(items) => items.first().and_then(|v| match v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        }),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

/// Maps the Bitrix24 records of one source onto canonical rows.
pub(crate) struct Bitrix24Records<'a> {
    pub source: &'a str,
    pub config: &'a Bitrix24Config,
    pub reference: &'a Reference,
}

impl Bitrix24Records<'_> {
    fn id(&self, upstream: &str) -> String {
        format!("{}:{upstream}", self.source)
    }

    fn ref_id(&self, record: &Value, field: &str) -> Option<String> {
        text(record, field).filter(|v| v != "0").map(|v| self.id(&v))
    }

    /// won / lost from the semantics (the record's, else crm.status.list's), else open.
    fn status(&self, stage_id: &str, record_semantic: Option<String>) -> &'static str {
        let semantic = record_semantic.or_else(|| self.reference.semantics.get(stage_id).cloned());
        match semantic.as_deref() {
            Some("S") => "won",
            Some("F") => "lost",
            _ => "open",
        }
    }

    /// The canonical stage of a stage id: won/lost by semantics, the rest from the config.
    pub(crate) fn stage(&self, stage_id: &str, record_semantic: Option<String>) -> Result<String, String> {
        match self.status(stage_id, record_semantic) {
            "won" => Ok("won".into()),
            "lost" => Ok("lost".into()),
            _ => self.config.stages.get(stage_id).cloned().ok_or_else(|| {
                format!(
                    "stage id `{stage_id}` is not mapped: add `\"{stage_id}\" = \"<stage>\"` under \
                     [sources.{}.stages] in dealhouse.toml (stages: {}), then run `dealhouse sync`: it reads the \
                     records quarantined for it again",
                    self.source,
                    dealhouse_warehouse::schema::STAGES.join(", ")
                )
            }),
        }
    }

    pub(crate) fn manager(&self, r: &Value) -> Result<Manager, String> {
        let id = text(r, "ID").ok_or("the user has no ID")?;
        let name = [text(r, "NAME"), text(r, "LAST_NAME")].into_iter().flatten().collect::<Vec<_>>().join(" ");
        let name = if name.is_empty() { text(r, "EMAIL").unwrap_or_else(|| format!("user {id}")) } else { name };
        let active = match r.get("ACTIVE") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => matches!(s.trim(), "Y" | "true" | "1"),
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => true,
        };
        Ok(Manager {
            manager_id: self.id(&id),
            branch_id: self.reference.branch_of_user(Some(&id)),
            name,
            active,
            source_system: self.source.to_string(),
            source_id: id,
        })
    }

    pub(crate) fn client(&self, r: &Value) -> Result<Client, String> {
        let id = text(r, "ID").ok_or("the company has no ID")?;
        let kind = text(r, "UF_CRM_KIND").map(|k| {
            let k = k.to_lowercase();
            // A kind neither standard nor configured would fall out of every breakdown by kind.
            let known = CLIENT_KINDS.contains(&k.as_str()) || self.reference.client_kinds.contains(&k);
            if known { k } else { "other".to_string() }
        });
        Ok(Client {
            client_id: self.id(&id),
            name: text(r, "TITLE").unwrap_or_else(|| format!("company {id}")),
            inn: text(r, "UF_CRM_INN"),
            kind,
            branch_id: self.reference.branch_of_user(text(r, "ASSIGNED_BY_ID").as_deref()),
            created_at: datetime(r, "DATE_CREATE")?,
            source_system: self.source.to_string(),
            source_id: id,
        })
    }

    pub(crate) fn deal(&self, r: &Value) -> Result<Deal, String> {
        let id = text(r, "ID").ok_or("the deal has no ID")?;
        let stage_id = text(r, "STAGE_ID").ok_or("STAGE_ID is empty")?;
        let semantic = text(r, "STAGE_SEMANTIC_ID");
        let stage = self.stage(&stage_id, semantic.clone())?;
        let status = self.status(&stage_id, semantic);
        // OPPORTUNITY is in the deal's own CURRENCY_ID; staging converts it.
        let currency = match text(r, "CURRENCY_ID") {
            Some(code) => Some(check_currency_code(&code).map(|()| code).map_err(|m| format!("CURRENCY_ID: {m}"))?),
            None => self.config.currency.clone(),
        };
        let amount = money(r, "OPPORTUNITY")?;
        let commission = match money(r, "UF_CRM_COMMISSION")? {
            Some(c) => Some(c),
            None => match (amount, self.config.commission_rate) {
                (Some(a), Some(rate)) => {
                    Some(Money((a.0 * rate).round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)))
                }
                _ => None,
            },
        };
        let closed_at = datetime(r, "CLOSEDATE")?;
        let assigned = text(r, "ASSIGNED_BY_ID");
        Ok(Deal {
            deal_id: self.id(&id),
            title: text(r, "TITLE"),
            client_id: self.ref_id(r, "COMPANY_ID"),
            manager_id: self.ref_id(r, "ASSIGNED_BY_ID"),
            branch_id: self.reference.branch_of_user(assigned.as_deref()),
            pipeline: text(r, "CATEGORY_ID").unwrap_or_else(|| "0".into()),
            stage,
            source_stage: stage_id,
            status: status.to_string(),
            lost_reason: if status == "lost" { text(r, "UF_CRM_LOST_REASON") } else { None },
            amount,
            commission,
            created_at: required_datetime(r, "DATE_CREATE")?,
            updated_at: required_datetime(r, "DATE_MODIFY")?,
            closed_at: if status == "open" { None } else { closed_at },
            deleted: false,
            currency,
            source_system: self.source.to_string(),
            source_id: id,
        })
    }

    /// One stage-history record; `from_stage` is the deal's previous canonical stage.
    pub(crate) fn stage_change(&self, r: &Value, from_stage: Option<String>) -> Result<DealStageChange, String> {
        let id = text(r, "ID").ok_or("the history record has no ID")?;
        let deal = text(r, "OWNER_ID").ok_or("OWNER_ID is empty")?;
        let stage_id = text(r, "STAGE_ID").ok_or("STAGE_ID is empty")?;
        Ok(DealStageChange {
            deal_id: self.id(&deal),
            from_stage,
            to_stage: self.stage(&stage_id, text(r, "STAGE_SEMANTIC_ID"))?,
            changed_at: required_datetime(r, "CREATED_TIME")?,
            changed_by: None,
            source_system: self.source.to_string(),
            source_id: id,
        })
    }

    pub(crate) fn activity(&self, r: &Value) -> Result<Activity, String> {
        let id = text(r, "ID").ok_or("the activity has no ID")?;
        let type_id = text(r, "TYPE_ID").unwrap_or_default();
        let provider_type = text(r, "PROVIDER_TYPE_ID").unwrap_or_default();
        let activity_type = match (type_id.as_str(), provider_type.as_str()) {
            ("1", _) => "meeting",
            ("2", _) => "call",
            ("3", _) => "task",
            ("4", _) => "email",
            (_, "PROPOSAL_SENT") => "proposal_sent",
            (_, "CONTRACT_SIGNED") => "contract_signed",
            _ => {
                return Err(format!(
                    "TYPE_ID `{type_id}` with PROVIDER_TYPE_ID `{provider_type}` has no canonical activity type \
                     (1 meeting, 2 call, 3 task, 4 email, 6 PROPOSAL_SENT / CONTRACT_SIGNED)"
                ));
            }
        };
        let direction = match text(r, "DIRECTION").as_deref() {
            Some("1") => Some("incoming".to_string()),
            Some("2") => Some("outgoing".to_string()),
            _ => None,
        };
        let at = match datetime(r, "START_TIME")? {
            Some(t) => t,
            // Tasks and emails may have no start: fall back to the deadline, then creation.
            None => match datetime(r, "DEADLINE")? {
                Some(t) => t,
                None => required_datetime(r, "CREATED")
                    .map_err(|_| "START_TIME, DEADLINE and CREATED are all empty".to_string())?,
            },
        };
        let owner_type = text(r, "OWNER_TYPE_ID");
        let owner = |kind: &str| if owner_type.as_deref() == Some(kind) { self.ref_id(r, "OWNER_ID") } else { None };
        Ok(Activity {
            activity_id: self.id(&id),
            deal_id: owner(OWNER_DEAL),
            client_id: owner(OWNER_COMPANY),
            manager_id: self.ref_id(r, "RESPONSIBLE_ID"),
            activity_type: activity_type.to_string(),
            direction,
            at,
            due_at: datetime(r, "DEADLINE")?,
            done: text(r, "COMPLETED").as_deref() == Some("Y"),
            result: None,
            source_system: self.source.to_string(),
            source_id: id,
        })
    }
}

/// Stage-history records of one deal ordered as they happened: by CREATED_TIME, then ID.
pub(crate) fn history_order(records: &mut [(Value, std::sync::Arc<str>)]) {
    records.sort_by_cached_key(|(r, _)| {
        (text(r, "OWNER_ID").and_then(|o| o.parse::<i64>().ok()), instant(r, "CREATED_TIME"), id_of(r))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Bitrix24Config {
        let toml = "[sources.crm]\nkind = \"bitrix24\"\nsimulate_from = \"p\"\ncommission_rate = \"0.125\"\n\
                    currency = \"KZT\"\nstages = { NEW = \"new\" }\n";
        let parsed = crate::source_config::tests::parse(toml).unwrap();
        match parsed.get("crm") {
            Some(crate::source_config::SourceConfig::Bitrix24(b)) => b.clone(),
            _ => unreachable!(),
        }
    }

    fn deal(changes: Value) -> Value {
        let mut d = json!({"ID": "5", "STAGE_ID": "NEW", "STAGE_SEMANTIC_ID": "P", "OPPORTUNITY": "1000.10",
            "CURRENCY_ID": "RUB", "ASSIGNED_BY_ID": "3", "DATE_CREATE": "2025-03-04T01:30:00+03:00",
            "DATE_MODIFY": "2025-03-04T10:15:00+03:00", "CLOSEDATE": "2025-04-01T00:00:00+03:00"});
        for (k, v) in changes.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    }

    #[test]
    fn bitrix_deal_mapping_is_exact_and_in_utc() {
        let config = config();
        let reference = Reference::default();
        let m = Bitrix24Records { source: "crm", config: &config, reference: &reference };
        let d = m.deal(&deal(json!({}))).unwrap();
        // 01:30 Moscow is 22:30 UTC the day before.
        assert_eq!(d.created_at.to_rfc3339(), "2025-03-03T22:30:00+00:00");
        assert_eq!(d.updated_at.to_rfc3339(), "2025-03-04T07:15:00+00:00");
        // 12.5% of 1000.10 = 125.0125, rounded to the kopeck.
        assert_eq!(d.commission, Some(Money("125.01".parse().unwrap())));
        assert_eq!((d.status.as_str(), d.stage.as_str(), d.closed_at), ("open", "new", None));
        assert_eq!(d.currency.as_deref(), Some("RUB"));
        // A deal in dollars keeps its dollars; staging converts them.
        let usd = m.deal(&deal(json!({"CURRENCY_ID": "USD", "OPPORTUNITY": "250.75"}))).unwrap();
        assert_eq!((usd.currency.as_deref(), usd.amount), (Some("USD"), Some(Money("250.75".parse().unwrap()))));
        // No CURRENCY_ID: the source's currency.
        let bare = m.deal(&deal(json!({"CURRENCY_ID": ""}))).unwrap();
        assert_eq!(bare.currency.as_deref(), Some("KZT"));
        let won =
            m.deal(&deal(json!({"STAGE_ID": "WON", "STAGE_SEMANTIC_ID": "S", "UF_CRM_COMMISSION": "99.90"}))).unwrap();
        assert_eq!((won.status.as_str(), won.stage.as_str()), ("won", "won"));
        assert_eq!(won.commission, Some(Money("99.90".parse().unwrap())));
        assert_eq!(won.closed_at.map(|t| t.to_rfc3339()).as_deref(), Some("2025-03-31T21:00:00+00:00"));
        for (change, needle) in [
            (json!({"OPPORTUNITY": "1.005"}), "more than 2 decimals"),
            (json!({"OPPORTUNITY": "12,5"}), "OPPORTUNITY `12,5` is not a number"),
            (json!({"CURRENCY_ID": "usd"}), "CURRENCY_ID: `usd` is not an ISO 4217 currency code"),
            (json!({"DATE_MODIFY": "04.03.2025 10:15:00"}), "DATE_MODIFY"),
            (json!({"STAGE_ID": "C2:UC_X"}), "[sources.crm.stages]"),
        ] {
            let e = m.deal(&deal(change.clone())).unwrap_err();
            assert!(e.contains(needle), "{change}: {e}");
        }
    }

    #[test]
    fn bitrix_client_kinds_configured_in_vocabularies_are_kept() {
        let config = config();
        let kind = |reference: &Reference, k: &str| {
            let m = Bitrix24Records { source: "crm", config: &config, reference };
            m.client(&json!({"ID": "4", "TITLE": "Big Promo", "UF_CRM_KIND": k})).unwrap().kind
        };
        let standard = Reference::default();
        assert_eq!(kind(&standard, "Venue").as_deref(), Some("venue"));
        assert_eq!(kind(&standard, "promoter-agency").as_deref(), Some("other"));
        let configured = Reference { client_kinds: vec!["promoter-agency".into()], ..Reference::default() };
        assert_eq!(kind(&configured, "Promoter-Agency").as_deref(), Some("promoter-agency"));
    }

    #[test]
    fn bitrix_activity_types_and_owners() {
        let config = config();
        let reference = Reference::default();
        let m = Bitrix24Records { source: "crm", config: &config, reference: &reference };
        let a = |t: &str, p: &str, owner: &str| {
            m.activity(
                &json!({"ID": "9", "TYPE_ID": t, "PROVIDER_TYPE_ID": p, "OWNER_TYPE_ID": owner, "OWNER_ID": "77",
                "DIRECTION": "1", "START_TIME": "", "DEADLINE": "2025-03-04T10:00:00+03:00", "COMPLETED": "Y"}),
            )
        };
        let proposal = a("6", "PROPOSAL_SENT", "2").unwrap();
        assert_eq!(proposal.activity_type, "proposal_sent");
        assert_eq!((proposal.deal_id.as_deref(), proposal.client_id.as_deref()), (Some("crm:77"), None));
        assert_eq!(proposal.at.to_rfc3339(), "2025-03-04T07:00:00+00:00", "no START_TIME: the deadline");
        assert!(proposal.done);
        assert_eq!(proposal.direction.as_deref(), Some("incoming"));
        let call = a("2", "CALL", "4").unwrap();
        assert_eq!(
            (call.activity_type.as_str(), call.deal_id, call.client_id.as_deref()),
            ("call", None, Some("crm:77"))
        );
        assert!(a("6", "SMS", "2").unwrap_err().contains("PROVIDER_TYPE_ID `SMS`"));
    }
}
