//! Honest periods over the demo: a month to date compared like for like (`through`), rates
//! without a base and immature cohorts null with their reason (issue 11, items 5-7).

use chrono::{Datelike, Months, NaiveDate};

use super::*;

/// Money or nothing: an exact decimal string, `0.00` for null (the mart has no row then).
fn rub(v: &Value) -> String {
    if v.is_null() { "0.00".into() } else { money(v) }
}

/// Won deals and their amount closed on local days `from..=to`, counted by hand from fct_deal.
async fn won_between(app: &Router, from: NaiveDate, to: NaiveDate) -> (i64, Value) {
    let r = sql(
        app,
        &format!(
            "select count(*) as n, sum(amount) as amount from fct_deal
             where status = 'won' and closed_date between date '{from}' and date '{to}'"
        ),
    )
    .await;
    (int(&r[0]["n"]), r[0]["amount"].clone())
}

#[tokio::test]
async fn a_month_to_date_is_compared_with_the_same_days_of_the_other_month() {
    let app = app().await;
    let dims = get(&app, "/api/v1/dimensions").await;
    let today: NaiveDate = key(&dims["reference_date"]).parse().expect("the reference date is a day");
    let first = today.with_day(1).expect("a first day");
    let last_month = first - Months::new(1);
    assert_eq!(key(&dims["last_complete_month"]), last_month.format("%Y-%m").to_string());
    let same_day_before = today - Months::new(1);
    let month = |d: NaiveDate| d.format("%Y-%m").to_string();

    let now = get(
        &app,
        &format!(
            "/api/v1/metrics?measures=deals_won,won_amount,new_clients&from={m}&to={m}&through={today}",
            m = month(today)
        ),
    )
    .await;
    let (n, amount) = won_between(&app, first, today).await;
    assert_eq!(int(&rows(&now)[0]["deals_won"]), n);
    assert_eq!(rub(&rows(&now)[0]["won_amount"]), rub(&amount));
    assert_eq!(now["through"], json!(today.to_string()));
    // Client figures are monthly: a month to date cannot cut them, and the answer says so.
    assert_eq!(now["not_cut"], json!(["new_clients"]));

    let m = month(last_month);
    let before =
        get(&app, &format!("/api/v1/metrics?measures=deals_won,won_amount&from={m}&to={m}&through={same_day_before}"))
            .await;
    let whole = get(&app, &format!("/api/v1/metrics?measures=deals_won,won_amount&from={m}&to={m}")).await;
    let (n_before, amount_before) = won_between(&app, last_month, same_day_before).await;
    assert_eq!(int(&rows(&before)[0]["deals_won"]), n_before);
    assert_eq!(rub(&rows(&before)[0]["won_amount"]), rub(&amount_before));
    assert_eq!(before["not_cut"], json!([]));
    // The cut matters: the whole previous month won more than its first days, which is what
    // made a month to date look like a collapse.
    assert!(int(&rows(&whole)[0]["deals_won"]) > n_before, "{whole} vs {before}");

    // By month, `through` also ends the series at its month and cuts every month's days.
    let v = get(&app, &format!("/api/v1/metrics?measures=deals_won&by=month&through={same_day_before}")).await;
    let last = rows(&v).last().expect("months");
    assert_eq!(key(&last["month"]), last_month.to_string());
    assert_eq!(int(&last["deals_won"]), n_before);

    let (status, e) = call(&app, "GET", "/api/v1/metrics?measures=deals_won&through=2026-13-01", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("through"), "{e}");
}

#[tokio::test]
async fn client_rates_without_a_base_are_null_with_the_reason() {
    let app = app().await;
    // The demo's history is six weeks: no month has the 12-month look-back before it.
    let v = get(&app, "/api/v1/metrics?measures=churn_rate,inflow_rate,new_clients,win_rate&by=month").await;
    let reasons = sql(
        &app,
        "select cast(month as varchar) as month, min(rates_null_reason) as reason from mart_client_monthly group by month",
    )
    .await;
    assert!(!reasons.is_empty());
    for e in &reasons {
        let r = rows(&v).iter().find(|r| r["month"] == e["month"]).expect("a row per month");
        assert!(key(&e["reason"]).starts_with("not enough history: "), "{e}");
        assert_eq!(r["churn_rate"], Value::Null, "{r}");
        assert_eq!(r["inflow_rate"], Value::Null, "{r}");
        assert_eq!(r["churn_rate_null_reason"], e["reason"]);
        assert_eq!(r["inflow_rate_null_reason"], e["reason"]);
        // Counts have no base to lack; they stay.
        assert!(r["new_clients"].is_i64(), "{r}");
    }
    // Over the whole history: null too (a sum over months without a base is no rate).
    let v = get(&app, "/api/v1/metrics?measures=churn_rate").await;
    assert_eq!(rows(&v)[0]["churn_rate"], Value::Null);
    assert!(key(&rows(&v)[0]["churn_rate_null_reason"]).starts_with("not enough history: 0 of 12 months"));
}

#[tokio::test]
async fn cohorts_carry_their_maturity_and_convert_within_the_window() {
    let app = app().await;
    let v = get(
        &app,
        "/api/v1/metrics?measures=conversion_within_window,cohort_open_share,cohort_age_days,cohort_mature,conversion_window_days,created_to_won&by=month",
    )
    .await;
    let e = sql(
        &app,
        "select cast(month as varchar) as month, sum(deals_reached) as created, sum(deals_open) as open,
            sum(deals_won_within_window) as within, bool_and(cohort_mature) as mature, min(cohort_age_days) as age,
            max(conversion_window_days) as window_days
         from mart_funnel_monthly where stage = 'new' group by month order by month",
    )
    .await;
    // Independently: the cohort's open deals from fct_deal.
    let open = sql(
        &app,
        "select cast(created_month as varchar) as month, count(case when status = 'open' then 1 end) as open, count(*) as n
         from fct_deal group by created_month",
    )
    .await;
    assert_eq!(rows(&v).len(), e.len());
    for e in &e {
        let r = rows(&v).iter().find(|r| r["month"] == e["month"]).expect("a row per cohort");
        let o = open.iter().find(|o| o["month"] == e["month"]).expect("deals of the cohort");
        assert_eq!(int(&o["n"]), int(&e["created"]));
        assert!(close(float(&r["cohort_open_share"]), int(&o["open"]) as f64 / int(&o["n"]) as f64), "{r}");
        assert_eq!(r["cohort_mature"], e["mature"]);
        assert_eq!(int(&r["cohort_age_days"]), int(&e["age"]));
        assert_eq!(int(&r["conversion_window_days"]), int(&e["window_days"]));
        if r["cohort_mature"] == json!(true) {
            assert!(close(float(&r["conversion_within_window"]), int(&e["within"]) as f64 / int(&e["created"]) as f64));
            assert_eq!(r["conversion_within_window_null_reason"], Value::Null);
        } else {
            assert_eq!(r["conversion_within_window"], Value::Null, "{r}");
            assert!(key(&r["conversion_within_window_null_reason"]).starts_with("immature cohort"), "{r}");
        }
    }
    // The reference month's cohort is never mature: its youngest deals are days old.
    assert_eq!(rows(&v).last().expect("cohorts")["cohort_mature"], json!(false));
    assert_eq!(v["measures"][3]["unit"], "flag");
}
