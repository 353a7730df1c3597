//! Time in the demo company: the covered period, Russian working days and each branch's office
//! hours (9-19 local, so a Vladivostok morning is the previous UTC evening).
//!
//! Everything derives from `as_of`, never from the wall clock. Times are whole seconds, as the
//! CRM stores them.

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Local hour the offices open.
pub(crate) const OPEN_HOUR: i64 = 9;
/// Local hour the offices close.
pub(crate) const CLOSE_HOUR: i64 = 19;

const OPEN_SECS: i64 = OPEN_HOUR * 3600;
const CLOSE_SECS: i64 = CLOSE_HOUR * 3600;

/// The weeks the demo covers.
#[derive(Debug, Clone)]
pub(crate) struct Period {
    /// Monday of the first week.
    pub first_day: NaiveDate,
    /// Sunday of the last week (the Sunday before `as_of`).
    pub last_day: NaiveDate,
    /// Number of weeks.
    pub weeks: u32,
    /// Nothing happens at or after this instant: midnight after `last_day`, Moscow time.
    pub cutoff: DateTime<Utc>,
}

impl Period {
    /// The `weeks` full weeks ending the Sunday strictly before `as_of`.
    pub fn new(as_of: NaiveDate, weeks: u32) -> Result<Self, String> {
        if !(1..=520).contains(&weeks) {
            return Err(format!("weeks = {weeks}: choose between 1 and 520"));
        }
        if !(2000..=2100).contains(&as_of.year()) {
            return Err(format!("as_of = {as_of}: choose a date between 2000 and 2100"));
        }
        let back = match as_of.weekday().num_days_from_sunday() {
            0 => 7,
            n => n,
        };
        let last_day = as_of - TimeDelta::days(back as i64);
        let first_day = last_day - TimeDelta::days(7 * weeks as i64 - 1);
        let cutoff = moscow_midnight(last_day + TimeDelta::days(1));
        Ok(Period { first_day, last_day, weeks, cutoff })
    }

    /// Monday of week `w` (0-based).
    pub fn week_start(&self, w: u32) -> NaiveDate {
        self.first_day + TimeDelta::days(7 * w as i64)
    }

    /// Months (first days) the period touches.
    pub fn months(&self) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut m = first_of_month(self.first_day);
        while m <= self.last_day {
            out.push(m);
            m = next_month(m);
        }
        out
    }
}

/// First day of the month of `d`.
pub(crate) fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// First day of the month after `m`.
pub(crate) fn next_month(m: NaiveDate) -> NaiveDate {
    let (y, mo) = if m.month() == 12 { (m.year() + 1, 1) } else { (m.year(), m.month() + 1) };
    NaiveDate::from_ymd_opt(y, mo, 1).unwrap_or(m + TimeDelta::days(31))
}

/// Midnight starting `day` in Moscow, as UTC.
fn moscow_midnight(day: NaiveDate) -> DateTime<Utc> {
    let naive = day.and_time(chrono::NaiveTime::MIN);
    match chrono_tz::Europe::Moscow.from_local_datetime(&naive).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => Utc.from_utc_datetime(&naive) - TimeDelta::hours(3),
    }
}

/// A Russian non-working public holiday (the fixed dates; weekend transfers are left out).
pub(crate) fn is_holiday(d: NaiveDate) -> bool {
    matches!((d.month(), d.day()), (1, 1..=8) | (2, 23) | (3, 8) | (5, 1) | (5, 9) | (6, 12) | (11, 4))
}

/// Monday to Friday and not a public holiday.
pub(crate) fn is_working_day(d: NaiveDate) -> bool {
    !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !is_holiday(d)
}

/// Each branch's UTC offset by day, precomputed for the span the demo uses.
pub(crate) struct Calendar {
    zones: Vec<Tz>,
    base: NaiveDate,
    /// `offsets[branch][day - base]`: seconds east of UTC at local noon.
    offsets: Vec<Vec<i32>>,
}

impl Calendar {
    /// Offsets of `zones` for the days `from..=to` (other days are computed on demand).
    pub fn new(zones: Vec<Tz>, from: NaiveDate, to: NaiveDate) -> Self {
        let days = (to - from).num_days().max(0) as usize + 1;
        let offsets = zones
            .iter()
            .map(|tz| (0..days).map(|i| zone_offset(tz, from + TimeDelta::days(i as i64))).collect())
            .collect();
        Calendar { zones, base: from, offsets }
    }

