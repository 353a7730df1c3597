//! The `activities` stream: tasks (`/api/v4/tasks`) and call notes (`/api/v4/{leads,contacts,
//! companies}/notes` with `filter[note_type][]` call_in and call_out), four lists read one after
//! the other under one cursor (the warehouse keeps one cursor per table and source).
//!
//! Each list is read like the leads: `filter[updated_at][from]` = the cursor minus the
//! look-back, ordered by id, followed by `_links.next` until it is absent or the account answers
//! 204. The cursor is committed with the last chunk of the last list only: the earliest of the
//! newest `updated_at` seen in any list and the server's clock at the read's first answer. A list
//! read before another may have changed since, but only after the read began, so that cursor
//! reads the change next time; repeats are merged away by the warehouse's upsert (a task
//! completed after it was read as planned is replaced, by its id). A chunk holds records of one
//! list only, so quarantine entries name the list they came from.

use std::sync::Arc;

use dealhouse_warehouse::schema::QuarantineRecord;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;

use super::api::{Lister, path_with};
use super::records::{AmoCrmRecords, int};
use super::wire::{
    CALL_IN, CALL_OUT, COMPANY_NOTES, CONTACT_NOTES, ENTITY_COMPANIES, ENTITY_CONTACTS, ENTITY_LEADS, LEAD_NOTES,
    MAX_LIMIT, TASKS,
};
use super::{AmoCrmSource, resume_cursor};
use crate::Result;
use crate::source::Chunk;

/// The canonical table this stream fills.
pub(super) const ACTIVITIES: &str = "activities";

/// One upstream list feeding `activities`.
struct ActivityList {
    path: &'static str,
    /// `_embedded` key of the records.
    key: &'static str,
    /// For note lists, the entity type whose notes they are (notes do not name it themselves).
    notes_of: Option<&'static str>,
}

/// The lists, in read order.
const LISTS: [ActivityList; 4] = [
    ActivityList { path: TASKS, key: "tasks", notes_of: None },
    ActivityList { path: LEAD_NOTES, key: "notes", notes_of: Some(ENTITY_LEADS) },
    ActivityList { path: CONTACT_NOTES, key: "notes", notes_of: Some(ENTITY_CONTACTS) },
    ActivityList { path: COMPANY_NOTES, key: "notes", notes_of: Some(ENTITY_COMPANIES) },
];

/// The list a held activity was read from: its quarantine key is `<list path>:id=<id>`.
pub(super) fn list_path_of(key: &str) -> Option<&'static str> {
    LISTS.iter().map(|l| l.path).find(|path| key.strip_prefix(path).is_some_and(|rest| rest.starts_with(':')))
}

/// Progress of one read of the stream.
struct ActivityRead {
    since: Option<i64>,
    /// Index in [`LISTS`] of the list being read; past the end when the read is done.
    list: usize,
    lister: Option<Lister>,
    /// Newest `updated_at` read so far, over every list.
    max_seen: Option<i64>,
    /// The server's clock at the read's first answer (Unix seconds).
    started: Option<i64>,
    /// A chunk was handed out already.
    emitted: bool,
}

