//! The move of intake into the CRM: at each branch's switch the legacy requests are copied to
//! the CRM intake desk (most keeping their legacy id, some only recognisable by client, date and
//! subject), and from then on the desk receives the branch's requests itself.
//!
//! The migration goes wrong on purpose, in ways an audit must find; each is recorded as a
//! [`Planted`] finding for `sources/audit-manifest.json`: requests never migrated, migrated
//! twice, migrated with a changed client, amount, date or status, legacy requests received
//! after the switch, a request entered twice in the legacy system, a desk request naming a
//! legacy id that does not exist, two look-alike requests migrated without their ids
//! (ambiguous), and a branch whose requests mostly stop arriving after the switch.
//!
//! Everything else is kept unambiguous, so the manifest is the complete list: requests copied
//! without their id are ones no other request of the same client and department comes near
//! (in time) and no two requests without an id share client, department, subject and day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::company::{Company, IntakeRequest};
use super::names;

/// The legacy system's source name in the demo project.
pub(crate) const LEGACY: &str = "intake";
/// The CRM intake desk's source name.
pub(crate) const DESK: &str = "desk";

/// Requests of the same client and department closer than this are not copied without an id
/// (the audit's default window is 14 days; twice that leaves no doubt).
const ISOLATION_DAYS: i64 = 30;
/// Weeks the volume comparison covers (the audit's default).
const VOLUME_WEEKS: i64 = 8;
/// The demo project's `[audit] volume_min_requests`: fewer requests before the switch are not
/// judged, so chance dips of small branches are never findings.
pub(crate) const VOLUME_MIN_REQUESTS: usize = 20;
/// The demo project's `[audit] volume_drop_ratio`.
pub(crate) const VOLUME_DROP_RATIO: f64 = 0.25;
/// The share of its requests the branch with the planted drop still receives.
const DROPPED_KEEPS: f64 = 0.05;

/// One problem planted in the migration: what the audit must report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Planted {
    /// The audit's finding kind.
    pub kind: &'static str,
    /// The branch (its id in the config).
    pub branch: &'static str,
    /// The system holding the record the finding is about (None: a branch-level finding).
    pub system: Option<&'static str>,
    /// The record's id there.
    pub id: Option<u32>,
}

/// How a legacy request is carried over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carry {
    WithRef,
    WithoutRef,
    Never,
    Twice,
    ChangedClient,
    ChangedAmount,
    ChangedDate,
    ChangedStatus,
}

