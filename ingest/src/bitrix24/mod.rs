//! Bitrix24 REST connector (inbound webhook). With `simulate_from` it reads the Bitrix24
//! simulator ([`crate::simulators::bitrix24`]) serving a recorded folder instead of a portal.
//!
//! Streams, in read order: `managers` (user.get, read whole each sync), `clients`
//! (crm.company.list) and `deals` (crm.deal.list) by DATE_MODIFY, `deal_stage_changes`
//! (crm.stagehistory.list, append-only, by ID), `activities` (crm.activity.list) by
//! LAST_UPDATED. Reads use keyset paging in fast mode ([`api::Pager`]); a timestamp cursor
//! is re-read from `lookback_seconds` before it with `>=`, so rows sharing a second with the
//! cursor are never lost (the warehouse merge removes the repeats).
//!
//! Stage changes: `from_stage` is the deal's previous record's stage (records ordered by
//! CREATED_TIME, then ID). For the first record of a deal met in a read that is not a
//! "created" record, the previous record is fetched from the portal (`filter[<ID]` by deal,
//! newest first, 50 deals per `batch` call), so incremental reads carry `from_stage` too.
//!
//! Deletions are not seen by cursor reads; [`Bitrix24Source::upstream_ids`] lists the IDs that
//! `sync --reconcile` compares with the warehouse to mark deleted deals. Quarantined records are
//! read again by ID when the stage map or the branches' departments change (`replay`).

mod api;
pub mod config;
mod records;
mod replay;
#[cfg(test)]
mod tests;
pub mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use dealhouse_warehouse::schema::QuarantineRecord;
use futures::stream::BoxStream;
use serde_json::Value;
use tracing::{info, warn};

use self::api::{Bitrix24Api, ListSpec, Pager, Params};
use self::config::Bitrix24Config;
use self::records::{Bitrix24Records, HISTORY_CREATED, Reference, id_of, instant, text};
use self::wire::{
    ACTIVITY_LIST, COMPANY_LIST, DEAL_LIST, DEPARTMENT_GET, ENTITY_DEAL, ID, MAX_BATCH, SCOPE, SCOPES,
    STAGE_HISTORY_LIST, STATUS_LIST, USER_FIELDS_APART, USER_GET,
};
use crate::http::Upstream;
use crate::simulators::bitrix24::{Bitrix24Simulator, Bitrix24SimulatorData};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};

/// Canonical tables this source fills, in read order.
const TABLES: [&str; 5] = ["managers", "clients", "deals", "deal_stage_changes", "activities"];

/// Pulls deals, companies, users, activities and stage history from a Bitrix24 portal.
pub struct Bitrix24Source {
    ctx: SourceContext,
    config: Bitrix24Config,
    api: Bitrix24Api,
    reference: tokio::sync::OnceCell<Arc<Reference>>,
    /// The Bitrix24 simulator when `simulate_from` is used; dropping the source stops it.
    _simulator: Option<Bitrix24Simulator>,
}

impl Bitrix24Source {
    /// Builds the source: the webhook URL comes from `webhook_url`, else from the variable named
    /// by `webhook_url_env`, else the Bitrix24 simulator is started over `simulate_from`.
    pub async fn connect(ctx: SourceContext, mut config: Bitrix24Config) -> Result<Self> {
        // Rows say which currency they are in when they are stored: a later change of the
        // reporting currency must not re-label money already loaded.
        config.currency.get_or_insert_with(|| ctx.project.config.reporting.currency.clone());
        let config_error = |message: String| Error::Config { source_name: ctx.source_name.clone(), message };
        let env_url = config.webhook_url_env.as_ref().map(|var| (var, std::env::var(var)));
        let (url, simulator) = match (&config.webhook_url, env_url, &config.simulate_from) {
            (Some(url), _, _) => (url.clone(), None),
            (None, Some((_, Ok(url))), _) => (url, None),
            (None, Some((var, Err(_))), None) => {
                return Err(config_error(format!(
                    "environment variable `{var}` (webhook_url_env) is not set; set it to the inbound webhook URL \
                     https://<portal>/rest/<user>/<code>/"
                )));
            }
            (None, _, Some(dir)) => {
                let path = ctx.project.path(dir);
                let data =
                    tokio::task::spawn_blocking(move || Bitrix24SimulatorData::load(&path)).await.map_err(|e| {
                        config_error(format!("loading the recorded data for the Bitrix24 simulator failed: {e}"))
                    })??;
                let simulator = Bitrix24Simulator::start(data).await?;
                (simulator.webhook_url(), Some(simulator))
            }
            (None, None, None) => {
                return Err(config_error("set webhook_url_env (or webhook_url, or simulate_from)".into()));
            }
        };
        let max_retry = Duration::from_secs(config.max_retry_seconds);
        let api = Bitrix24Api::new(ctx.http.clone(), &url, &ctx.source_name, max_retry)?;
        info!(source = %ctx.source_name, host = api.host(), simulated = simulator.is_some(), "Bitrix24 portal");
        Ok(Self { ctx, config, api, reference: tokio::sync::OnceCell::new(), _simulator: simulator })
    }