impl AmoCrmSource {
    /// Reads tasks and call notes changed since `cursor` (minus the look-back).
    pub(super) fn read_activities(&self, cursor: Option<&str>) -> BoxStream<'_, Result<Chunk>> {
        let state = ActivityRead {
            since: self.since(ACTIVITIES, cursor),
            list: 0,
            lister: None,
            max_seen: None,
            started: None,
            emitted: false,
        };
        Box::pin(futures::stream::try_unfold(state, move |st| self.next_activity_chunk(st)))
    }

    /// The first request of `list` from `since` (None = everything).
    fn first_activity_request(list: &ActivityList, since: Option<i64>) -> String {
        let mut params: Vec<(&str, String)> = vec![];
        if list.notes_of.is_some() {
            params.push(("filter[note_type][]", CALL_IN.into()));
            params.push(("filter[note_type][]", CALL_OUT.into()));
        }
        params.push(("limit", MAX_LIMIT.to_string()));
        params.push(("order[id]", "asc".into()));
        if let Some(since) = since {
            params.push(("filter[updated_at][from]", since.to_string()));
        }
        params.push(("page", "1".into()));
        path_with(list.path, &params)
    }

    async fn next_activity_chunk(&self, mut st: ActivityRead) -> Result<Option<(Chunk, ActivityRead)>> {
        let reference = self.reference().await?;
        let mapper = AmoCrmRecords { source: self.source(), config: &self.config, reference: &reference };
        loop {
            let Some(list) = LISTS.get(st.list) else { return Ok(None) };
            let mut lister = match st.lister.take() {
                Some(l) => l,
                None => Lister::new(list.key, Self::first_activity_request(list, st.since)),
            };
            let mut records: Vec<(Value, Arc<str>)> = vec![];
            let mut end = false;
            while records.len() < self.config.chunk_rows.max(1) {
                let page = lister.next(&self.api).await?;
                if st.started.is_none() {
                    st.started = Some(lister.first_date().unwrap_or_else(chrono::Utc::now).timestamp());
                }
                let Some(page) = page else {
                    end = true;
                    break;
                };
                for r in page.records {
                    if let Some(t) = int(&r, "updated_at") {
                        st.max_seen = Some(st.max_seen.map_or(t, |m| m.max(t)));
                    }
                    records.push((r, page.location.clone()));
                }
            }
            let last = st.list + 1 == LISTS.len();
            if end {
                st.list += 1;
            } else {
                st.lister = Some(lister);
            }
            let cursor = if end && last { resume_cursor(st.max_seen, st.started) } else { None };
            if records.is_empty() {
                if !last {
                    continue;
                }
                // Nothing at all was read: the stored cursor stays as it is.
                if cursor.is_none() || !st.emitted {
                    return Ok(None);
                }
            }
            st.emitted = true;
            let chunk = self.activity_chunk(list, &records, cursor, &mapper)?;
            return Ok(Some((chunk, st)));
        }
    }

    /// Records of `list` as a chunk of `activities` (bad ones quarantined under the list's path).
    fn activity_chunk(
        &self,
        list: &ActivityList,
        records: &[(Value, Arc<str>)],
        cursor: Option<String>,
        mapper: &AmoCrmRecords<'_>,
    ) -> Result<Chunk> {
        let upstream = self.upstream();
        Ok(match list.notes_of {
            None => upstream.chunk(ACTIVITIES, list.path, records, cursor, |r| mapper.task(r))?,
            Some(entity_type) => {
                upstream.chunk(ACTIVITIES, list.path, records, cursor, |r| mapper.call_note(r, entity_type))?
            }
        })
    }

    /// Held activities read again by id from the list each came from (tasks and notes take
    /// `filter[id][]` like the leads), a page of ids a request. A held row whose key names no
    /// list is not asked for and stays.
    pub(super) fn replay_activities(&self, held: Vec<(String, QuarantineRecord)>) -> BoxStream<'_, Result<Chunk>> {
        let mut groups: Vec<(usize, Vec<(String, QuarantineRecord)>)> = vec![];
        for (index, list) in LISTS.iter().enumerate() {
            let of_list: Vec<(String, QuarantineRecord)> =
                held.iter().filter(|(_, q)| list_path_of(&q.source_id) == Some(list.path)).cloned().collect();
            groups.extend(of_list.chunks(MAX_LIMIT).map(|page| (index, page.to_vec())));
        }
        Box::pin(futures::stream::iter(groups).then(move |(list, group)| self.replay_activity_group(list, group)))
    }

    async fn replay_activity_group(&self, list: usize, group: Vec<(String, QuarantineRecord)>) -> Result<Chunk> {
        let list = &LISTS[list];
        let reference = self.reference().await?;
        let mapper = AmoCrmRecords { source: self.source(), config: &self.config, reference: &reference };
        let mut params: Vec<(&str, String)> = vec![("limit", MAX_LIMIT.to_string())];
        params.extend(group.iter().map(|(id, _)| ("filter[id][]", id.clone())));
        params.push(("page", "1".into()));
        let mut lister = Lister::new(list.key, path_with(list.path, &params));
        let mut records: Vec<(Value, Arc<str>)> = vec![];
        while let Some(page) = lister.next(&self.api).await? {
            records.extend(page.records.into_iter().map(|r| (r, page.location.clone())));
        }
        let mut chunk = self.activity_chunk(list, &records, None, &mapper)?;
        // A record asked for and not listed is no longer in the account: its row gives way too.
        chunk.settled.extend(group.into_iter().map(|(_, q)| q.source_id));
        Ok(chunk)
    }
}