impl Company {
    /// Fills `desk` and `planted`, and adds the planted legacy requests to `intake`.
    pub(super) fn migrate_intake(&mut self, rng: &mut ChaCha8Rng) {
        for r in &mut self.intake {
            r.amount = Some(match r.deal.and_then(|d| self.deals.get(d)) {
                Some(deal) => deal.amount,
                None => Decimal::from(rng.random_range(20..500) * 1000),
            });
        }
        let mut legacy = std::mem::take(&mut self.intake);
        self.distinct_subjects(&mut legacy);
        let mut planted = Vec::new();
        let mut next_id = legacy.iter().map(|r| r.id).max().unwrap_or(0) + 1;
        // Legacy requests of switched branches, before the switch: what the migration copies.
        let migrated: Vec<usize> = (0..legacy.len()).filter(|&i| self.switched_before(&legacy[i])).collect();
        let mut plan: BTreeMap<usize, Carry> = migrated.iter().map(|&i| (i, Carry::WithRef)).collect();
        let problems = [
            (Carry::Never, 3),
            (Carry::Twice, 2),
            (Carry::ChangedClient, 2),
            (Carry::ChangedAmount, 2),
            (Carry::ChangedDate, 2),
            (Carry::ChangedStatus, 2),
        ];
        for (how, n) in problems {
            for _ in 0..n {
                let free: Vec<usize> = migrated.iter().copied().filter(|i| plan[i] == Carry::WithRef).collect();
                if let Some(&i) = free.choose(rng) {
                    plan.insert(i, how);
                }
            }
        }
        // Entered twice in the legacy system (the copy left alone): two isolated requests.
        let mut doubled = Vec::new();
        for _ in 0..2 {
            let free: Vec<usize> = migrated
                .iter()
                .copied()
                .filter(|&i| plan[&i] == Carry::WithRef && self.isolated(&legacy, &legacy[i], Some(i)))
                .collect();
            if let Some(&i) = free.choose(rng) {
                let mut twin = legacy[i].clone();
                twin.created += TimeDelta::minutes(7);
                if self.calendar.local_date(twin.branch, twin.created)
                    != self.calendar.local_date(twin.branch, legacy[i].created)
                {
                    continue;
                }
                twin.id = next_id;
                twin.deal = None;
                next_id += 1;
                plan.insert(i, Carry::WithRef);
                doubled.push(i);
                planted.push(self.planted("duplicate_in_system", twin.branch, LEGACY, twin.id));
                legacy.push(twin);
            }
        }
        let ambiguous = self.plant_look_alikes(rng, &mut legacy, &mut next_id);
        for &i in &ambiguous {
            plan.insert(i, Carry::WithoutRef);
            planted.push(self.planted("ambiguous", legacy[i].branch, LEGACY, legacy[i].id));
        }
        let late = self.plant_late_requests(rng, &mut legacy, &mut next_id);
        for &i in &late {
            planted.push(self.planted("legacy_after_switch", legacy[i].branch, LEGACY, legacy[i].id));
            planted.push(self.planted("unmatched_legacy", legacy[i].branch, LEGACY, legacy[i].id));
        }
        // Some copies lost their id: only requests nothing else could be mistaken for.
        for &i in &migrated {
            if plan[&i] == Carry::WithRef
                && !doubled.contains(&i)
                && self.isolated(&legacy, &legacy[i], Some(i))
                && rng.random_bool(0.15)
            {
                plan.insert(i, Carry::WithoutRef);
            }
        }

        let mut desk: Vec<(IntakeRequest, Option<&'static str>)> = Vec::new();
        for (&i, &how) in &plan {
            let r = &legacy[i];
            let mut copy = r.clone();
            copy.legacy_ref = Some(r.id.to_string());
            let kind = match how {
                Carry::WithRef => None,
                Carry::WithoutRef => {
                    copy.legacy_ref = None;
                    None
                }
                Carry::Never => Some("unmatched_legacy"),
                Carry::Twice => {
                    desk.push((copy.clone(), None));
                    Some("migrated_twice")
                }
                Carry::ChangedClient => {
                    copy.client_inn = Some(other_inn(r.client_inn.as_deref()));
                    Some("mismatch_client")
                }
                Carry::ChangedAmount => {
                    copy.amount = Some(r.amount.unwrap_or_default() + Decimal::from(1000));
                    Some("mismatch_amount")
                }
                Carry::ChangedDate => {
                    copy.created -= TimeDelta::days(2);
                    Some("mismatch_created")
                }
                Carry::ChangedStatus => {
                    copy.status = if r.status == "done" { "in_progress" } else { "done" };
                    Some("mismatch_status")
                }
            };
            if let Some(kind) = kind {
                planted.push(self.planted(kind, r.branch, LEGACY, r.id));
            }
            if how != Carry::Never {
                desk.push((copy, None));
            }
        }
        // A desk request naming a legacy id that never existed.
        if let Some(&i) = migrated.choose(rng) {
            let mut stray = legacy[i].clone();
            stray.legacy_ref = Some((next_id + 900_000).to_string());
            stray.created -= TimeDelta::days(1);
            desk.push((stray, Some("unmatched_crm")));
        }
        let dropped = self.volume_drop_branch(&legacy);
        if let Some(b) = dropped {
            planted.push(Planted { kind: "volume_drop", branch: self.branches[b].city.slug, system: None, id: None });
        }
        let mut received = self.desk_requests(rng, dropped);
        self.distinct_subjects(&mut received);
        desk.extend(received.into_iter().map(|r| (r, None)));

        desk.sort_by_key(|(r, _)| (r.created, r.legacy_ref.clone(), r.branch));
        for (n, (r, kind)) in desk.iter_mut().enumerate() {
            r.id = n as u32 + 1;
            if let Some(kind) = kind {
                planted.push(self.planted(kind, r.branch, DESK, r.id));
            }
        }
        planted.sort();
        planted.dedup();
        self.intake = legacy;
        self.desk = desk.into_iter().map(|(r, _)| r).collect();
        self.planted = planted;
    }

    fn planted(&self, kind: &'static str, branch: usize, system: &'static str, id: u32) -> Planted {
        Planted { kind, branch: self.branches[branch].city.slug, system: Some(system), id: Some(id) }
    }

    /// Received by a branch that has switched, before its switch day.
    fn switched_before(&self, r: &IntakeRequest) -> bool {
        self.branches[r.branch].crm_switch_date.is_some_and(|s| self.calendar.local_date(r.branch, r.created) < s)
    }

    /// No other legacy request of the same client INN and department within ISOLATION_DAYS.
    fn isolated(&self, legacy: &[IntakeRequest], r: &IntakeRequest, skip: Option<usize>) -> bool {
        let Some(inn) = &r.client_inn else { return false };
        !legacy.iter().enumerate().any(|(j, o)| {
            Some(j) != skip
                && o.department == r.department
                && o.client_inn.as_ref() == Some(inn)
                && (o.created - r.created).num_days().abs() <= ISOLATION_DAYS
        })
    }

    /// Two requests of one client, three days apart with near-identical subjects, both copied
    /// without their ids: each matches both copies. Returns their indices in `legacy`.
    fn plant_look_alikes(
        &self,
        rng: &mut ChaCha8Rng,
        legacy: &mut Vec<IntakeRequest>,
        next_id: &mut u32,
    ) -> Vec<usize> {
        for _ in 0..50 {
            let Some(r) = legacy.choose(rng).filter(|r| self.switched_before(r) && r.client_inn.is_some()) else {
                continue;
            };
            let mut a = r.clone();
            a.created -= TimeDelta::days(60);
            a.deal = None;
            a.subject = "Продвижение мероприятия";
            let mut b = a.clone();
            b.created += TimeDelta::days(3);
            b.subject = "Продвижение мероприятий";
            if a.created < self.calendar_start() || !self.isolated(legacy, &a, None) || !self.isolated(legacy, &b, None)
            {
                continue;
            }
            let mut out = vec![];
            for mut x in [a, b] {
                x.id = *next_id;
                *next_id += 1;
                out.push(legacy.len());
                legacy.push(x);
            }
            return out;
        }
        vec![]
    }

    /// Three legacy requests received in the two weeks after their branch's switch.
    fn plant_late_requests(
        &self,
        rng: &mut ChaCha8Rng,
        legacy: &mut Vec<IntakeRequest>,
        next_id: &mut u32,
    ) -> Vec<usize> {
        let mut out = vec![];
        for _ in 0..500 {
            if out.len() == 3 {
                break;
            }
            let Some(r) = legacy.choose(rng).filter(|r| self.switched_before(r) && r.client_inn.is_some()) else {
                continue;
            };
            let Some(switch) = self.branches[r.branch].crm_switch_date else { continue };
            let day = switch + TimeDelta::days(rng.random_range(0..14));
            let mut late = r.clone();
            late.created = self.calendar.random_on(rng, r.branch, day);
            late.deal = None;
            late.status = "new";
            late.resolved = None;
            late.updated = late.created;
            if late.created >= self.period.cutoff
                || self.calendar.local_date(r.branch, late.created) < switch
                || !self.isolated(legacy, &late, None)
            {
                continue;
            }
            late.id = *next_id;
            *next_id += 1;
            out.push(legacy.len());
            legacy.push(late);
        }
        out
    }

    fn calendar_start(&self) -> DateTime<Utc> {
        self.calendar.open(0, self.period.first_day)
    }

    /// The switched branch, with a full comparison window after its switch, that had the most
    /// legacy requests in the weeks before it (if enough to be judged): its requests mostly stop
    /// arriving afterwards.
    fn volume_drop_branch(&self, legacy: &[IntakeRequest]) -> Option<usize> {
        let last = self.period.last_day;
        let mut best: Option<(usize, usize)> = None;
        for (b, branch) in self.branches.iter().enumerate() {
            let Some(switch) = branch.crm_switch_date else { continue };
            if switch + TimeDelta::days(7 * VOLUME_WEEKS + 7) > last {
                continue;
            }
            let from = switch - TimeDelta::days(7 * VOLUME_WEEKS);
            let n = legacy
                .iter()
                .filter(|r| r.branch == b && (from..switch).contains(&self.calendar.local_date(b, r.created)))
                .count();
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((b, n));
            }
        }
        best.filter(|(_, n)| *n >= VOLUME_MIN_REQUESTS).map(|(b, _)| b)
    }

