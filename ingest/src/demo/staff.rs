//! The org chart in motion: one manager per sales seat when the period starts, the few who leave
//! and the successors who take their seats (and their open deals and clients), and the date
//! each branch moves its intake into the CRM.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::calendar::{Calendar, Period, is_working_day};
use super::cities::{CITIES, MAIL_DOMAIN, department_id};
use super::company::{Branch, DIRECTOR_USER_ID, Manager, Tenure};
use super::names;

/// The org chart and its staff over the period: one manager per seat at the start, a few who
/// leave (their last day ends at closing time) and the successors who take over the next
/// working day.
pub(crate) fn staff(rng: &mut ChaCha8Rng, period: &Period, cal: &Calendar) -> (Vec<Branch>, Vec<Manager>) {
    let mut branches = Vec::with_capacity(CITIES.len());
    let mut managers: Vec<Manager> = Vec::new();
    let mut emails = BTreeSet::new();
    for (b, city) in CITIES.iter().enumerate() {
        let mut seats = Vec::with_capacity(city.seats as usize);
        for seat in 0..city.seats as usize {
            let mut day = period.first_day - TimeDelta::days(rng.random_range(30..8 * 365));
            while !is_working_day(day) {
                day -= TimeDelta::days(1);
            }
            let hired = cal.random_on(rng, b, day);
            managers.push(hire(rng, &mut emails, b, seat, hired));
            let m = managers.len() - 1;
            seats.push(vec![Tenure { manager: m, from: hired }]);
        }
        branches.push(Branch { city: *city, department_id: department_id(b), crm_switch_date: None, seats });
    }
    for (m, manager) in managers.iter_mut().enumerate() {
        manager.user_id = DIRECTOR_USER_ID + 1 + m as u32;
    }
    // Turnover: about 8% of seats change hands a year.
    let days = (period.last_day - period.first_day).num_days();
    let p_leave = (0.08 * days as f64 / 365.0).clamp(0.02, 0.3);
    let mut successors = Vec::new();
    for (b, branch) in branches.iter().enumerate() {
        for seat in 0..branch.seats.len() {
            if days < 14 || !rng.random_bool(p_leave) {
                continue;
            }
            let mut last_day = period.first_day + TimeDelta::days(rng.random_range(7..days - 6));
            while !is_working_day(last_day) {
                last_day -= TimeDelta::days(1);
            }
            let mut first_day = last_day + TimeDelta::days(1);
            while !is_working_day(first_day) {
                first_day += TimeDelta::days(1);
            }
            successors.push((cal.open(b, first_day), b, seat, cal.close(b, last_day)));
        }
    }
    // Successors get user ids in the order they were hired.
    successors.sort_by_key(|s| (s.0, s.1, s.2));
    for (hired, b, seat, left) in successors {
        if let Some(prev) = branches[b].seats[seat].last().map(|t| t.manager) {
            managers[prev].left = Some(left);
        }
        managers.push(hire(rng, &mut emails, b, seat, hired));
        let m = managers.len() - 1;
        managers[m].user_id = DIRECTOR_USER_ID + 1 + m as u32;
        branches[b].seats[seat].push(Tenure { manager: m, from: hired });
    }
    switch_dates(rng, period, &mut branches);
    (branches, managers)
}

/// A new manager for `seat` of `branch` (user id assigned by the caller), with a unique e-mail.
fn hire(
    rng: &mut ChaCha8Rng,
    emails: &mut BTreeSet<String>,
    branch: usize,
    seat: usize,
    hired: DateTime<Utc>,
) -> Manager {
    let name = names::person(rng);
    let initial = names::translit(name.first).chars().next().unwrap_or('x');
    let login = format!("{initial}.{}", names::translit(&name.last));
    let mut email = format!("{login}@{MAIL_DOMAIN}");
    let mut n = 2;
    while !emails.insert(email.clone()) {
        email = format!("{login}{n}@{MAIL_DOMAIN}");
        n += 1;
    }
    let position = match (seat, CITIES.get(branch).map_or(0, |c| c.seats)) {
        (0, _) => "Руководитель филиала",
        (1, s) if s >= 5 => "Старший менеджер по продажам",
        _ => "Менеджер по продажам",
    };
    Manager { user_id: 0, branch, name, email, position, hired, left: None }
}

/// When each branch moves its intake into the CRM: Moscow and St Petersburg pilot it early,
/// the others follow over the period, and a few never get to it.
fn switch_dates(rng: &mut ChaCha8Rng, period: &Period, branches: &mut [Branch]) {
    let weeks = period.weeks as f64;
    let week = |x: f64| period.week_start((weeks * x).floor().clamp(0.0, weeks - 1.0) as u32);
    let mut others: Vec<usize> =
        (0..branches.len()).filter(|&b| !matches!(branches[b].city.slug, "msk" | "spb")).collect();
    for branch in branches.iter_mut().filter(|b| matches!(b.city.slug, "msk" | "spb")) {
        branch.crm_switch_date = Some(week(rng.random_range(0.1..0.18)));
    }
    // Six branches never switch within the period.
    for _ in 0..6 {
        if !others.is_empty() {
            others.remove(rng.random_range(0..others.len()));
        }
    }
    for b in others {
        branches[b].crm_switch_date = Some(week(rng.random_range(0.2..0.9)));
    }
}
