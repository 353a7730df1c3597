//! Currencies end to end through `sync_project` and the models: the README's rates source (the
//! `[sources.cbr]` block of "Currencies", read from README.md itself so the documented example
//! cannot rot) loads a central-bank CSV into `fx_rates`, a deals file in several currencies keeps
//! each deal's own money, and `stg_deal` converts it. Expected values are computed by hand.

mod common;

use common::{env, source};
use dealhouse_tests::project::Org;
use dealhouse_warehouse::models;

/// The ```toml block of README.md's "Currencies" section.
fn readme_rates_example() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme.split("### Currencies").nth(1).expect("README has a Currencies section");
    let block = section.split("```toml\n").nth(1).expect("with a toml example");
    block.split("```").next().unwrap().to_string()
}

#[tokio::test]
async fn the_readme_rates_source_loads_and_deals_convert_with_it() {
    let org = Org::new().holding("center", "Центр").branch("msk", "center", "Москва", "Europe/Moscow").toml();
    let example = readme_rates_example();
    assert!(example.contains("[sources.cbr]") && example.contains("table = \"fx_rates\""), "{example}");
    let toml = format!(
        r#"{org}
[sources.erp]
kind = "csv"
path = "deals.csv"
table = "deals"
time_zone = "Europe/Moscow"
currency = "EUR"

[sources.erp.columns]
source_id = "id"
branch_id = "=msk"
pipeline = "=0"
stage = "=new"
source_stage = "=new"
status = "=open"
amount = "amount"
currency = "currency"
created_at = "created"
updated_at = "created"

{example}"#
    );
    let e = env(&toml);
    // Rates per one unit, as the example's comments say; the last two rows are bad.
    e.write(
        "rates/cbr.csv",
        "Дата;Код;Курс\n27.02.2026;USD;90,5\n03.03.2026;USD;91,2525\n03.03.2026;usd;1\n03.03.2026;EUR;0\n".as_bytes(),
    );
    // d1 dollars (created 03-03 in Moscow), d2 no currency given (the source's EUR, no EUR rate),
    // d3 roubles, the reporting currency.
    e.write(
        "deals.csv",
        b"id,amount,currency,created\nd1,100.10,USD,2026-03-03 10:00:00\nd2,50.00,,2026-03-03 10:00:00\nd3,7.00,RUB,2026-03-03 10:00:00\n",
    );
    let report = e.sync().await;
    assert_eq!(source(&report, "cbr").error, None, "{report:?}");
    assert_eq!(
        e.rows("select currency, rate_date, rate from fx_rates order by rate_date").await,
        [["USD", "2026-02-27", "90.5000000000"], ["USD", "2026-03-03", "91.2525000000"]]
    );
    let reasons = e.rows("select location, reason from quarantine where source_system = 'cbr' order by location").await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[0][0].ends_with("cbr.csv:4") && reasons[0][1].contains("`usd` is not an ISO 4217"), "{reasons:?}");
    assert!(reasons[1][0].ends_with("cbr.csv:5") && reasons[1][1].contains("must be positive"), "{reasons:?}");
    assert_eq!(
        e.rows("select source_id, currency, amount from deals order by source_id").await,
        [["d1", "USD", "100.10"], ["d2", "EUR", "50.00"], ["d3", "RUB", "7.00"]]
    );

    let all = models::load_models(None).unwrap();
    let runs = models::run(&e.warehouse, &all, None, |_| {}).await.unwrap();
    assert!(runs.iter().all(|r| r.result.is_ok()), "{runs:?}");
    // d1: 100.10 * 91.2525 (03-03's rate) = 9134.37525 -> 9134.38.
    let rows = e.rows("select deal_id, amount, fx_rate_date, amount_null_reason from stg_deal order by deal_id").await;
    assert_eq!(rows[0], ["erp:d1", "9134.38", "2026-03-03", "NULL"]);
    assert_eq!(rows[1][..3], ["erp:d2", "NULL", "NULL"]);
    assert!(rows[1][3].starts_with("no EUR rate on or before 2026-03-03"), "{}", rows[1][3]);
    assert_eq!(rows[2], ["erp:d3", "7.00", "NULL", "NULL"]);
}
