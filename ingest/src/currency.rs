//! Currencies in the rows sources hand over: every deal carries the ISO 4217 code of its money
//! (the row's own, else its source's `currency`, else the reporting currency), and `fx_rates`
//! rows price one currency in the reporting one. Codes and rates are checked as rows are mapped,
//! so a bad one is quarantined with its row and the fix, never stored to fail a build later.

use dealhouse_warehouse::config::check_currency_code;

use crate::mapping::Cell;

/// Columns holding a currency code, by table.
const CODE_COLUMNS: [(&str, &str); 2] = [("deals", "currency"), ("fx_rates", "currency")];

/// Checks a mapped cell of `table.column`: currency codes are ISO 4217 codes and exchange rates
/// are positive. `values_section` names where the source maps raw values, for the fix.
pub(crate) fn check_cell(
    table: &str,
    column: &str,
    cell: &Cell,
    values_section: impl FnOnce() -> String,
) -> Result<(), String> {
    match cell {
        Cell::Str(code) if CODE_COLUMNS.contains(&(table, column)) => check_currency_code(code).map_err(|m| {
            format!("column `{column}`: {m}; fix the value or map it with [{}.values.{column}]", values_section())
        }),
        Cell::Scaled(rate) if table == "fx_rates" && column == "rate" && *rate <= 0 => {
            Err("column `rate`: an exchange rate is the price of one unit of the currency in the reporting currency \
             and must be positive; fix the row (a rate quoted per 10 or 100 units is divided by them first)"
                .to_string())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::NaiveDate;
    use dealhouse_warehouse::Project;
    use dealhouse_warehouse::datafusion::arrow::array::AsArray;
    use dealhouse_warehouse::datafusion::arrow::datatypes::Decimal128Type;

    use crate::mapping::{MappingOptions, RawValue, Record, RecordMapper};

    fn project(reporting: &str) -> Arc<Project> {
        let config = crate::project::parse(
            &format!("[reporting]\ncurrency = \"{reporting}\"\n"),
            std::path::Path::new("/p/dealhouse.toml"),
        )
        .unwrap();
        Arc::new(Project { dir: "/p".into(), config })
    }

    fn record(fields: &[(&str, &str)]) -> Record {
        let mut r = Record::new();
        for (k, v) in fields {
            r.push(*k, RawValue::Text(v.to_string()));
        }
        r
    }

    fn deal(id: &str, currency: Option<&str>) -> Record {
        let mut fields = vec![
            ("source_id", id),
            ("pipeline", "0"),
            ("stage", "new"),
            ("source_stage", "NEW"),
            ("status", "open"),
            ("amount", "10.50"),
            ("created_at", "2026-03-01 10:00:00"),
            ("updated_at", "2026-03-01 10:00:00"),
        ];
        if let Some(c) = currency {
            fields.push(("currency", c));
        }
        record(&fields)
    }

    #[test]
    fn a_deal_row_is_in_its_own_currency_else_the_sources_else_the_reporting_one() {
        let currencies = |options: MappingOptions, reporting: &str| {
            let mut m = RecordMapper::new(project(reporting), "erp", "deals", options).unwrap();
            for (i, c) in [Some("USD"), None, Some("usd"), Some("$")].into_iter().enumerate() {
                let r = deal(&i.to_string(), c);
                m.push(&r, &format!("deals.csv:{}", i + 2), &r);
            }
            let (batch, q) = m.finish().unwrap();
            let codes: Vec<String> = batch
                .column_by_name("currency")
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|c| c.unwrap_or("NULL").to_string())
                .collect();
            (codes, q)
        };
        let (codes, q) = currencies(MappingOptions::default(), "KZT");
        assert_eq!(codes, ["USD", "KZT"]);
        assert_eq!(q.len(), 2, "{q:?}");
        assert_eq!(q[0].location, "deals.csv:4");
        assert!(
            q[0].reason.contains("column `currency`: `usd` is not an ISO 4217 currency code")
                && q[0].reason.contains("[sources.erp.values.currency]"),
            "{}",
            q[0].reason
        );
        assert!(q[1].reason.contains("`$` is not an ISO 4217"), "{}", q[1].reason);
        let options = MappingOptions { currency: Some("EUR".into()), ..MappingOptions::default() };
        assert_eq!(currencies(options, "RUB").0, ["USD", "EUR"]);
    }

    #[test]
    fn rates_are_exact_positive_and_priced_in_an_iso_code() {
        let mut m = RecordMapper::new(project("RUB"), "cbr", "fx_rates", MappingOptions::default()).unwrap();
        for (i, (date, code, rate)) in [
            ("2026-03-03", "USD", "91.2525"),
            ("2026-03-03", "IDR", "0.0055123400"),
            ("2026-03-03", "EUR", "0"),
            ("2026-03-03", "EUR", "-1.5"),
            ("2026-03-03", "Евро", "99"),
        ]
        .into_iter()
        .enumerate()
        {
            let r = record(&[
                ("source_id", &format!("{date} {code}")),
                ("rate_date", date),
                ("currency", code),
                ("rate", rate),
            ]);
            m.push(&r, &format!("rates.csv:{}", i + 2), &r);
        }
        let (batch, q) = m.finish().unwrap();
        let rates = batch.column_by_name("rate").unwrap().as_primitive::<Decimal128Type>();
        // Ten decimals: 91.2525 is 912525000000, 0.00551234 is 55123400.
        assert_eq!(rates.values().to_vec(), vec![912_525_000_000, 55_123_400]);
        let day = batch
            .column_by_name("rate_date")
            .unwrap()
            .as_primitive::<dealhouse_warehouse::datafusion::arrow::datatypes::Date32Type>();
        let expected =
            (NaiveDate::from_ymd_opt(2026, 3, 3).unwrap() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days();
        assert_eq!(i64::from(day.value(0)), expected);
        let reasons: Vec<&str> = q.iter().map(|q| q.reason.as_str()).collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons[0].contains("column `rate`") && reasons[0].contains("positive"), "{}", reasons[0]);
        assert!(reasons[1].contains("positive"), "{}", reasons[1]);
        assert!(reasons[2].contains("`Евро` is not an ISO 4217"), "{}", reasons[2]);
    }
}
