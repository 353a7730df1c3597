//! amoCRM API v4 connector (long-lived token). With `simulate_from` it reads the amoCRM
//! simulator ([`crate::simulators::amocrm`]) serving a recorded folder instead of an account.
//!
//! Streams, in read order: `managers` (`/api/v4/users`, read whole each sync), `clients`
//! (`/api/v4/companies`) and `deals` (`/api/v4/leads?with=contacts`) by `updated_at`,
//! `deal_stage_changes` (`/api/v4/events`, type `lead_status_changed`) by `created_at`,
//! `activities` (tasks and call notes, by `updated_at`: [`activities`]). Users,
//! pipelines (with their statuses) and loss reasons are read once per source as reference data;
//! `check` validates the `[stages]` config against the account's pipelines.
//!
//! Incremental reads ask for `filter[<field>][from]` = the cursor minus `lookback_seconds`
//! (an inclusive bound on whole seconds), ordered by id so that records changed during the read
//! keep their place in the offset paging; repeats are merged away by the warehouse's upsert.
//! Lists are followed by `_links.next` until it is absent or the account answers 204.
//!
//! The cursor is committed with the last chunk of a read only: the earliest of the newest
//! change seen and the server's clock when the read began, so a record changed while the read
//! was under way is read again next time. Earlier chunks commit their rows without a cursor;
//! a read that fails half-way keeps them and starts over from the old cursor.
//!
//! Deletions: a lead that comes with `is_deleted: true` is stored with `deleted = true`. amoCRM
//! leaves deleted leads out of the normal list (they appear only under `with=only_deleted`, as
//! bare ids), so rows already in the warehouse are not flagged by a cursor read.
//!
//! Quarantined records are read again by id when the stage map or the branches' user groups
//! change (`replay`).

mod activities;
mod activity_records;
#[cfg(test)]
mod activity_tests;
mod api;
pub mod config;
mod records;
mod replay;
#[cfg(test)]
mod tests;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use dealhouse_warehouse::schema::QuarantineRecord;
use futures::stream::BoxStream;
use serde_json::Value;
use tracing::{info, warn};

use self::api::{AccountConfig, AmoCrmApi, Lister, path_with};
use self::config::AmoCrmConfig;
use self::records::{AmoCrmRecords, Reference, id_text, int};
use self::wire::{
    COMPANIES, EVENTS, LEAD_STATUS_CHANGED, LEADS, LOSS_REASONS, LOST, MAX_EVENTS_LIMIT, MAX_LIMIT, PIPELINES, USERS,
    WON,
};
use crate::http::Upstream;
use crate::simulators::amocrm::{AmoCrmSimulator, AmoCrmSimulatorData};
use crate::source::{Chunk, Source, SourceContext, StreamInfo};
use crate::{Error, Result};

/// Canonical tables this source fills, in read order.
const TABLES: [&str; 5] = ["managers", "clients", "deals", "deal_stage_changes", activities::ACTIVITIES];

/// Pulls leads, companies, users, lead status changes, tasks and calls from an amoCRM account.
pub struct AmoCrmSource {
    ctx: SourceContext,
    config: AmoCrmConfig,
    api: AmoCrmApi,
    reference: tokio::sync::OnceCell<Arc<Reference>>,
    /// The amoCRM simulator when `simulate_from` is used; dropping the source stops it.
    _simulator: Option<AmoCrmSimulator>,
}

/// How one stream is listed.
struct StreamSpec {
    path: &'static str,
    /// `_embedded` key of the records.
    key: &'static str,
    /// Unix-seconds field the cursor follows.
    cursor_field: &'static str,
}

fn spec(table: &str) -> Option<StreamSpec> {
    Some(match table {
        "clients" => StreamSpec { path: COMPANIES, key: "companies", cursor_field: "updated_at" },
        "deals" => StreamSpec { path: LEADS, key: "leads", cursor_field: "updated_at" },
        "deal_stage_changes" => StreamSpec { path: EVENTS, key: "events", cursor_field: "created_at" },
        _ => return None,
    })
}

