//! The simulated business: the org chart with its staff turnover, the clients that come and go,
//! and every deal with its life story, the legacy intake requests and the monthly plans.
//!
//! [`Company::build`] runs the whole simulation in memory; the writers only render it. Each
//! concern draws from its own random stream (and each deal from its own), so changing how one
//! part is simulated leaves the others as they were.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;

use super::calendar::{Calendar, Period, is_working_day, moscow_date};
use super::cities::{CITIES, City};
use super::names::{self, ClientName, PersonName};
use super::story::{self, Setting, Stage, StoryActivity};

/// New deals a week on average over the period.
const DEALS_PER_WEEK: f64 = 550.0;
/// Clients on the books per sales seat when the period starts.
const CLIENTS_PER_SEAT: usize = 7;
/// Share of deals that are a client's first (a new client appears with it).
const NEW_CLIENT_SHARE: f64 = 0.07;
/// Share of deals that start as a marketing or content-centre request.
const INTAKE_SHARE: f64 = 0.18;

/// A city branch with its sales seats.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub city: City,
    pub department_id: u32,
    /// When the branch moved its intake into the CRM (`None`: not within the period).
    pub crm_switch_date: Option<NaiveDate>,
    /// Each seat's succession of managers, earliest first.
    pub seats: Vec<Vec<Tenure>>,
}

/// A manager holding a seat from `from` on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tenure {
    pub manager: usize,
    pub from: DateTime<Utc>,
}

impl Branch {
    /// The manager holding `seat` at `t`.
    pub fn occupant(&self, seat: usize, t: DateTime<Utc>) -> Option<Tenure> {
        let tenures = self.seats.get(seat)?;
        tenures.iter().rev().find(|x| x.from <= t).or(tenures.first()).copied()
    }
}

/// A sales manager (a portal user).
#[derive(Debug, Clone)]
pub(crate) struct Manager {
    pub user_id: u32,
    pub branch: usize,
    pub name: PersonName,
    pub email: String,
    pub position: &'static str,
    pub hired: DateTime<Utc>,
    pub left: Option<DateTime<Utc>>,
}

/// A B2B client (a CRM company).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub id: u32,
    pub name: ClientName,
    pub kind: &'static str,
    pub inn: Option<String>,
    pub branch: usize,
    /// The seat that looks after the client.
    pub seat: usize,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    /// User id responsible at the cutoff.
    pub assigned: u32,
    /// Relative deal frequency.
    rate: f64,
    /// Gone for good from this day (churned).
    until: Option<NaiveDate>,
    deals_so_far: u32,
}

/// A deal in its state at the cutoff.
#[derive(Debug, Clone)]
pub(crate) struct Deal {
    pub id: u32,
    pub title: String,
    pub client: usize,
    pub branch: usize,
    pub seat: usize,
    pub source: &'static str,
    /// Expected ticket revenue.
    pub amount: Decimal,
    /// Expected agent commission.
    pub commission: Decimal,
    pub created: DateTime<Utc>,
    pub modified: DateTime<Utc>,
    pub stage: Stage,
    pub lost_reason: &'static str,
    pub close_date: NaiveDate,
    /// User id responsible at the last change (at the cutoff for open deals).
    pub assigned: u32,
    /// The department it came from when it started as an intake request.
    pub intake: Option<&'static str>,
    /// The client phoned the request in (otherwise it came in writing).
    by_phone: bool,
}

/// Bitrix24 stage history TYPE_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Created,
    Moved,
    MovedToFinal,
}

/// One stage entered by a deal.
#[derive(Debug, Clone)]
pub(crate) struct StageChange {
    pub id: u32,
    pub deal: usize,
    pub kind: ChangeKind,
    pub stage: Stage,
    pub at: DateTime<Utc>,
}

/// A CRM activity.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    pub id: u32,
    pub deal: usize,
    pub responsible: u32,
    pub story: StoryActivity,
}

