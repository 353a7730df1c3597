//! How much of one sync of a source may go to quarantine before the sync fails: a number of
//! records (`--max-quarantined 50`) or a share of the records read (`--max-quarantined 5%`,
//! `[sync] max_quarantined_share`). A failed source keeps what it committed (the records that
//! mapped are loaded, the others stay in quarantine to be read again); it only fails the run.
//!
//! Shares are kept in parts per million and compared in integers, so a run exactly at the limit
//! is allowed whatever binary fraction the share would round to.

use std::fmt;
use std::str::FromStr;

use dealhouse_warehouse::ProjectConfig;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

const PPM: u64 = 1_000_000;

/// How many records one sync of a source may quarantine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineLimit {
    /// At most this many records.
    Records(u64),
    /// At most this share of the records read (loaded + quarantined), in parts per million.
    Share {
        /// 10_000 is 1%.
        ppm: u64,
    },
    /// Any number (tests whose fixtures quarantine on purpose; `--max-quarantined 100%`).
    Unlimited,
}

impl QuarantineLimit {
    /// A share from 0 to 1 (the config's `max_quarantined_share`), to the nearest millionth.
    pub fn share(share: f64) -> Self {
        Self::Share { ppm: (share.clamp(0.0, 1.0) * PPM as f64).round() as u64 }
    }

    /// True when `quarantined` of `read` records is more than the limit allows.
    pub fn exceeded(self, read: u64, quarantined: u64) -> bool {
        match self {
            Self::Records(n) => quarantined > n,
            Self::Share { ppm } => u128::from(quarantined) * u128::from(PPM) > u128::from(ppm) * u128::from(read),
            Self::Unlimited => false,
        }
    }
}

/// `50 records`, `5%`, `no limit`.
impl fmt::Display for QuarantineLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Records(1) => f.write_str("1 record"),
            Self::Records(n) => write!(f, "{n} records"),
            Self::Share { ppm } => write!(f, "{}%", percent(*ppm, PPM)),
            Self::Unlimited => f.write_str("no limit"),
        }
    }
}

/// `part / whole` as a percentage with up to 4 decimals, trailing zeros dropped: `33.3333`, `1`.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0".into();
    }
    (Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole)).round_dp(4).normalize().to_string()
}

/// `--max-quarantined`: `50` (records) or `5%` (of the records read).
impl FromStr for QuarantineLimit {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let fix = "expected a number of records (`50`) or a share of the records read (`5%`, `0.5%`)";
        if let Some(number) = s.strip_suffix('%') {
            let pct = Decimal::from_str(number.trim()).map_err(|_| format!("`{s}` is not a share; {fix}"))?;
            if pct.is_sign_negative() || pct > Decimal::ONE_HUNDRED {
                return Err(format!("`{s}` is not between 0% and 100%; {fix}"));
            }
            // 1% is 10_000 parts per million; finer than a millionth rounds.
            let ppm = (pct * Decimal::from(10_000)).round().to_u64().ok_or_else(|| format!("`{s}`: {fix}"))?;
            return Ok(Self::Share { ppm });
        }
        s.parse::<u64>().map(Self::Records).map_err(|_| format!("`{s}` is not a whole number of records; {fix}"))
    }
}

/// The limit of `source` and where it is set: `--max-quarantined` when given, else the project
/// file's `[sync.sources.NAME]` / `[sync]` share, else the default share.
pub fn limit_for(config: &ProjectConfig, source: &str, cli: Option<QuarantineLimit>) -> (QuarantineLimit, String) {
    match cli {
        Some(limit) => (limit, "--max-quarantined".into()),
        None => {
            let share = config.sync.quarantine_share(source);
            (QuarantineLimit::share(share.share), share.set_by)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentages_parse_exactly() {
        assert_eq!("50".parse(), Ok(QuarantineLimit::Records(50)));
        assert_eq!(" 0 ".parse(), Ok(QuarantineLimit::Records(0)));
        assert_eq!("5%".parse(), Ok(QuarantineLimit::Share { ppm: 50_000 }));
        assert_eq!("0.5%".parse(), Ok(QuarantineLimit::Share { ppm: 5_000 }));
        assert_eq!("100%".parse(), Ok(QuarantineLimit::Share { ppm: 1_000_000 }));
        assert_eq!("33.3333%".parse(), Ok(QuarantineLimit::Share { ppm: 333_333 }));
        for bad in ["-1", "5.5", "abc", "", "101%", "-1%", "x%", "%"] {
            let e = bad.parse::<QuarantineLimit>().unwrap_err();
            assert!(e.contains(&format!("`{}`", bad.trim())) && e.contains("`5%`"), "{bad}: {e}");
        }
        assert_eq!(QuarantineLimit::share(0.01), QuarantineLimit::Share { ppm: 10_000 });
        assert_eq!(QuarantineLimit::share(0.07), QuarantineLimit::Share { ppm: 70_000 });
    }

    #[test]
    fn a_run_fails_only_above_the_limit() {
        // 1 of 3 is 33.3...%: above 1% and 33.3333%, within 50%.
        assert!(QuarantineLimit::share(0.01).exceeded(3, 1));
        assert!("33.3333%".parse::<QuarantineLimit>().unwrap().exceeded(3, 1));
        assert!(!"50%".parse::<QuarantineLimit>().unwrap().exceeded(3, 1));
        // Exactly at the limit passes: 7 of 100 at 7% (0.07 * 100 is 7.000000000000001 in f64,
        // 0.29 * 100 is 28.999999999999996: integers avoid both edges).
        assert!(!QuarantineLimit::share(0.07).exceeded(100, 7));
        assert!(!QuarantineLimit::share(0.29).exceeded(100, 29));
        assert!(QuarantineLimit::share(0.29).exceeded(100, 30));
        assert!(!QuarantineLimit::share(0.0).exceeded(0, 0));
        assert!(QuarantineLimit::share(0.0).exceeded(1, 1));
        assert!(!QuarantineLimit::Records(2).exceeded(3, 2) && QuarantineLimit::Records(2).exceeded(3, 3));
        assert!(!QuarantineLimit::Unlimited.exceeded(3, 3));
    }

    #[test]
    fn limits_and_shares_print_as_users_write_them() {
        assert_eq!(QuarantineLimit::share(0.01).to_string(), "1%");
        assert_eq!(QuarantineLimit::Share { ppm: 5_000 }.to_string(), "0.5%");
        assert_eq!(QuarantineLimit::Records(1).to_string(), "1 record");
        assert_eq!(QuarantineLimit::Records(50).to_string(), "50 records");
        assert_eq!(percent(1, 3), "33.3333");
        assert_eq!(percent(2, 4), "50");
        assert_eq!(percent(0, 0), "0");
    }
}
