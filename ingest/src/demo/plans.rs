//! Monthly targets per manager (won amount, deals won, calls, meetings), scaled to what the
//! manager's branch achieves per seat and to the concert season.

use chrono::{NaiveDate, TimeDelta};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::calendar::next_month;
use super::company::{Company, Metric, PlanRow, seasonality};
use super::story::{ActivityKind, Stage};

/// Rounds to a multiple of `step`.
fn round_to(x: f64, step: f64) -> Decimal {
    Decimal::from(((x / step).round() * step) as i64)
}

impl Company {
    /// Monthly targets per manager, scaled to what the manager's branch achieves per seat.
    pub(super) fn monthly_plans(&mut self, rng: &mut ChaCha8Rng) {
        let n = self.branches.len();
        let (mut won, mut won_count, mut calls, mut meetings) =
            (vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        for deal in &self.deals {
            if deal.stage == Stage::Won {
                won[deal.branch] += deal.amount.to_f64().unwrap_or(0.0);
                won_count[deal.branch] += 1.0;
            }
        }
        for a in &self.activities {
            let b = self.deals[a.deal].branch;
            match a.story.kind {
                ActivityKind::Call => calls[b] += 1.0,
                ActivityKind::Meeting => meetings[b] += 1.0,
                _ => {}
            }
        }
        let months = (self.period.weeks as f64 * 7.0 / 30.44).max(0.25);
        let seats: Vec<f64> = self.branches.iter().map(|b| b.seats.len() as f64 * months).collect();
        let per_seat = |x: &[f64], b: usize| {
            let own = x[b] / seats[b];
            if own > 0.0 { own } else { x.iter().sum::<f64>() / seats.iter().sum::<f64>() }
        };
        let month_list = self.period.months();
        let season_of = |m: NaiveDate| seasonality(m + TimeDelta::days(7));
        let mean_season = month_list.iter().map(|m| season_of(*m)).sum::<f64>() / month_list.len().max(1) as f64;
        let mut by_branch: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (m, manager) in self.managers.iter().enumerate() {
            by_branch[manager.branch].push(m);
        }
        let mut plans = Vec::new();
        for month in month_list {
            let (start, end) = (self.calendar.at_local(0, month, 0), self.calendar.at_local(0, next_month(month), 0));
            let season = season_of(month) / mean_season.max(f64::MIN_POSITIVE);
            for (b, managers) in by_branch.iter().enumerate() {
                for &m in managers {
                    let manager = &self.managers[m];
                    if manager.hired >= end || manager.left.is_some_and(|l| l < start) {
                        continue;
                    }
                    let stretch = rng.random_range(1.0..1.2);
                    let targets = [
                        round_to(per_seat(&won, b) * season * stretch, 10_000.0).max(Decimal::from(50_000)),
                        round_to(per_seat(&won_count, b) * season * stretch, 1.0).max(Decimal::ONE),
                        round_to(per_seat(&calls, b) * rng.random_range(1.05..1.3), 1.0).max(Decimal::from(5)),
                        round_to(per_seat(&meetings, b) * rng.random_range(1.05..1.3), 1.0).max(Decimal::ONE),
                    ];
                    for (metric, target) in Metric::ALL.into_iter().zip(targets) {
                        plans.push(PlanRow { month, manager: m, metric, target });
                    }
                }
            }
        }
        self.plans = plans;
    }
}