impl AmoCrmSource {
    /// Builds the source: the token comes from `token_env` or `token_file`; without `base_url`
    /// the amoCRM simulator is started over `simulate_from`.
    pub async fn connect(ctx: SourceContext, mut config: AmoCrmConfig) -> Result<Self> {
        // Rows say which currency they are in when they are stored: a later change of the
        // reporting currency must not re-label money already loaded.
        config.currency.get_or_insert_with(|| ctx.project.config.reporting.currency.clone());
        let config_error = |message: String| Error::Config { source_name: ctx.source_name.clone(), message };
        let (base_url, token, token_origin, simulator) = match (&config.base_url, &config.simulate_from) {
            (Some(url), _) => {
                let (token, origin) = read_token(&ctx, &config)?;
                (url.clone(), token, origin, None)
            }
            (None, Some(dir)) => {
                let path = ctx.project.path(dir);
                let data =
                    tokio::task::spawn_blocking(move || AmoCrmSimulatorData::load(&path)).await.map_err(|e| {
                        config_error(format!("loading the recorded data for the amoCRM simulator failed: {e}"))
                    })??;
                let token = random_token();
                let simulator = AmoCrmSimulator::start(data, &token).await?;
                (simulator.base_url(), token, "the amoCRM simulator's token".to_string(), Some(simulator))
            }
            (None, None) => {
                return Err(config_error("set base_url and token_env (or simulate_from)".into()));
            }
        };
        let api = AmoCrmApi::new(
            ctx.http.clone(),
            AccountConfig {
                base_url: &base_url,
                token,
                token_origin,
                source: &ctx.source_name,
                max_retry: Duration::from_secs(config.max_retry_seconds),
                requests_per_second: config.requests_per_second,
            },
        )?;
        info!(source = %ctx.source_name, account = api.shown(), simulated = simulator.is_some(), "amoCRM account");
        Ok(Self { ctx, config, api, reference: tokio::sync::OnceCell::new(), _simulator: simulator })
    }

    fn source(&self) -> &str {
        &self.ctx.source_name
    }

    /// Users, pipelines with their statuses, and loss reasons, read once per source.
    async fn reference(&self) -> Result<Arc<Reference>> {
        self.reference
            .get_or_try_init(|| async {
                let mut users = vec![];
                let mut lister =
                    Lister::new("users", path_with(USERS, &[("limit", MAX_LIMIT.to_string()), ("page", "1".into())]));
                while let Some(page) = lister.next(&self.api).await? {
                    users.extend(page.records);
                }
                let pipelines = self.embedded(PIPELINES, "pipelines").await?;
                // Loss reasons only name the reason of lost deals: without them the id is kept.
                let loss_reasons = match self.embedded(LOSS_REASONS, "loss_reasons").await {
                    Ok(r) => r,
                    Err(e) => {
                        warn!(source = self.source(), error = %e, "loss reasons unavailable; lost deals keep the reason id");
                        vec![]
                    }
                };
                let reference =
                    Reference::build(self.source(), &self.ctx.project.config, users, &pipelines, &loss_reasons);
                info!(
                    source = self.source(),
                    users = reference.users.len(),
                    pipelines = reference.pipelines.len(),
                    statuses = reference.statuses.len(),
                    "amoCRM reference data read"
                );
                Ok(Arc::new(reference))
            })
            .await
            .cloned()
    }

    /// The `_embedded.<key>` list of an unpaged answer (empty on 204).
    async fn embedded(&self, path: &str, key: &str) -> Result<Vec<Value>> {
        let answer = self.api.get(path).await?;
        if answer.body.is_null() {
            return Ok(vec![]);
        }
        match answer.body.get("_embedded").and_then(|e| e.get(key)) {
            Some(Value::Array(items)) => Ok(items.clone()),
            _ => Err(self.api.error(path, format!("the answer has no `_embedded.{key}` list"))),
        }
    }

    fn unknown_table(&self, table: &str) -> Error {
        Error::Config {
            source_name: self.source().to_string(),
            message: format!("amocrm sources fill {}, not `{table}`", TABLES.join(", ")),
        }
    }

    /// The first request of a stream's read from `since` (None = everything).
    fn first_request(&self, spec: &StreamSpec, since: Option<i64>) -> String {
        let mut params: Vec<(&str, String)> = match spec.key {
            "events" => vec![
                ("filter[type]", LEAD_STATUS_CHANGED.into()),
                ("filter[entity]", "lead".into()),
                ("limit", MAX_EVENTS_LIMIT.to_string()),
            ],
            "leads" => vec![("with", "contacts".into()), ("limit", MAX_LIMIT.to_string()), ("order[id]", "asc".into())],
            _ => vec![("limit", MAX_LIMIT.to_string()), ("order[id]", "asc".into())],
        };
        if let Some(since) = since {
            params.push((
                if spec.cursor_field == "created_at" { "filter[created_at][from]" } else { "filter[updated_at][from]" },
                since.to_string(),
            ));
        }
        params.push(("page", "1".into()));
        path_with(spec.path, &params)
    }

    /// Where a read starts: the stored cursor minus the look-back.
    fn since(&self, table: &str, cursor: Option<&str>) -> Option<i64> {
        let cursor = cursor?;
        match DateTime::parse_from_rfc3339(cursor.trim()) {
            Ok(t) => {
                let lookback = self.config.lookback_seconds.min(i64::MAX as u64) as i64;
                Some(t.timestamp().saturating_sub(lookback).max(0))
            }
            Err(_) => {
                warn!(source = self.source(), table, cursor, "stored cursor is not a timestamp; reading everything");
                None
            }
        }
    }