/// A request in the legacy intake system.
#[derive(Debug, Clone)]
pub(crate) struct IntakeRequest {
    pub id: u32,
    /// `marketing` or `content`.
    pub department: &'static str,
    pub branch: usize,
    pub client_name: String,
    pub client_inn: Option<String>,
    pub subject: &'static str,
    pub created: DateTime<Utc>,
    /// new, in_progress, done or rejected.
    pub status: &'static str,
    pub resolved: Option<DateTime<Utc>>,
    pub updated: DateTime<Utc>,
    /// Index of the CRM deal it was carried over to.
    pub deal: Option<usize>,
    /// The amount it is for.
    pub amount: Option<Decimal>,
    /// CRM desk only: the legacy request id the migration kept.
    pub legacy_ref: Option<String>,
}

/// A planned metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    WonAmount,
    DealsWon,
    Calls,
    Meetings,
}

impl Metric {
    pub const ALL: [Metric; 4] = [Metric::WonAmount, Metric::DealsWon, Metric::Calls, Metric::Meetings];

    /// The label in the plans workbook.
    pub fn label(self) -> &'static str {
        match self {
            Metric::WonAmount => "Выручка",
            Metric::DealsWon => "Сделки",
            Metric::Calls => "Звонки",
            Metric::Meetings => "Встречи",
        }
    }

    /// The canonical metric.
    pub fn canonical(self) -> &'static str {
        match self {
            Metric::WonAmount => "won_amount",
            Metric::DealsWon => "deals_won",
            Metric::Calls => "calls",
            Metric::Meetings => "meetings",
        }
    }
}

/// One monthly target of one manager.
#[derive(Debug, Clone)]
pub(crate) struct PlanRow {
    pub month: NaiveDate,
    pub manager: usize,
    pub metric: Metric,
    pub target: Decimal,
}

/// The whole simulated company.
pub(crate) struct Company {
    pub period: Period,
    pub calendar: Calendar,
    pub branches: Vec<Branch>,
    pub managers: Vec<Manager>,
    /// In creation order (= id order).
    pub clients: Vec<Client>,
    /// In creation order (= id order).
    pub deals: Vec<Deal>,
    /// In id order (= time order).
    pub stage_changes: Vec<StageChange>,
    /// In id order (= creation order).
    pub activities: Vec<Activity>,
    /// In id order (= creation order, then the problems planted for the audit).
    pub intake: Vec<IntakeRequest>,
    /// The CRM intake desk: legacy requests migrated at each branch's switch, then the requests
    /// it received itself; in id order.
    pub desk: Vec<IntakeRequest>,
    /// What the migration got wrong on purpose, for `sources/audit-manifest.json`.
    pub planted: Vec<super::migration::Planted>,
    /// By month, department, user id and metric.
    pub plans: Vec<PlanRow>,
    /// Client names and INNs already given out.
    taken: BTreeSet<String>,
}

/// User id of the group's director (the portal's first user).
pub(crate) const DIRECTOR_USER_ID: u32 = 1;