    fn source(&self) -> &str {
        &self.ctx.source_name
    }

    /// Users, departments and stage semantics, read once per source.
    async fn reference(&self) -> Result<Arc<Reference>> {
        self.reference
            .get_or_try_init(|| async {
                let departments = self.api.list_all(DEPARTMENT_GET, &params(&[("sort", ID), ("order", "ASC")])).await?;
                let statuses = self.api.list_all(STATUS_LIST, &params(&[("order[SORT]", "ASC")])).await?;
                let mut users = vec![];
                let mut pager = Pager::by_id(spec(USER_GET), 0);
                while let Some(page) = pager.next(&self.api).await? {
                    users.extend(page.records);
                }
                let reference =
                    Reference::build(self.source(), &self.ctx.project.config, &departments, users, &statuses);
                info!(
                    source = self.source(),
                    departments = departments.len(),
                    users = reference.users.len(),
                    stages = reference.semantics.len(),
                    "Bitrix24 reference data read"
                );
                Ok(Arc::new(reference))
            })
            .await
            .cloned()
    }

    /// Every upstream ID of a table's records: the hook for a reconciliation step that flags
    /// records deleted upstream (cursor reads never see deletions).
    pub async fn upstream_ids(&self, table: &str) -> Result<Vec<i64>> {
        let Some(method) = method_of(table) else {
            return Err(self.unknown_table(table));
        };
        let mut spec = spec(method);
        spec.cursor_field = None;
        spec.params.retain(|(k, _)| k != "select[]");
        spec.params.push(("select[]".into(), ID.into()));
        let mut pager = Pager::by_id(spec, 0);
        let mut ids = vec![];
        while let Some(page) = pager.next(&self.api).await? {
            ids.extend(page.records.iter().filter_map(id_of));
        }
        Ok(ids)
    }

    fn unknown_table(&self, table: &str) -> Error {
        Error::Config {
            source_name: self.source().to_string(),
            message: format!("bitrix24 sources fill {}, not `{table}`", TABLES.join(", ")),
        }
    }

    fn records<'a>(&'a self, reference: &'a Reference) -> Bitrix24Records<'a> {
        Bitrix24Records { source: self.source(), config: &self.config, reference }
    }