    async fn next_chunk(&self, mut st: ReadState) -> Result<Option<(Chunk, ReadState)>> {
        if st.finished {
            return Ok(None);
        }
        let reference = self.reference().await?;
        let mapper = AmoCrmRecords { source: self.source(), config: &self.config, reference: &reference };
        if st.table == "managers" {
            st.finished = true;
            let location: Arc<str> = USERS.into();
            let records: Vec<(Value, Arc<str>)> =
                reference.users.iter().map(|u| (u.clone(), location.clone())).collect();
            let chunk = self.upstream().chunk(st.table, USERS, &records, None, |r| mapper.manager(r))?;
            return Ok(Some((chunk, st)));
        }
        let spec = spec(st.table).ok_or_else(|| self.unknown_table(st.table))?;
        let mut lister = match st.lister.take() {
            Some(l) => l,
            None => Lister::new(spec.key, self.first_request(&spec, st.since)),
        };
        let mut records: Vec<(Value, Arc<str>)> = vec![];
        let mut end = false;
        while records.len() < self.config.chunk_rows.max(1) {
            let Some(page) = lister.next(&self.api).await? else {
                end = true;
                break;
            };
            if st.started.is_none() {
                st.started = Some(page.date.unwrap_or_else(Utc::now).timestamp());
            }
            for r in page.records {
                if let Some(t) = int(&r, spec.cursor_field) {
                    st.max_seen = Some(st.max_seen.map_or(t, |m| m.max(t)));
                }
                records.push((r, page.location.clone()));
            }
        }
        st.lister = Some(lister);
        let cursor = if end {
            st.finished = true;
            resume_cursor(st.max_seen, st.started)
        } else {
            None
        };
        if records.is_empty() && (cursor.is_none() || !st.emitted) {
            return Ok(None);
        }
        st.emitted = true;
        let chunk = match st.table {
            "clients" => self.upstream().chunk(st.table, spec.path, &records, cursor, |r| mapper.client(r))?,
            "deals" => self.upstream().chunk(st.table, spec.path, &records, cursor, |r| mapper.deal(r))?,
            "deal_stage_changes" => {
                self.upstream().chunk(st.table, spec.path, &records, cursor, |r| mapper.stage_change(r))?
            }
            other => return Err(self.unknown_table(other)),
        };
        Ok(Some((chunk, st)))
    }

    /// Where records come from, for quarantine entries.
    fn upstream(&self) -> Upstream<'_> {
        Upstream { source: self.source(), shown: self.api.shown(), id_field: "id", id: id_text }
    }
}

/// Progress of one stream's read.
struct ReadState {
    table: &'static str,
    since: Option<i64>,
    lister: Option<Lister>,
    /// Newest `updated_at` / `created_at` read so far.
    max_seen: Option<i64>,
    /// The server's clock at the read's first page (Unix seconds).
    started: Option<i64>,
    /// A chunk was handed out already.
    emitted: bool,
    finished: bool,
}