/// Independent random stream `stream` (and item `item` within it) of a seed.
fn stream(seed: u64, stream: u64, item: u64) -> ChaCha8Rng {
    // splitmix64 finaliser: nearby (stream, item) pairs give unrelated seeds.
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ item.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

const STAFF: u64 = 1;
const CLIENTS: u64 = 2;
const DEALS: u64 = 3;
const STORIES: u64 = 4;
const INTAKE: u64 = 5;
const PLANS: u64 = 6;
const IDS: u64 = 7;
const MIGRATION: u64 = 8;

/// A standard normal deviate (Box-Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Relative deal volume in the week starting `monday`: concert seasons peak in autumn and
/// spring, dip in summer and over the New Year holidays.
pub(crate) fn seasonality(monday: NaiveDate) -> f64 {
    const MONTH: [f64; 12] = [0.8, 1.0, 1.15, 1.15, 0.95, 0.75, 0.65, 0.8, 1.15, 1.25, 1.2, 1.0];
    let thursday = monday + TimeDelta::days(3);
    let mut f = MONTH[thursday.month0() as usize];
    let days = (0..7).map(|i| monday + TimeDelta::days(i));
    if days.clone().any(|d| d.month() == 1 && d.day() <= 8) {
        f *= 0.45;
    } else if days.clone().any(|d| d.month() == 12 && d.day() >= 25) {
        f *= 0.85;
    }
    f
}

/// Clients of some kinds pause between seasons.
fn kind_season(kind: &str, month: u32) -> f64 {
    match (kind, month) {
        ("theatre", 7 | 8) => 0.1,
        ("sports_club", 6..=8) => 0.2,
        _ => 1.0,
    }
}

/// Picks a label by weight.
fn pick_weighted<T: Copy>(rng: &mut ChaCha8Rng, options: &[(T, f64)]) -> Option<T> {
    let total: f64 = options.iter().map(|o| o.1).sum();
    let mut r = rng.random::<f64>() * total;
    for (value, weight) in options {
        if r < *weight {
            return Some(*value);
        }
        r -= weight;
    }
    options.last().map(|o| o.0)
}

impl Company {
    /// Simulates the company for `weeks` weeks before `as_of`.
    pub fn build(seed: u64, weeks: u32, as_of: NaiveDate) -> Result<Company, String> {
        let period = Period::new(as_of, weeks)?;
        let zones = CITIES
            .iter()
            .map(|c| c.time_zone.parse::<Tz>().map_err(|e| format!("time zone of {}: {e}", c.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let calendar =
            Calendar::new(zones, period.first_day - TimeDelta::days(8 * 366), period.last_day + TimeDelta::days(366));
        let (branches, managers) = super::staff::staff(&mut stream(seed, STAFF, 0), &period, &calendar);
        let mut company = Company {
            period,
            calendar,
            branches,
            managers,
            clients: Vec::new(),
            deals: Vec::new(),
            stage_changes: Vec::new(),
            activities: Vec::new(),
            intake: Vec::new(),
            desk: Vec::new(),
            planted: Vec::new(),
            plans: Vec::new(),
            taken: BTreeSet::new(),
        };
        company.initial_clients(&mut stream(seed, CLIENTS, 0));
        company.new_deals(&mut stream(seed, DEALS, 0));
        company.number_records(&mut stream(seed, IDS, 0));
        company.live_deals(seed);
        company.assign_clients();
        company.legacy_intake(&mut stream(seed, INTAKE, 0));
        company.migrate_intake(&mut stream(seed, MIGRATION, 0));
        company.monthly_plans(&mut stream(seed, PLANS, 0));
        Ok(company)
    }

    /// The user id holding `seat` of `branch` at `t`, with the time they took it over.
    fn holder(&self, branch: usize, seat: usize, t: DateTime<Utc>) -> (u32, Option<DateTime<Utc>>) {
        match self.branches.get(branch).and_then(|b| b.occupant(seat, t)) {
            Some(tenure) => {
                let user = self.managers.get(tenure.manager).map(|m| m.user_id).unwrap_or(DIRECTOR_USER_ID);
                (user, Some(tenure.from))
            }
            None => (DIRECTOR_USER_ID, None),
        }
    }

    /// Registers a client of `branch` created at `created`; `years` is its expected life.
    fn add_client(&mut self, rng: &mut ChaCha8Rng, branch: usize, created: DateTime<Utc>, years: f64) -> usize {
        let kind = pick_weighted(rng, &names::CLIENT_KINDS).unwrap_or("promoter");
        let city = self.branches[branch].city;
        // Draw again before disambiguating: most real names are unique in the group; city-bound
        // clients (theatres, venues, clubs) share names across cities.
        let mut name = names::client_name(rng, kind);
        for attempt in 0..12 {
            if !self.taken.contains(&name.title) {
                break;
            }
            name = names::client_name(rng, kind);
            if attempt >= 6 || matches!(kind, "theatre" | "venue" | "sports_club") {
                name = ClientName {
                    title: format!("{} ({})", name.title, city.name),
                    short: format!("{} ({})", name.short, city.name),
                };
            }
        }
        let base = name.clone();
        let mut n = 2;
        while self.taken.contains(&name.title) {
            name = ClientName { title: format!("{} {n}", base.title), short: format!("{} {n}", base.short) };
            n += 1;
        }
        self.taken.insert(name.title.clone());
        let inn = rng.random_bool(0.88).then(|| {
            loop {
                let candidate = names::inn(rng, city.region);
                if self.taken.insert(candidate.clone()) {
                    break candidate;
                }
            }
        });
        // Heavy tail: a few promoters bring a deal every week, most a few a year.
        let rate = (0.9 * normal(rng)).exp();
        let life = -(1.0 - rng.random::<f64>()).ln() * years;
        let from = moscow_date(created).max(self.period.first_day);
        let until = from + TimeDelta::days((life * 365.0) as i64 + 30);
        let seats = self.branches[branch].seats.len().max(1);
        self.clients.push(Client {
            id: 0,
            name,
            kind,
            inn,
            branch,
            seat: rng.random_range(0..seats),
            created,
            modified: created,
            assigned: DIRECTOR_USER_ID,
            rate,
            until: (until <= self.period.last_day).then_some(until),
            deals_so_far: 0,
        });
        self.clients.len() - 1
    }

    /// The clients on the books when the period starts.
    fn initial_clients(&mut self, rng: &mut ChaCha8Rng) {
        for b in 0..self.branches.len() {
            for _ in 0..self.branches[b].seats.len() * CLIENTS_PER_SEAT {
                let mut day = self.period.first_day - TimeDelta::days(rng.random_range(14..4 * 365));
                while !is_working_day(day) {
                    day -= TimeDelta::days(1);
                }
                let created = self.calendar.random_on(rng, b, day);
                // Established clients stay about five years (~18% churn a year).
                self.add_client(rng, b, created, 5.0);
            }
        }
    }

    /// A client of branch `b` for a deal at `t`, weighted by how often each active client
    /// deals in this month; sometimes a brand-new client.
    fn pick_client(&mut self, rng: &mut ChaCha8Rng, by_branch: &mut [Vec<usize>], b: usize, t: DateTime<Utc>) -> usize {
        let day = moscow_date(t);
        let weight = |c: &Client| {
            if c.created < t && c.until.is_none_or(|u| day < u) {
                c.rate * kind_season(c.kind, day.month())
            } else {
                0.0
            }
        };
        let total: f64 = by_branch[b].iter().map(|&c| weight(&self.clients[c])).sum();
        if total > 0.0 && !rng.random_bool(NEW_CLIENT_SHARE) {
            let mut r = rng.random::<f64>() * total;
            for &c in &by_branch[b] {
                let w = weight(&self.clients[c]);
                if r < w {
                    return c;
                }
                r -= w;
            }
        }
        // The company card is created a few minutes before the deal.
        let open = self.calendar.open(b, self.calendar.local_date(b, t));
        let created = (t - TimeDelta::seconds(rng.random_range(60..1800))).max(open).min(t - TimeDelta::seconds(1));
        // Newcomers are often one-off: about two years on average.
        let c = self.add_client(rng, b, created, 2.0);
        by_branch[b].push(c);
        c
    }

    /// The new deals of every week, in the order they are drawn (numbered later).
    fn new_deals(&mut self, rng: &mut ChaCha8Rng) {
        let mut by_branch: Vec<Vec<usize>> = vec![Vec::new(); self.branches.len()];
        for (c, client) in self.clients.iter().enumerate() {
            by_branch[client.branch].push(c);
        }
        let branch_weights: Vec<(usize, f64)> =
            self.branches.iter().enumerate().map(|(b, br)| (b, br.seats.len() as f64)).collect();
        let factors: Vec<f64> = (0..self.period.weeks).map(|w| seasonality(self.period.week_start(w))).collect();
        // Scaled so that the period as a whole averages DEALS_PER_WEEK.
        let base = DEALS_PER_WEEK * factors.len() as f64 / factors.iter().sum::<f64>().max(f64::MIN_POSITIVE);
        for (w, factor) in factors.iter().enumerate() {
            let monday = self.period.week_start(w as u32);
            let week: Vec<NaiveDate> = (0..7).map(|i| monday + TimeDelta::days(i)).collect();
            let mut days: Vec<NaiveDate> = week.iter().copied().filter(|d| is_working_day(*d)).collect();
            if days.is_empty() {
                // Requests still come in over the New Year holidays; they are handled on weekdays.
                days = week[..5].to_vec();
            }
            let count = (base * factor * (1.0 + 0.05 * normal(rng))).round().max(0.0) as usize;
            for _ in 0..count {
                let b = pick_weighted(rng, &branch_weights).unwrap_or(0);
                let day = days.choose(rng).copied().unwrap_or(monday);
                let created = self.calendar.random_on(rng, b, day);
                let c = self.pick_client(rng, &mut by_branch, b, created);
                self.draft_deal(rng, b, c, created);
            }
        }
    }

    /// One new deal with client `c` at `created`.
    fn draft_deal(&mut self, rng: &mut ChaCha8Rng, b: usize, c: usize, created: DateTime<Utc>) {
        let branch = &self.branches[b];
        let client = &self.clients[c];
        let seat = if rng.random_bool(0.85) { client.seat } else { rng.random_range(0..branch.seats.len().max(1)) };
        let intake = rng.random_bool(INTAKE_SHARE).then(|| if rng.random_bool(0.55) { "marketing" } else { "content" });
        let source = match intake {
            Some("marketing") => "WEB",
            Some(_) => "SELF_SERVICE",
            None if client.deals_so_far > 0 && rng.random_bool(0.3) => "REPEAT_SALE",
            None => pick_weighted(rng, &[("CALL", 0.5), ("EMAIL", 0.25), ("PARTNER", 0.12), ("RECOMMENDATION", 0.13)])
                .unwrap_or("CALL"),
        };
        let by_phone = source == "CALL" || (source == "REPEAT_SALE" && rng.random_bool(0.5));
        // Bigger cities sell bigger events.
        let size = 0.7 + 0.03 * branch.seats.len() as f64;
        let tickets = (700.0 * size * (1.0 * normal(rng)).exp()).clamp(50.0, 60_000.0);
        let tickets = if tickets > 1000.0 { (tickets / 10.0).round() * 10.0 } else { tickets.round() };
        let price = ((4800.0 * (0.3 * normal(rng)).exp()).clamp(800.0, 25_000.0) / 50.0).round() * 50.0;
        let amount = Decimal::from(tickets as i64) * Decimal::from(price as i64);
        let rate_tenths = [80, 85, 90, 95, 100, 100, 100, 100, 105, 110, 115, 120].choose(rng).copied().unwrap_or(100);
        let mut commission = (amount * Decimal::new(rate_tenths, 3)).round_dp(2);
        commission.rescale(2);
        let mut amount = amount;
        amount.rescale(2);
        let title = names::deal_title(rng, client.kind, branch.city.name);
        self.clients[c].deals_so_far += 1;
        self.deals.push(Deal {
            id: 0,
            title,
            client: c,
            branch: b,
            seat,
            source,
            amount,
            commission,
            created,
            modified: created,
            stage: Stage::New,
            lost_reason: "",
            close_date: moscow_date(created),
            assigned: DIRECTOR_USER_ID,
            intake,
            by_phone,
        });
    }

    /// Sorts clients and deals by creation and gives them portal ids (with the gaps deleted
    /// records leave).
    fn number_records(&mut self, rng: &mut ChaCha8Rng) {
        let mut order: Vec<usize> = (0..self.clients.len()).collect();
        order.sort_by_key(|&c| (self.clients[c].created, c));
        let mut new_index = vec![0; order.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut clients: Vec<Option<Client>> = std::mem::take(&mut self.clients).into_iter().map(Some).collect();
        self.clients = order.iter().filter_map(|&old| clients[old].take()).collect();
        for deal in &mut self.deals {
            deal.client = new_index[deal.client];
        }
        let mut id = 0;
        for client in &mut self.clients {
            id += 1 + if rng.random_bool(0.02) { rng.random_range(1..=3) } else { 0 };
            client.id = id;
        }
        self.deals.sort_by_key(|d| d.created);
        let mut id = 0;
        for deal in &mut self.deals {
            id += 1 + if rng.random_bool(0.02) { rng.random_range(1..=3) } else { 0 };
            deal.id = id;
        }
    }

    /// Plays every deal's story and records its stage history and activities.
    fn live_deals(&mut self, seed: u64) {
        let cutoff = self.period.cutoff;
        let mut changes = Vec::new();
        let mut activities = Vec::new();
        for d in 0..self.deals.len() {
            let deal = &self.deals[d];
            let setting = Setting {
                calendar: &self.calendar,
                branch: deal.branch,
                created: deal.created,
                cutoff,
                came_by_phone: deal.by_phone,
            };
            let story = story::live(&mut stream(seed, STORIES, deal.id as u64), &setting);
            let (branch, seat, created) = (deal.branch, deal.seat, deal.created);
            let stage = story.stage();
            let last_move = story.last_move().unwrap_or(created);
            // Open deals of a manager who left were handed over to the successor.
            let owner_at = if stage.is_final() { last_move } else { cutoff - TimeDelta::seconds(1) };
            let (assigned, since) = self.holder(branch, seat, owner_at);
            let handed_over = since.filter(|s| *s > created && *s < cutoff);
            for (i, (st, at)) in story.changes.iter().enumerate() {
                let kind = match (i, st.is_final()) {
                    (0, _) => ChangeKind::Created,
                    (_, true) => ChangeKind::MovedToFinal,
                    (_, false) => ChangeKind::Moved,
                };
                changes.push(StageChange { id: 0, deal: d, kind, stage: *st, at: *at });
            }
            for a in story.activities {
                let when = if a.completed { a.start } else { cutoff - TimeDelta::seconds(1) };
                let (responsible, _) = self.holder(branch, seat, when);
                activities.push(Activity { id: 0, deal: d, responsible, story: a });
            }
            let deal = &mut self.deals[d];
            deal.stage = stage;
            deal.lost_reason = story.lost_reason;
            deal.close_date = story.close_date;
            deal.assigned = assigned;
            deal.modified = handed_over.map_or(last_move, |h| h.max(last_move));
        }
        // Portal ids follow the time records were written; stable sorts keep deal order on ties.
        changes.sort_by_key(|c| c.at);
        for (i, c) in changes.iter_mut().enumerate() {
            c.id = i as u32 + 1;
        }
        activities.sort_by_key(|a| a.story.created);
        for (i, a) in activities.iter_mut().enumerate() {
            a.id = i as u32 + 1;
        }
        self.stage_changes = changes;
        self.activities = activities;
    }

    /// Clients are looked after by whoever holds their seat at the cutoff.
    fn assign_clients(&mut self) {
        let at = self.period.cutoff - TimeDelta::seconds(1);
        for c in 0..self.clients.len() {
            let client = &self.clients[c];
            let (user, since) = self.holder(client.branch, client.seat, at);
            let created = client.created;
            let client = &mut self.clients[c];
            client.assigned = user;
            client.modified = since.filter(|s| *s > created).map_or(created, |s| s.max(created));
        }
    }
}
