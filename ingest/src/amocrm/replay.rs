//! Replaying quarantined amoCRM records: each is read again by its id (`filter[id][]`, as the
//! v4 lists of leads, companies, events, tasks and notes take it; activities from the list
//! their quarantine key names, see `activities.rs`), a page's worth of ids a request, never by
//! listing from the start. Users are read whole every sync, so the reference holds them as
//! they are now.

use std::collections::BTreeSet;
use std::sync::Arc;

use dealhouse_warehouse::schema::QuarantineRecord;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use super::activities::ACTIVITIES;
use super::api::{Lister, path_with};
use super::records::{AmoCrmRecords, id_text};
use super::wire::{MAX_EVENTS_LIMIT, MAX_LIMIT, USERS};
use super::{AmoCrmSource, spec};
use crate::Result;
use crate::quarantine::record_id;
use crate::source::Chunk;

impl AmoCrmSource {
    /// What decides how this account's records map: the stage map, the commission rate, the INN
    /// field, the task types, and the user groups the branches claim (see the quarantine's
    /// fingerprint).
    pub(super) fn fingerprint(&self) -> String {
        let c = &self.config;
        let mapping =
            format!("{:?}|{:?}|{:?}|{:?}|{:?}", c.stages, c.commission_rate, c.inn_field_id, c.task_types, c.currency);
        crate::quarantine::fingerprint(&self.ctx.project.config, self.source(), &mapping)
    }

    /// The held records of `table` read again, a page of ids at a time.
    pub(super) fn replay_stream(
        &self,
        table: &'static str,
        held: Vec<QuarantineRecord>,
    ) -> BoxStream<'_, Result<Chunk>> {
        let per_request = if table == "deal_stage_changes" { MAX_EVENTS_LIMIT } else { MAX_LIMIT };
        // Ids go into the query string; anything but a plain id is not asked for (and stays).
        let held: Vec<(String, QuarantineRecord)> = held
            .into_iter()
            .filter_map(|q| Some((record_id(&q).filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric()))?, q)))
            .collect();
        if table == ACTIVITIES {
            return self.replay_activities(held);
        }
        let groups: Vec<Vec<(String, QuarantineRecord)>> = held.chunks(per_request).map(<[_]>::to_vec).collect();
        Box::pin(futures::stream::iter(groups).then(move |group| self.replay_group(table, group)))
    }

    async fn replay_group(&self, table: &'static str, group: Vec<(String, QuarantineRecord)>) -> Result<Chunk> {
        let reference = self.reference().await?;
        let mapper = AmoCrmRecords { source: self.source(), config: &self.config, reference: &reference };
        let ids: BTreeSet<&str> = group.iter().map(|(id, _)| id.as_str()).collect();
        let mut chunk = if table == "managers" {
            let location: Arc<str> = USERS.into();
            let records: Vec<(Value, Arc<str>)> = reference
                .users
                .iter()
                .filter(|u| id_text(u).is_some_and(|id| ids.contains(id.as_str())))
                .map(|u| (u.clone(), location.clone()))
                .collect();
            self.upstream().chunk(table, USERS, &records, None, |r| mapper.manager(r))?
        } else {
            let spec = spec(table).ok_or_else(|| self.unknown_table(table))?;
            let mut params: Vec<(&str, String)> = match spec.key {
                "leads" => vec![("with", "contacts".into()), ("limit", MAX_LIMIT.to_string())],
                "events" => vec![("limit", MAX_EVENTS_LIMIT.to_string())],
                _ => vec![("limit", MAX_LIMIT.to_string())],
            };
            params.extend(ids.iter().map(|id| ("filter[id][]", id.to_string())));
            params.push(("page", "1".into()));
            let mut lister = Lister::new(spec.key, path_with(spec.path, &params));
            let mut records: Vec<(Value, Arc<str>)> = vec![];
            while let Some(page) = lister.next(&self.api).await? {
                records.extend(page.records.into_iter().map(|r| (r, page.location.clone())));
            }
            let upstream = self.upstream();
            match table {
                "clients" => upstream.chunk(table, spec.path, &records, None, |r| mapper.client(r))?,
                "deals" => upstream.chunk(table, spec.path, &records, None, |r| mapper.deal(r))?,
                _ => upstream.chunk(table, spec.path, &records, None, |r| mapper.stage_change(r))?,
            }
        };
        // A record asked for and not listed is no longer in the account: its row gives way too.
        chunk.settled.extend(group.into_iter().map(|(_, q)| q.source_id));
        Ok(chunk)
    }
}
