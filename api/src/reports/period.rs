//! Report periods: a month (`2026-11`), an ISO week (`2026-W47`) or a day (`2026-11-03`), and
//! the default one: the last complete period of a report's natural kind before the data's
//! reference date (the latest deal update the warehouse knows, not the wall clock), so the same
//! warehouse always exports the same default period.

use std::fmt;

use chrono::{Datelike, Duration, IsoWeek, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// The kinds of period a report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    /// A calendar day.
    Day,
    /// An ISO week, Monday to Sunday.
    Week,
    /// A calendar month.
    Month,
}

impl PeriodKind {
    /// The name used in files and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// A period: its kind and its first and last day (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// What kind of period it is.
    pub kind: PeriodKind,
    /// First day.
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
}

/// The spellings `--period` accepts, for error messages.
pub const PERIOD_SYNTAX: &str =
    "a month YYYY-MM (2026-11), an ISO week YYYY-Www (2026-W47) or a day YYYY-MM-DD (2026-11-03)";

impl Period {
    /// Parses `2026-11`, `2026-W47` or `2026-11-03`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("period `{text}` is not {PERIOD_SYNTAX}");
        if let Some((year, week)) = t.split_once(['W', 'w']) {
            let year: i32 = year.strip_suffix('-').unwrap_or(year).parse().map_err(|_| bad())?;
            let week: u32 = week.parse().map_err(|_| bad())?;
            let start = NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
                .ok_or_else(|| format!("{year} has no ISO week {week}; {}", bad()))?;
            return Ok(Self::week_of(start));
        }
        if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            return Ok(Self::day(day));
        }
        let first = NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d").map_err(|_| bad())?;
        Ok(Self::month_of(first))
    }

    /// One day.
    pub fn day(day: NaiveDate) -> Self {
        Self { kind: PeriodKind::Day, start: day, end: day }
    }

    /// The ISO week holding `day`.
    pub fn week_of(day: NaiveDate) -> Self {
        let start = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
        Self { kind: PeriodKind::Week, start, end: start + Duration::days(6) }
    }

    /// The calendar month holding `day`.
    pub fn month_of(day: NaiveDate) -> Self {
        let start = day.with_day(1).unwrap_or(day);
        let next = start.checked_add_months(chrono::Months::new(1)).unwrap_or(start);
        Self { kind: PeriodKind::Month, start, end: next.pred_opt().unwrap_or(start) }
    }

    /// The last complete period of `kind` before `reference` (the day holding the data's
    /// reference time is not complete yet).
    pub fn last_complete(kind: PeriodKind, reference: NaiveDate) -> Self {
        match kind {
            PeriodKind::Day => Self::day(reference.pred_opt().unwrap_or(reference)),
            PeriodKind::Week => Self::week_of(Self::week_of(reference).start - Duration::days(7)),
            PeriodKind::Month => Self::month_of(Self::month_of(reference).start.pred_opt().unwrap_or(reference)),
        }
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> Vec<NaiveDate> {
        self.start.iter_days().take_while(|d| *d <= self.end).collect()
    }

    /// The first days of the first and the last month the period touches (a week may span two).
    pub fn months(&self) -> (NaiveDate, NaiveDate) {
        (Self::month_of(self.start).start, Self::month_of(self.end).start)
    }

    /// The label used in file names: `2026-11`, `2026-W47`, `2026-11-03`.
    pub fn label(&self) -> String {
        match self.kind {
            PeriodKind::Day => self.start.format("%Y-%m-%d").to_string(),
            PeriodKind::Week => {
                let w: IsoWeek = self.start.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            PeriodKind::Month => self.start.format("%Y-%m").to_string(),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.label())
        } else {
            write!(f, "{} ({} .. {})", self.label(), self.start, self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_three_spellings_parse_to_their_days() {
        // 2026-11-16 is a Monday (2026-01-01 is a Thursday, so week 1 starts 2025-12-29; + 46 weeks).
        let w = Period::parse("2026-W47").unwrap();
        assert_eq!((w.kind, w.start, w.end), (PeriodKind::Week, d("2026-11-16"), d("2026-11-22")));
        assert_eq!(w.label(), "2026-W47");
        let m = Period::parse("2026-02").unwrap();
        assert_eq!((m.kind, m.start, m.end), (PeriodKind::Month, d("2026-02-01"), d("2026-02-28")));
        assert_eq!(m.label(), "2026-02");
        let day = Period::parse("2026-11-03").unwrap();
        assert_eq!((day.kind, day.start, day.end), (PeriodKind::Day, d("2026-11-03"), d("2026-11-03")));
        // ISO week 1 of 2027 starts in 2026.
        assert_eq!(Period::parse("2027-W01").unwrap().start, d("2027-01-04"));
        // 2026 starts on a Thursday, so it has a week 53; 2025 does not.
        assert_eq!(Period::parse("2026-W53").unwrap().end, d("2027-01-03"));
        assert!(Period::parse("2025-W53").unwrap_err().contains("no ISO week 53"));
        for bad in ["2026-13", "november", "2026-W", "2026-11-31", ""] {
            let e = Period::parse(bad).unwrap_err();
            assert!(e.contains(bad) && e.contains("YYYY-Www"), "{e}");
        }
    }

    #[test]
    fn the_default_is_the_last_complete_period_before_the_reference_day() {
        // Wednesday 2026-11-25: the week before is W47, the month before is October.
        let r = d("2026-11-25");
        assert_eq!(Period::last_complete(PeriodKind::Day, r).start, d("2026-11-24"));
        assert_eq!(Period::last_complete(PeriodKind::Week, r).label(), "2026-W47");
        assert_eq!(Period::last_complete(PeriodKind::Month, r).label(), "2026-10");
        // On a Monday the week that just ended is complete; on the 1st the month that just ended is.
        assert_eq!(Period::last_complete(PeriodKind::Week, d("2026-11-23")).label(), "2026-W47");
        assert_eq!(Period::last_complete(PeriodKind::Month, d("2026-01-01")).label(), "2025-12");
    }

    #[test]
    fn a_week_across_months_touches_both() {
        let w = Period::parse("2026-W49").unwrap(); // 2026-11-30 .. 2026-12-06
        assert_eq!(w.months(), (d("2026-11-01"), d("2026-12-01")));
        assert_eq!(w.days().len(), 7);
    }
}