    /// The requests the desk received itself: switched branches' deals that started as a
    /// request after the switch (answered faster than the legacy system did), and the requests
    /// that never became deals, at the legacy system's rates. The `dropped` branch keeps one
    /// request in twenty.
    fn desk_requests(&self, rng: &mut ChaCha8Rng, dropped: Option<usize>) -> Vec<IntakeRequest> {
        let cutoff = self.period.cutoff;
        let mut out = Vec::new();
        for (d, deal) in self.deals.iter().enumerate() {
            let Some(department) = deal.intake else { continue };
            let b = deal.branch;
            let Some(switch) = self.branches[b].crm_switch_date else { continue };
            if self.calendar.local_date(b, deal.created) < switch {
                continue;
            }
            let keep = rng.random_bool(if Some(b) == dropped { DROPPED_KEEPS } else { 1.0 });
            let client = &self.clients[deal.client];
            let subjects =
                if department == "marketing" { &names::MARKETING_SUBJECTS } else { &names::CONTENT_SUBJECTS };
            let mut created = self.calendar.before(rng, b, deal.created, 1);
            if self.calendar.local_date(b, created) < switch {
                created = deal.created - TimeDelta::seconds(1);
            }
            let request = IntakeRequest {
                id: 0,
                department,
                branch: b,
                client_name: client.name.title.clone(),
                client_inn: client.inn.clone().filter(|_| rng.random_bool(0.85)),
                subject: subjects.choose(rng).copied().unwrap_or("Продвижение мероприятия"),
                created,
                status: "done",
                resolved: Some(deal.created),
                updated: deal.created,
                deal: Some(d),
                amount: Some(deal.amount),
                legacy_ref: None,
            };
            let r: f64 = rng.random();
            if keep {
                out.push(request.clone());
            }
            if r >= 0.30 || !keep {
                continue;
            }
            let created = self.calendar.after(rng, b, created, 0, 5);
            if created >= cutoff {
                continue;
            }
            let (status, resolved) = match r {
                r if r < 0.14 => ("rejected", Some(self.calendar.after(rng, b, created, 0, 2))),
                r if r < 0.26 => ("done", Some(self.calendar.after(rng, b, created, 0, 3))),
                _ => ("in_progress", None),
            };
            let resolved = resolved.filter(|t| *t < cutoff);
            out.push(IntakeRequest {
                created,
                status: if resolved.is_none() && status != "in_progress" { "in_progress" } else { status },
                resolved,
                updated: resolved.unwrap_or(created),
                deal: None,
                amount: Some(Decimal::from(rng.random_range(20..500) * 1000)),
                subject: subjects.choose(rng).copied().unwrap_or("Продвижение мероприятия"),
                ..request
            });
        }
        out.sort_by_key(|r| r.created);
        out
    }