    /// Where records come from, for quarantine entries.
    fn upstream(&self) -> Upstream<'_> {
        Upstream { source: self.source(), shown: self.api.host(), id_field: ID, id: |r| text(r, ID) }
    }

    /// Where a read starts from the stored cursor.
    fn pager(&self, table: &'static str, cursor: Option<&str>) -> Result<Pager> {
        let method = method_of(table).ok_or_else(|| self.unknown_table(table))?;
        let spec = spec(method);
        Ok(match spec.cursor_field {
            None => {
                let after = match cursor.map(|c| c.trim().parse::<i64>()) {
                    Some(Ok(id)) => id,
                    Some(Err(_)) => {
                        warn!(source = self.source(), table, cursor, "stored cursor is not an ID; reading everything");
                        0
                    }
                    None => 0,
                };
                Pager::by_id(spec, after)
            }
            Some(_) => {
                let since = match cursor.map(DateTime::parse_from_rfc3339) {
                    Some(Ok(t)) => {
                        let lookback =
                            chrono::Duration::seconds(self.config.lookback_seconds.min(i64::MAX as u64) as i64);
                        Some(t.with_timezone(&Utc) - lookback)
                    }
                    Some(Err(_)) => {
                        warn!(
                            source = self.source(),
                            table, cursor, "stored cursor is not a timestamp; reading everything"
                        );
                        None
                    }
                    None => None,
                };
                Pager::by_time(spec, since)
            }
        })
    }

    async fn next_chunk(&self, mut st: ReadState) -> Result<Option<(Chunk, ReadState)>> {
        if st.finished {
            return Ok(None);
        }
        let reference = self.reference().await?;
        let mapper = self.records(&reference);
        if st.table == "managers" {
            st.finished = true;
            let location: Arc<str> = USER_GET.into();
            let records: Vec<(Value, Arc<str>)> =
                reference.users.iter().map(|u| (u.clone(), location.clone())).collect();
            let chunk = self.upstream().chunk(st.table, USER_GET, &records, None, |r| mapper.manager(r))?;
            return Ok(Some((chunk, st)));
        }
        let mut pager = match st.pager.take() {
            Some(p) => p,
            None => self.pager(st.table, st.cursor.as_deref())?,
        };
        let mut records: Vec<(Value, Arc<str>)> = vec![];
        while records.len() < self.config.chunk_rows.max(1) {
            match pager.next(&self.api).await? {
                Some(page) => records.extend(page.records.into_iter().map(|r| (r, page.location.clone()))),
                None => {
                    st.finished = true;
                    break;
                }
            }
        }
        st.pager = Some(pager);
        if records.is_empty() {
            return Ok(None);
        }
        let chunk = match st.table {
            "clients" => {
                let cursor = max_instant(&records, "DATE_MODIFY");
                self.upstream().chunk(st.table, COMPANY_LIST, &records, cursor, |r| mapper.client(r))?
            }
            "deals" => {
                let cursor = max_instant(&records, "DATE_MODIFY");
                self.upstream().chunk(st.table, DEAL_LIST, &records, cursor, |r| mapper.deal(r))?
            }
            "activities" => {
                let cursor = max_instant(&records, "LAST_UPDATED");
                self.upstream().chunk(st.table, ACTIVITY_LIST, &records, cursor, |r| mapper.activity(r))?
            }
            "deal_stage_changes" => self.stage_chunk(&mapper, &mut st, records).await?,
            other => return Err(self.unknown_table(other)),
        };
        Ok(Some((chunk, st)))
    }

    async fn stage_chunk(
        &self,
        mapper: &Bitrix24Records<'_>,
        st: &mut ReadState,
        mut records: Vec<(Value, Arc<str>)>,
    ) -> Result<Chunk> {
        let cursor = records.iter().filter_map(|(r, _)| id_of(r)).max().map(|id| id.to_string());
        records::history_order(&mut records);
        // Deals met for the first time in this read whose first record is a move, not a
        // creation: their previous stage is in history already read by an earlier sync.
        let mut need: Vec<(String, i64)> = vec![];
        for (r, _) in &records {
            let Some(deal) = text(r, "OWNER_ID") else { continue };
            if st.previous.contains_key(&deal) {
                continue;
            }
            if text(r, "TYPE_ID").as_deref() != Some(HISTORY_CREATED)
                && let Some(id) = id_of(r)
            {
                need.push((deal.clone(), id));
            }
            st.previous.insert(deal, None);
        }
        for group in need.chunks(MAX_BATCH) {
            let found = self.previous_stages(mapper, group).await?;
            st.previous.extend(found);
        }
        // Each record's from-stage is the stage its deal reached with the record before it.
        let previous = &mut st.previous;
        self.upstream().chunk("deal_stage_changes", STAGE_HISTORY_LIST, &records, cursor, |record| {
            let deal = text(record, "OWNER_ID").unwrap_or_default();
            let from = if text(record, "TYPE_ID").as_deref() == Some(HISTORY_CREATED) {
                None
            } else {
                previous.get(&deal).cloned().flatten()
            };
            let row = mapper.stage_change(record, from);
            previous.insert(deal, row.as_ref().ok().map(|r| r.to_stage.clone()));
            row
        })
    }

    /// The canonical stage each deal was in before history record `before_id` (None when it has
    /// no earlier record or that stage is not mapped).
    async fn previous_stages(
        &self,
        mapper: &Bitrix24Records<'_>,
        deals: &[(String, i64)],
    ) -> Result<HashMap<String, Option<String>>> {
        let commands: Vec<(String, &str, Params)> = deals
            .iter()
            .map(|(deal, before_id)| {
                let p = params(&[
                    ("entityTypeId", ENTITY_DEAL),
                    ("filter[OWNER_ID]", deal),
                    ("filter[<ID]", &before_id.to_string()),
                    ("order[ID]", "DESC"),
                    ("select[]", ID),
                    ("select[]", "STAGE_ID"),
                    ("select[]", "STAGE_SEMANTIC_ID"),
                    ("start", "-1"),
                ]);
                (format!("d{deal}"), STAGE_HISTORY_LIST, p)
            })
            .collect();
        let reply = self.api.batch(&commands).await?;
        if let Some((name, error)) = reply.errors.iter().next() {
            return Err(Error::Read {
                source_name: self.source().to_string(),
                location: self.api.location(wire::BATCH),
                message: format!("{STAGE_HISTORY_LIST} for deal {}: {error}", name.trim_start_matches('d')),
            });
        }
        let mut out = HashMap::new();
        for (deal, _) in deals {
            let previous = reply
                .results
                .get(&format!("d{deal}"))
                .cloned()
                .and_then(|r| api::records(r, true).ok())
                .and_then(|rows| rows.into_iter().next())
                .and_then(|r| mapper.stage(&text(&r, "STAGE_ID")?, text(&r, "STAGE_SEMANTIC_ID")).ok());
            out.insert(deal.clone(), previous);
        }
        Ok(out)
    }
}