    /// Seconds east of UTC in branch `b` on local day `d` (at noon: office hours never straddle
    /// a daylight-saving switch, which happens at night).
    pub fn offset(&self, b: usize, d: NaiveDate) -> i64 {
        let i = (d - self.base).num_days();
        let cached = usize::try_from(i).ok().and_then(|i| self.offsets.get(b)?.get(i).copied());
        match cached {
            Some(o) => o as i64,
            None => self.zones.get(b).map(|tz| zone_offset(tz, d) as i64).unwrap_or(3 * 3600),
        }
    }

    /// The instant `secs` seconds after local midnight of `d` in branch `b`.
    pub fn at_local(&self, b: usize, d: NaiveDate, secs: i64) -> DateTime<Utc> {
        let midnight = Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN));
        midnight + TimeDelta::seconds(secs - self.offset(b, d))
    }

    /// Local calendar day of instant `t` in branch `b`.
    pub fn local_date(&self, b: usize, t: DateTime<Utc>) -> NaiveDate {
        let guess = (t + TimeDelta::seconds(self.offset(b, t.date_naive()))).date_naive();
        (t + TimeDelta::seconds(self.offset(b, guess))).date_naive()
    }

    /// Seconds since local midnight of instant `t` in branch `b`.
    #[cfg(test)]
    pub fn local_secs(&self, b: usize, t: DateTime<Utc>) -> i64 {
        (t - self.at_local(b, self.local_date(b, t), 0)).num_seconds()
    }

    /// Office opening on local day `d`.
    pub fn open(&self, b: usize, d: NaiveDate) -> DateTime<Utc> {
        self.at_local(b, d, OPEN_SECS)
    }

    /// Office closing on local day `d`.
    pub fn close(&self, b: usize, d: NaiveDate) -> DateTime<Utc> {
        self.at_local(b, d, CLOSE_SECS)
    }

    /// A uniformly random office-hours instant on local day `d`.
    pub fn random_on(&self, rng: &mut ChaCha8Rng, b: usize, d: NaiveDate) -> DateTime<Utc> {
        self.at_local(b, d, rng.random_range(OPEN_SECS..CLOSE_SECS))
    }

    /// An office-hours instant `min_days..=max_days` working days after `t` (0 = later the same
    /// day when the office is still open long enough), always strictly after `t`.
    pub fn after(
        &self,
        rng: &mut ChaCha8Rng,
        b: usize,
        t: DateTime<Utc>,
        min_days: u32,
        max_days: u32,
    ) -> DateTime<Utc> {
        let mut wanted = rng.random_range(min_days..=max_days.max(min_days));
        let today = self.local_date(b, t);
        if wanted == 0 {
            let earliest = (t + TimeDelta::minutes(10)).max(self.open(b, today));
            let close = self.close(b, today);
            if is_working_day(today) && earliest < close {
                let span = (close - earliest).num_seconds();
                return earliest + TimeDelta::seconds(rng.random_range(0..span));
            }
            wanted = 1;
        }
        let mut d = today;
        while wanted > 0 {
            d += TimeDelta::days(1);
            if is_working_day(d) {
                wanted -= 1;
            }
        }
        self.random_on(rng, b, d).max(t + TimeDelta::seconds(1))
    }

    /// An office-hours instant up to `max_days` working days before `t`, always strictly before.
    pub fn before(&self, rng: &mut ChaCha8Rng, b: usize, t: DateTime<Utc>, max_days: u32) -> DateTime<Utc> {
        let mut wanted = rng.random_range(0..=max_days);
        let mut d = self.local_date(b, t);
        if wanted == 0 {
            let open = self.open(b, d);
            let latest = t - TimeDelta::minutes(5);
            if is_working_day(d) && latest > open {
                return open + TimeDelta::seconds(rng.random_range(0..(latest - open).num_seconds()));
            }
            wanted = 1;
        }
        while wanted > 0 {
            d -= TimeDelta::days(1);
            if is_working_day(d) {
                wanted -= 1;
            }
        }
        self.random_on(rng, b, d).min(t - TimeDelta::seconds(1))
    }

    /// A uniformly random office-hours instant strictly between `lo` and `hi`, if there is one.
    pub fn between(
        &self,
        rng: &mut ChaCha8Rng,
        b: usize,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let lo = lo + TimeDelta::seconds(1);
        if hi <= lo {
            return None;
        }
        let mut spans: Vec<(DateTime<Utc>, i64)> = Vec::new();
        let mut d = self.local_date(b, lo);
        let last = self.local_date(b, hi);
        while d <= last {
            if is_working_day(d) {
                let a = self.open(b, d).max(lo);
                let z = self.close(b, d).min(hi);
                if z > a {
                    spans.push((a, (z - a).num_seconds()));
                }
            }
            d += TimeDelta::days(1);
        }
        let total: i64 = spans.iter().map(|s| s.1).sum();
        if total <= 0 {
            return None;
        }
        let mut r = rng.random_range(0..total);
        for (start, len) in spans {
            if r < len {
                return Some(start + TimeDelta::seconds(r));
            }
            r -= len;
        }
        None
    }
}

