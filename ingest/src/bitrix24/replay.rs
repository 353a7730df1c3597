//! Replaying quarantined Bitrix24 records: each is read again by its ID (`filter[@ID][]`, at
//! most a page of IDs a request), never by re-reading the list from the start.
//!
//! Stage-history records are read with the whole history of their deals
//! (`filter[@OWNER_ID][]`): a record's `from_stage` is the stage of the record before it, and
//! the record after a quarantined one was loaded without one, so the deal's chain is mapped
//! again in order and its rows are upserted (unchanged ones write nothing).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use dealhouse_warehouse::schema::QuarantineRecord;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use super::api::{ListSpec, Pager};
use super::records::text;
use super::wire::{ACTIVITY_LIST, COMPANY_LIST, DEAL_LIST, PAGE_SIZE, STAGE_HISTORY_LIST, USER_GET};
use super::{Bitrix24Source, ReadState, method_of, spec};
use crate::Result;
use crate::quarantine::record_id;
use crate::source::Chunk;

impl Bitrix24Source {
    /// What decides how this portal's records map: the stage map, the commission rate, the
    /// currency, and the departments the branches claim (in the organisation, see the
    /// quarantine's fingerprint). (Deals in another currency than RUB were quarantined before
    /// currencies were kept: the currency in the fingerprint reads them again once.)
    pub(super) fn fingerprint(&self) -> String {
        let mapping =
            format!("{:?}|{:?}|currency {:?}", self.config.stages, self.config.commission_rate, self.config.currency);
        crate::quarantine::fingerprint(&self.ctx.project.config, self.source(), &mapping)
    }

    /// The held records of `table` read again, a page of IDs (or of deals) at a time.
    pub(super) fn replay_stream(
        &self,
        table: &'static str,
        held: Vec<QuarantineRecord>,
    ) -> BoxStream<'_, Result<Chunk>> {
        // Only records with an ID can be asked for; the others stay as they are.
        let by_id: Vec<(i64, QuarantineRecord)> = held
            .into_iter()
            .filter_map(|q| {
                let id = if table == "deal_stage_changes" { owner_of(&q) } else { record_id(&q) };
                Some((id?.trim().parse::<i64>().ok()?, q))
            })
            .collect();
        let groups: Vec<Vec<(i64, QuarantineRecord)>> = by_id.chunks(PAGE_SIZE).map(<[_]>::to_vec).collect();
        Box::pin(futures::stream::iter(groups).then(move |group| self.replay_group(table, group)))
    }

    async fn replay_group(&self, table: &'static str, group: Vec<(i64, QuarantineRecord)>) -> Result<Chunk> {
        let reference = self.reference().await?;
        let mapper = self.records(&reference);
        let ids: BTreeSet<i64> = group.iter().map(|(id, _)| *id).collect();
        let mut chunk = match table {
            // Users are read whole every sync; the reference holds them as read now.
            "managers" => {
                let location: Arc<str> = USER_GET.into();
                let records: Vec<(Value, Arc<str>)> = reference
                    .users
                    .iter()
                    .filter(|u| text(u, "ID").and_then(|id| id.parse().ok()).is_some_and(|id| ids.contains(&id)))
                    .map(|u| (u.clone(), location.clone()))
                    .collect();
                self.upstream().chunk(table, USER_GET, &records, None, |r| mapper.manager(r))?
            }
            "deal_stage_changes" => {
                let records = self.read_by(STAGE_HISTORY_LIST, "@OWNER_ID", &ids).await?;
                let mut st = ReadState { table, cursor: None, pager: None, previous: HashMap::new(), finished: true };
                self.stage_chunk(&mapper, &mut st, records).await?
            }
            _ => {
                let method = method_of(table).ok_or_else(|| self.unknown_table(table))?;
                let records = self.read_by(method, "@ID", &ids).await?;
                match method {
                    COMPANY_LIST => self.upstream().chunk(table, method, &records, None, |r| mapper.client(r))?,
                    DEAL_LIST => self.upstream().chunk(table, method, &records, None, |r| mapper.deal(r))?,
                    ACTIVITY_LIST => self.upstream().chunk(table, method, &records, None, |r| mapper.activity(r))?,
                    _ => return Err(self.unknown_table(table)),
                }
            }
        };
        // A record asked for and not read is no longer in the portal: its row gives way too.
        chunk.settled.extend(group.into_iter().map(|(_, q)| q.source_id));
        Ok(chunk)
    }

    /// The records of `method` whose `field` (`@ID`, `@OWNER_ID`) is one of `ids`, in ID order.
    async fn read_by(&self, method: &'static str, field: &str, ids: &BTreeSet<i64>) -> Result<Vec<(Value, Arc<str>)>> {
        let base = spec(method);
        let mut params = base.params.clone();
        params.extend(ids.iter().map(|id| (format!("filter[{field}][]"), id.to_string())));
        let spec = ListSpec { method, params, cursor_field: None, ..base };
        let mut pager = Pager::by_id(spec, 0);
        let mut records = vec![];
        while let Some(page) = pager.next(&self.api).await? {
            records.extend(page.records.into_iter().map(|r| (r, page.location.clone())));
        }
        Ok(records)
    }
}

/// The deal of a quarantined stage-history record, from the record as it was read.
fn owner_of(q: &QuarantineRecord) -> Option<String> {
    let raw: Value = serde_json::from_str(&q.raw).ok()?;
    text(&raw, "OWNER_ID")
}