/// Where the next read resumes: the newest change seen, or the server's clock when the read
/// began if that is earlier (records changed after the read began may have been passed over);
/// None when nothing was seen.
fn resume_cursor(max_seen: Option<i64>, started: Option<i64>) -> Option<String> {
    max_seen.map(|m| {
        let at = started.map_or(m, |s| m.min(s));
        DateTime::from_timestamp(at, 0).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

/// The token and a description of where it came from (never the token itself).
fn read_token(ctx: &SourceContext, config: &AmoCrmConfig) -> Result<(String, String)> {
    let config_error = |message: String| Error::Config { source_name: ctx.source_name.clone(), message };
    match (&config.token_env, &config.token_file) {
        (Some(var), _) => match std::env::var(var) {
            Ok(token) if !token.trim().is_empty() => Ok((token, format!("the variable `{var}` (token_env)"))),
            _ => Err(config_error(format!(
                "environment variable `{var}` (token_env) is not set; set it to the long-lived token of the account's \
                 private integration"
            ))),
        },
        (None, Some(file)) => {
            let path = ctx.project.path(file);
            let token = std::fs::read_to_string(&path)
                .map_err(|e| config_error(format!("cannot read token_file `{}`: {e}", path.display())))?;
            if token.trim().is_empty() {
                return Err(config_error(format!("token_file `{}` is empty", path.display())));
            }
            Ok((token, format!("the file `{}` (token_file)", path.display())))
        }
        (None, None) => Err(config_error("set token_env (or token_file) to the long-lived token".into())),
    }
}

/// A token for the amoCRM simulator, unique to this run.
fn random_token() -> String {
    use rand::{Rng, SeedableRng};
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(nanos as u64);
    (0..32).map(|_| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.random_range(0..36)])).collect()
}

#[async_trait::async_trait]
impl Source for AmoCrmSource {
    fn mapping_fingerprint(&self) -> Option<String> {
        Some(self.fingerprint())
    }

    fn replay(&self, table: &'static str, held: Vec<QuarantineRecord>) -> BoxStream<'_, Result<Chunk>> {
        self.replay_stream(table, held)
    }

    async fn list_ids(&self, table: &'static str) -> Result<Option<Vec<String>>> {
        // Only deals carry a `deleted` flag in the canonical model; amoCRM leaves deleted leads
        // out of the plain list, so every id it lists is a live lead.
        if table != "deals" {
            return Ok(None);
        }
        let spec = spec(table).ok_or_else(|| self.unknown_table(table))?;
        let first = path_with(
            spec.path,
            &[("limit", MAX_LIMIT.to_string()), ("order[id]", "asc".into()), ("page", "1".into())],
        );
        let mut lister = Lister::new(spec.key, first);
        let mut ids = vec![];
        while let Some(page) = lister.next(&self.api).await? {
            ids.extend(page.records.iter().filter_map(|r| int(r, "id")).map(|id| id.to_string()));
        }
        Ok(Some(ids))
    }

    async fn check(&self) -> Result<()> {
        let reference = self.reference().await?;
        // A stage entry naming a pipeline or status the account does not have is a typo or a
        // stale config: say so now rather than quarantine every lead later.
        for (pipeline, statuses) in &self.config.stages {
            let Ok(pid) = pipeline.trim().parse::<i64>() else { continue };
            let Some(name) = reference.pipelines.get(&pid) else {
                let mut known: Vec<String> =
                    reference.pipelines.iter().map(|(id, n)| format!("{id} \"{n}\"")).collect();
                known.sort();
                return Err(Error::Config {
                    source_name: self.source().to_string(),
                    message: format!(
                        "[sources.{}.stages.{pipeline}]: the account has no pipeline {pipeline} (pipelines: {})",
                        self.source(),
                        known.join(", ")
                    ),
                });
            };
            for status in statuses.keys() {
                let Ok(sid) = status.trim().parse::<i64>() else { continue };
                if !reference.statuses.contains_key(&(pid, sid)) {
                    let mut known: Vec<String> = reference
                        .statuses
                        .iter()
                        .filter(|((p, s), _)| *p == pid && !matches!(*s, WON | LOST))
                        .map(|((_, s), n)| format!("{s} \"{n}\""))
                        .collect();
                    known.sort();
                    return Err(Error::Config {
                        source_name: self.source().to_string(),
                        message: format!(
                            "[sources.{}.stages.{pipeline}] {status}: pipeline \"{name}\" has no status {status} \
                             (statuses: {})",
                            self.source(),
                            known.join(", ")
                        ),
                    });
                }
            }
        }
        let mut unmapped: Vec<String> = reference
            .statuses
            .iter()
            .filter(|((p, s), _)| {
                !matches!(*s, WON | LOST)
                    && !self.config.stages.get(&p.to_string()).is_some_and(|m| m.contains_key(&s.to_string()))
            })
            .map(|((p, s), n)| format!("{p}:{s} \"{n}\""))
            .collect();
        if !unmapped.is_empty() {
            unmapped.sort();
            warn!(
                source = self.source(),
                statuses = %unmapped.join(", "),
                "statuses without a canonical stage: their leads will be quarantined; map them under [sources.<name>.stages.<pipeline>]"
            );
        }
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<StreamInfo>> {
        // amoCRM lists carry no totals; only the users are known up front.
        let users = self.reference().await?.users.len() as u64;
        Ok(TABLES
            .iter()
            .map(|t| StreamInfo { table: t, estimated_rows: (*t == "managers").then_some(users) })
            .collect())
    }

    fn read(&self, table: &'static str, cursor: Option<String>) -> BoxStream<'_, Result<Chunk>> {
        if !TABLES.contains(&table) {
            let e = self.unknown_table(table);
            return Box::pin(futures::stream::once(async move { Err(e) }));
        }
        if table == activities::ACTIVITIES {
            return self.read_activities(cursor.as_deref());
        }
        let state = ReadState {
            table,
            since: self.since(table, cursor.as_deref()),
            lister: None,
            max_seen: None,
            started: None,
            emitted: false,
            finished: false,
        };
        Box::pin(futures::stream::try_unfold(state, move |st| self.next_chunk(st)))
    }
}
