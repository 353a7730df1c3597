//! The legacy request-intake system: marketing and content-centre requests of the branches that
//! have not switched to the CRM yet. Those that became deals are linked to them; others were
//! rejected, done but never carried over, or are still hanging.

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::company::{Company, IntakeRequest};
use super::names;

impl Company {
    /// Fills `intake` from the deals that started as requests before their branch switched.
    pub(super) fn legacy_intake(&mut self, rng: &mut ChaCha8Rng) {
        let cutoff = self.period.cutoff;
        let mut requests = Vec::new();
        for (d, deal) in self.deals.iter().enumerate() {
            let Some(department) = deal.intake else { continue };
            let b = deal.branch;
            let switch = self.branches[b].crm_switch_date;
            let still_legacy = |t: DateTime<Utc>| switch.is_none_or(|s| self.calendar.local_date(b, t) < s);
            if !still_legacy(deal.created) {
                continue;
            }
            let client = &self.clients[deal.client];
            let subjects =
                if department == "marketing" { &names::MARKETING_SUBJECTS } else { &names::CONTENT_SUBJECTS };
            let request = |rng: &mut ChaCha8Rng, created: DateTime<Utc>| IntakeRequest {
                id: 0,
                department,
                branch: b,
                client_name: if rng.random_bool(0.35) { client.name.short.clone() } else { client.name.title.clone() },
                client_inn: client.inn.clone().filter(|_| rng.random_bool(0.85)),
                subject: subjects.choose(rng).copied().unwrap_or("Продвижение мероприятия"),
                created,
                status: "done",
                resolved: None,
                updated: created,
                deal: None,
                amount: None,
                legacy_ref: None,
            };
            let created = self.calendar.before(rng, b, deal.created, 2);
            let mut linked = request(rng, created);
            linked.resolved = Some(deal.created);
            linked.updated = deal.created;
            linked.deal = Some(d);
            requests.push(linked);
            let r: f64 = rng.random();
            if r >= 0.30 {
                continue;
            }
            let created = self.calendar.after(rng, b, created, 0, 5);
            if created >= cutoff || !still_legacy(created) {
                continue;
            }
            let mut extra = request(rng, created);
            let (status, resolved) = match r {
                r if r < 0.14 => ("rejected", Some(self.calendar.after(rng, b, created, 0, 3))),
                r if r < 0.26 => ("done", Some(self.calendar.after(rng, b, created, 1, 5))),
                _ => ("in_progress", None),
            };
            extra.status = status;
            extra.resolved = resolved.filter(|t| *t < cutoff);
            if resolved.is_some() && extra.resolved.is_none() {
                extra.status = "in_progress";
            }
            extra.updated = match extra.resolved {
                Some(t) => t,
                None => {
                    let touched = self.calendar.after(rng, b, created, 0, 5);
                    if touched < cutoff { touched } else { created }
                }
            };
            // Nobody ever picked some of them up; recent ones are simply not picked up yet.
            let recent = created >= cutoff - TimeDelta::days(10);
            if extra.resolved.is_none() && rng.random_bool(if recent { 0.7 } else { 0.3 }) {
                extra.status = "new";
                extra.updated = created;
            }
            requests.push(extra);
        }
        requests.sort_by_key(|r| r.created);
        for (i, r) in requests.iter_mut().enumerate() {
            r.id = i as u32 + 1;
        }
        self.intake = requests;
    }
}