fn zone_offset(tz: &Tz, d: NaiveDate) -> i32 {
    let noon = Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN)) + TimeDelta::hours(12);
    tz.offset_from_utc_datetime(&noon.naive_utc()).fix().local_minus_utc()
}

/// An instant as the portal writes it: ISO 8601 with the portal's `+03:00`.
pub(crate) fn portal_time(t: DateTime<Utc>) -> String {
    let l = t.naive_utc() + TimeDelta::hours(3);
    let (date, time) = (l.date(), l.time());
    use chrono::Timelike;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+03:00",
        date.year(),
        date.month(),
        date.day(),
        time.hour(),
        time.minute(),
        time.second()
    )
}

/// A calendar date as the portal writes date fields (midnight, `+03:00`).
pub(crate) fn portal_date(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}T00:00:00+03:00", d.year(), d.month(), d.day())
}

/// Moscow wall-clock date of `t` (the portal's day).
pub(crate) fn moscow_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&chrono_tz::Europe::Moscow).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn period_ends_the_sunday_before_as_of() {
        // 2025-06-18 is a Wednesday: the last full week is Mon 9 - Sun 15 June.
        let p = Period::new(d(2025, 6, 18), 2).unwrap();
        assert_eq!((p.first_day, p.last_day), (d(2025, 6, 2), d(2025, 6, 15)));
        // A Sunday as_of is not itself covered.
        let p = Period::new(d(2025, 6, 15), 1).unwrap();
        assert_eq!((p.first_day, p.last_day), (d(2025, 6, 2), d(2025, 6, 8)));
        // Midnight 16 June in Moscow (UTC+3) is 21:00 UTC on the 15th.
        let p = Period::new(d(2025, 6, 16), 1).unwrap();
        assert_eq!(p.cutoff, Utc.with_ymd_and_hms(2025, 6, 15, 21, 0, 0).unwrap());
        assert!(Period::new(d(2025, 6, 16), 0).is_err());
    }

    #[test]
    fn vladivostok_opens_the_previous_utc_evening() {
        let tz: Tz = "Asia/Vladivostok".parse().unwrap();
        let cal = Calendar::new(vec![tz], d(2025, 1, 1), d(2025, 12, 31));
        // 09:00 at UTC+10 is 23:00 UTC the day before.
        assert_eq!(cal.open(0, d(2025, 3, 4)), Utc.with_ymd_and_hms(2025, 3, 3, 23, 0, 0).unwrap());
        assert_eq!(cal.local_date(0, Utc.with_ymd_and_hms(2025, 3, 3, 23, 30, 0).unwrap()), d(2025, 3, 4));
    }

    #[test]
    fn after_and_between_stay_in_office_hours() {
        let tz: Tz = "Asia/Kamchatka".parse().unwrap();
        let cal = Calendar::new(vec![tz], d(2025, 1, 1), d(2025, 12, 31));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut t = cal.open(0, d(2025, 4, 1));
        for _ in 0..500 {
            let next = cal.after(&mut rng, 0, t, 0, 3);
            assert!(next > t);
            let secs = cal.local_secs(0, next);
            assert!((OPEN_SECS..CLOSE_SECS).contains(&secs), "{next} at {secs}");
            assert!(is_working_day(cal.local_date(0, next)));
            if let Some(mid) = cal.between(&mut rng, 0, t, next) {
                assert!(mid > t && mid < next);
                assert!((OPEN_SECS..CLOSE_SECS).contains(&cal.local_secs(0, mid)));
            }
            t = next;
        }
    }

    #[test]
    fn portal_time_is_moscow_offset() {
        let t = Utc.with_ymd_and_hms(2025, 3, 4, 7, 15, 0).unwrap();
        assert_eq!(portal_time(t), "2025-03-04T10:15:00+03:00");
        assert_eq!(portal_date(d(2025, 3, 4)), "2025-03-04T00:00:00+03:00");
    }
}