/// Progress of one stream's read.
struct ReadState {
    table: &'static str,
    cursor: Option<String>,
    pager: Option<Pager>,
    /// Deal ID -> canonical stage after its latest record read so far (stage history).
    previous: HashMap<String, Option<String>>,
    finished: bool,
}

fn params(pairs: &[(&str, &str)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn method_of(table: &str) -> Option<&'static str> {
    Some(match table {
        "managers" => USER_GET,
        "clients" => COMPANY_LIST,
        "deals" => DEAL_LIST,
        "deal_stage_changes" => STAGE_HISTORY_LIST,
        "activities" => ACTIVITY_LIST,
        _ => return None,
    })
}

/// How each method is paged.
fn spec(method: &'static str) -> ListSpec {
    let all_fields = params(&[("select[]", "*"), ("select[]", "UF_*")]);
    match method {
        _ if USER_FIELDS_APART.contains(&method) => {
            ListSpec { method, params: all_fields, cursor_field: Some("DATE_MODIFY"), sort_param: false, items: false }
        }
        ACTIVITY_LIST => ListSpec {
            method,
            params: params(&[("select[]", "*")]),
            cursor_field: Some("LAST_UPDATED"),
            sort_param: false,
            items: false,
        },
        STAGE_HISTORY_LIST => ListSpec {
            method,
            params: params(&[("entityTypeId", ENTITY_DEAL)]),
            cursor_field: None,
            sort_param: false,
            items: true,
        },
        _ => ListSpec { method, params: vec![], cursor_field: None, sort_param: method == USER_GET, items: false },
    }
}

/// The chunk's cursor: the latest `field` among its records.
fn max_instant(records: &[(Value, Arc<str>)], field: &str) -> Option<String> {
    records.iter().filter_map(|(r, _)| instant(r, field)).max().map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

#[async_trait::async_trait]
impl Source for Bitrix24Source {
    fn mapping_fingerprint(&self) -> Option<String> {
        Some(self.fingerprint())
    }

    fn replay(&self, table: &'static str, held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        self.replay_stream(table, held)
    }

    async fn list_ids(&self, table: &'static str) -> Result<Option<Vec<String>>> {
        // Only deals carry a `deleted` flag in the canonical model.
        if table != "deals" {
            return Ok(None);
        }
        Ok(Some(self.upstream_ids(table).await?.into_iter().map(|id| id.to_string()).collect()))
    }

    async fn check(&self) -> Result<()> {
        let reply = self.api.call(SCOPE, &[]).await?;
        let scopes: Vec<String> = match reply.result {
            Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            _ => vec![],
        };
        let has = |s: &str| scopes.iter().any(|x| x == s);
        // Users are also readable through the narrower user_basic and user_brief scopes.
        let missing: Vec<&str> = SCOPES
            .into_iter()
            .filter(|s| !(has(s) || (*s == "user" && (has("user_basic") || has("user_brief")))))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Config {
                source_name: self.source().to_string(),
                message: format!(
                    "the webhook lacks the {} scope(s) (it has: {}); edit the inbound webhook in the portal",
                    missing.join(", "),
                    scopes.join(", ")
                ),
            });
        }
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        // Row counts for progress bars: one batch call, and no failure if it is refused.
        let commands: Vec<(String, &str, Params)> = TABLES
            .iter()
            .filter_map(|t| {
                let method = method_of(t)?;
                let mut p =
                    if method == STAGE_HISTORY_LIST { params(&[("entityTypeId", ENTITY_DEAL)]) } else { vec![] };
                if method != USER_GET {
                    p.push(("select[]".into(), ID.into()));
                }
                p.push(("start".into(), "0".into()));
                Some((t.to_string(), method, p))
            })
            .collect();
        let totals = match self.api.batch(&commands).await {
            Ok(reply) => reply.totals,
            Err(e) => {
                warn!(source = self.source(), error = %e, "row estimates unavailable");
                HashMap::new()
            }
        };
        Ok(TABLES.iter().map(|t| StreamInfo { table: t, estimated_rows: totals.get(*t).copied() }).collect())
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        if !TABLES.contains(&table) {
            let e = self.unknown_table(table);
            return Box::pin(futures::stream::once(async move { Err(e) }));
        }
        let state = ReadState { table, cursor, pager: None, previous: HashMap::new(), finished: false };
        Box::pin(futures::stream::try_unfold(state, move |st| self.next_chunk(st)))
    }
}
