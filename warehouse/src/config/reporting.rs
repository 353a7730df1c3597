//! `[reporting]`: the currency every mart reports money in, and what a currency code is.
//!
//! Sources keep each deal's amount in the currency it was made in (`deals.currency`); staging
//! converts it to this one with the `fx_rates` table (see `models/staging/stg_deal.sql`).

use serde::Deserialize;

use super::issues::{ConfigIssue, KeyPath};

/// The reporting currency when the file names none: the company books in roubles.
pub const DEFAULT_REPORTING_CURRENCY: &str = "RUB";

/// `[reporting]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingConfig {
    /// ISO 4217 code of the currency marts, the API and the dashboards show money in; every
    /// `fx_rates.rate` is units of it per one unit of the rate's currency.
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    DEFAULT_REPORTING_CURRENCY.into()
}

impl Default for ReportingConfig {
    fn default() -> Self {
        Self { currency: default_currency() }
    }
}

impl ReportingConfig {
    /// The currency is an ISO 4217 code.
    pub(crate) fn validate(&self) -> Result<(), ConfigIssue> {
        check_currency_code(&self.currency).map_err(|m| KeyPath::of(["reporting", "currency"]).issue(m))
    }
}

/// Checks that `code` is written as an ISO 4217 code: three capital Latin letters (`RUB`,
/// `USD`, `KZT`). Whether the code exists is not checked: a code with no rate shows up as
/// such in `stg_deal.amount_null_reason`.
pub fn check_currency_code(code: &str) -> Result<(), String> {
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "`{code}` is not an ISO 4217 currency code: write three capital letters such as RUB, USD, EUR or KZT"
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    #[test]
    fn the_reporting_currency_defaults_to_rub_and_is_an_iso_code() {
        assert_eq!(parse("").unwrap().reporting.currency, "RUB");
        assert_eq!(parse("[reporting]\ncurrency = \"KZT\"\n").unwrap().reporting.currency, "KZT");
        for bad in ["rub", "RUBL", "₽", "US", "U$D", ""] {
            let e = parse(&format!("[server]\nbind = \"127.0.0.1:1\"\n\n[reporting]\ncurrency = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("dealhouse.toml:5: key `reporting.currency`") && e.contains("ISO 4217"), "{bad}: {e}");
        }
        let e = parse("[reporting]\ncurency = \"USD\"\n").unwrap_err().to_string();
        assert!(e.contains("dealhouse.toml:2") && e.contains("unknown field `curency`"), "{e}");
    }
}
