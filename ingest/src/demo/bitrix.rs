//! The company's CRM as a Bitrix24 portal returns it: one JSON Lines file per REST method, one
//! record per line exactly as it appears in the method's `result` (`result.items` for stage
//! history), sorted by ID.
//!
//! Bitrix24 sends every scalar as a string (`"OPPORTUNITY":"150000.00"`) and instants in the
//! portal's zone (`+03:00`); the exceptions are the user's `ACTIVE` (a JSON boolean) and
//! `UF_DEPARTMENT` (an array of integers). The Bitrix24 simulator serves these files as is; method
//! names come from the connector's [`crate::bitrix24::wire`].

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::calendar::{moscow_date, portal_date, portal_time};
use super::cities::{GROUP_NAME, MAIL_DOMAIN};
use super::company::{ChangeKind, Company, DIRECTOR_USER_ID};
use super::story::Stage;
use super::writers::{Output, jsonl_file};
use crate::Result;
use crate::bitrix24::wire::{
    ACTIVITY_LIST, COMPANY_LIST, DEAL_LIST, DEPARTMENT_GET, STAGE_HISTORY_LIST, STATUS_LIST, USER_GET,
};

/// Department id of the group's root department.
pub(crate) const ROOT_DEPARTMENT_ID: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Department<'a> {
    id: String,
    name: &'a str,
    sort: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<String>,
    uf_head: String,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct User<'a> {
    id: String,
    active: bool,
    name: &'a str,
    last_name: &'a str,
    email: &'a str,
    work_position: &'a str,
    uf_department: Vec<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Status {
    id: String,
    entity_id: &'static str,
    status_id: &'static str,
    name: &'static str,
    sort: String,
    semantics: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct CompanyRecord<'a> {
    id: String,
    title: &'a str,
    company_type: &'static str,
    industry: &'static str,
    assigned_by_id: String,
    date_create: String,
    date_modify: String,
    uf_crm_inn: &'a str,
    uf_crm_kind: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct DealRecord<'a> {
    id: String,
    title: &'a str,
    category_id: &'static str,
    stage_id: &'static str,
    stage_semantic_id: &'static str,
    opportunity: String,
    currency_id: &'static str,
    company_id: String,
    assigned_by_id: String,
    date_create: String,
    date_modify: String,
    begindate: String,
    closedate: String,
    closed: &'static str,
    source_id: &'static str,
    uf_crm_commission: String,
    uf_crm_lost_reason: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct StageHistoryItem {
    id: String,
    type_id: &'static str,
    owner_id: String,
    created_time: String,
    category_id: &'static str,
    stage_semantic_id: &'static str,
    stage_id: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct ActivityRecord {
    id: String,
    owner_type_id: &'static str,
    owner_id: String,
    type_id: &'static str,
    provider_id: &'static str,
    provider_type_id: &'static str,
    subject: &'static str,
    direction: &'static str,
    responsible_id: String,
    start_time: String,
    end_time: String,
    deadline: String,
    completed: &'static str,
    created: String,
    last_updated: String,
}

/// The file of a method's records in a recorded portal folder.
fn recorded(dir: &Path, method: &str) -> PathBuf {
    dir.join(format!("{method}.jsonl"))
}

/// Writes `DIR/crm/*.jsonl` and returns the files written.
pub(crate) fn write_portal(company: &Company, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();

    let mut out = jsonl_file(&recorded(dir, DEPARTMENT_GET))?;
    let root = Department {
        id: ROOT_DEPARTMENT_ID.to_string(),
        name: GROUP_NAME,
        sort: "100".into(),
        parent: None,
        uf_head: DIRECTOR_USER_ID.to_string(),
    };
    out.record(&root)?;
    let head_at = company.period.cutoff - chrono::TimeDelta::seconds(1);
    for (b, branch) in company.branches.iter().enumerate() {
        let head = branch.occupant(0, head_at).and_then(|t| company.managers.get(t.manager));
        out.record(&Department {
            id: branch.department_id.to_string(),
            name: branch.city.name,
            sort: ((b + 1) * 10).to_string(),
            parent: Some(ROOT_DEPARTMENT_ID.to_string()),
            uf_head: head.map(|m| m.user_id).unwrap_or(DIRECTOR_USER_ID).to_string(),
        })?;
    }
    files.push(out.finish()?);

    let mut out = jsonl_file(&recorded(dir, USER_GET))?;
    let director_email = format!("director@{MAIL_DOMAIN}");
    out.record(&User {
        id: DIRECTOR_USER_ID.to_string(),
        active: true,
        name: "Андрей",
        last_name: "Белов",
        email: &director_email,
        work_position: "Генеральный директор",
        uf_department: vec![ROOT_DEPARTMENT_ID],
    })?;
    for m in &company.managers {
        let department = company.branches.get(m.branch).map(|b| b.department_id).unwrap_or(ROOT_DEPARTMENT_ID);
        out.record(&User {
            id: m.user_id.to_string(),
            active: m.left.is_none(),
            name: m.name.first,
            last_name: &m.name.last,
            email: &m.email,
            work_position: m.position,
            uf_department: vec![department],
        })?;
    }
    files.push(out.finish()?);

    let mut out = jsonl_file(&recorded(dir, STATUS_LIST))?;
    for (i, stage) in Stage::ALL.into_iter().enumerate() {
        out.record(&Status {
            id: (i + 1).to_string(),
            entity_id: "DEAL_STAGE",
            status_id: stage.status_id(),
            name: stage.name(),
            sort: stage.sort().to_string(),
            semantics: stage.semantics(),
        })?;
    }
    files.push(out.finish()?);

    let mut out = jsonl_file(&recorded(dir, COMPANY_LIST))?;
    for c in &company.clients {
        out.record(&CompanyRecord {
            id: c.id.to_string(),
            title: &c.name.title,
            company_type: "CUSTOMER",
            industry: super::names::industry(c.kind),
            assigned_by_id: c.assigned.to_string(),
            date_create: portal_time(c.created),
            date_modify: portal_time(c.modified),
            uf_crm_inn: c.inn.as_deref().unwrap_or(""),
            uf_crm_kind: c.kind,
        })?;
    }
    files.push(out.finish()?);

    let mut out = jsonl_file(&recorded(dir, DEAL_LIST))?;
    for d in &company.deals {
        out.record(&DealRecord {
            id: d.id.to_string(),
            title: &d.title,
            category_id: "0",
            stage_id: d.stage.status_id(),
            stage_semantic_id: d.stage.semantic_id(),
            opportunity: d.amount.to_string(),
            currency_id: "RUB",
            company_id: company.clients.get(d.client).map(|c| c.id).unwrap_or(0).to_string(),
            assigned_by_id: d.assigned.to_string(),
            date_create: portal_time(d.created),
            date_modify: portal_time(d.modified),
            begindate: portal_date(moscow_date(d.created)),
            closedate: portal_date(d.close_date),
            closed: if d.stage.is_final() { "Y" } else { "N" },
            source_id: d.source,
            uf_crm_commission: d.commission.to_string(),
            uf_crm_lost_reason: d.lost_reason,
        })?;
    }
    files.push(out.finish()?);

    let mut out = jsonl_file(&recorded(dir, STAGE_HISTORY_LIST))?;
    for c in &company.stage_changes {
        out.record(&StageHistoryItem {
            id: c.id.to_string(),
            type_id: match c.kind {
                ChangeKind::Created => "1",
                ChangeKind::Moved => "2",
                ChangeKind::MovedToFinal => "3",
            },
            owner_id: company.deals.get(c.deal).map(|d| d.id).unwrap_or(0).to_string(),
            created_time: portal_time(c.at),
            category_id: "0",
            stage_semantic_id: c.stage.semantic_id(),
            stage_id: c.stage.status_id(),
        })?;
    }
    files.push(out.finish()?);

    let mut out = jsonl_file(&recorded(dir, ACTIVITY_LIST))?;
    for a in &company.activities {
        let s = &a.story;
        out.record(&ActivityRecord {
            id: a.id.to_string(),
            owner_type_id: "2",
            owner_id: company.deals.get(a.deal).map(|d| d.id).unwrap_or(0).to_string(),
            type_id: s.kind.type_id(),
            provider_id: s.kind.provider_id(),
            provider_type_id: s.kind.provider_type_id(),
            subject: s.subject,
            direction: s.direction,
            responsible_id: a.responsible.to_string(),
            start_time: portal_time(s.start),
            end_time: portal_time(s.end),
            deadline: portal_time(s.deadline),
            completed: if s.completed { "Y" } else { "N" },
            created: portal_time(s.created),
            last_updated: portal_time(s.updated),
        })?;
    }
    files.push(out.finish()?);
    Ok(files)
}

/// Writes one record per line.
impl Output {
    fn record<T: Serialize>(&mut self, value: &T) -> Result<()> {
        serde_json::to_writer(&mut self.writer, value).map_err(|e| self.error(e.to_string()))?;
        self.writer.write_all(b"\n").map_err(|e| self.error(e.to_string()))
    }
}