    /// No two requests of one branch, department and client INN share a subject on one local
    /// day (the audit would rightly call the later a duplicate): the later gets another subject.
    fn distinct_subjects(&self, requests: &mut [IntakeRequest]) {
        let mut seen = BTreeSet::new();
        for r in requests.iter_mut() {
            let Some(inn) = r.client_inn.clone() else { continue };
            let (branch, department) = (r.branch, r.department);
            let day = self.calendar.local_date(branch, r.created);
            let subjects: &[&'static str] =
                if department == "marketing" { &names::MARKETING_SUBJECTS } else { &names::CONTENT_SUBJECTS };
            let key = |s: &str| (branch, department, inn.clone(), s.to_lowercase(), day);
            if seen.contains(&key(r.subject))
                && let Some(s) = subjects.iter().find(|s| !seen.contains(&key(s)))
            {
                r.subject = s;
            }
            seen.insert(key(r.subject));
        }
    }
}

/// Another valid-looking INN: the same digits with the last one changed.
fn other_inn(inn: Option<&str>) -> String {
    match inn {
        Some(s) if !s.is_empty() => {
            let (head, last) = s.split_at(s.len() - 1);
            let d = last.parse::<u8>().map_or(0, |d| (d + 1) % 10);
            format!("{head}{d}")
        }
        _ => "7700000000".into(),
    }
}
