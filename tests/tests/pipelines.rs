//! A second sales process, end to end: a demo company (one Bitrix24 pipeline) plus a CSV of venue
//! rentals (their own pipeline), synced and built as a user does, then the funnel page in a real
//! headless Chromium. The funnel shows the main pipeline (the one with the most deals) by default,
//! never the two summed; the pipeline picker switches to the other one or to both, the URL keeps
//! the choice, and the API's funnel and dimensions agree with `dealhouse query`.

use dealhouse_tests::http::get_json;
use dealhouse_tests::webdriver::Browser;
use dealhouse_tests::{dealhouse_ok, query_value, scratch, serve};
use serde_json::json;

fn reached_new(b: &Browser) -> String {
    b.js(
        "const e = document.querySelector(\"#panel-funnel li[data-stage='new'] .stage-deals\"); \
         return e ? e.getAttribute('data-value') : null",
        json!([]),
    )
    .as_str()
    .expect("the funnel's `new` step")
    .to_string()
}

/// Venue rentals: 6 deals created in March 2026, 2 won, 1 lost, 3 open.
const RENTALS: &str = "\
id,title,stage,status,amount,created,updated
r1,Hall A,won,won,150000.00,2026-03-02 10:00,2026-03-09 10:00
r2,Hall B,won,won,90000.00,2026-03-03 10:00,2026-03-10 10:00
r3,Foyer,lost,lost,20000.00,2026-03-04 10:00,2026-03-05 10:00
r4,Stage,proposal,open,70000.00,2026-03-05 10:00,2026-03-06 10:00
r5,Terrace,new,open,30000.00,2026-03-06 10:00,2026-03-06 10:00
r6,Club,contact,open,45000.00,2026-03-07 10:00,2026-03-08 10:00
";

const RENTALS_SOURCE: &str = r#"
[sources.rentals]
kind = "csv"
path = "rentals.csv"
table = "deals"
time_zone = "Europe/Moscow"

[sources.rentals.columns]
source_id = "id"
title = "title"
pipeline = "=rentals"
stage = "stage"
source_stage = "stage"
status = "status"
amount = "amount"
created_at = "created"
updated_at = "updated"
"#;

#[test]
fn a_second_pipeline_is_its_own_funnel_and_the_main_one_is_the_default() {
    let tmp = scratch();
    let dir = tmp.path().join("demo");
    let project = dir.to_str().expect("a UTF-8 path");
    dealhouse_ok(&["demo", project, "--seed", "11", "--weeks", "8", "--as-of", "2026-03-20", "--no-serve"]);
    std::fs::write(dir.join("rentals.csv"), RENTALS).unwrap();
    let config = dir.join("dealhouse.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(RENTALS_SOURCE);
    std::fs::write(&config, text).unwrap();
    dealhouse_ok(&["-C", project, "sync", "rentals"]);
    dealhouse_ok(&["-C", project, "build"]);

    let main = query_value(
        project,
        "select count(*) from fct_deal where pipeline = '0' and created_month = date '2026-03-01'",
    );
    let rentals = query_value(
        project,
        "select count(*) from fct_deal where pipeline = 'rentals' and created_month = date '2026-03-01'",
    );
    let both = query_value(project, "select count(*) from fct_deal where created_month = date '2026-03-01'");
    assert_eq!(rentals, "6", "the rentals file loads whole");
    assert!(main.parse::<u64>().unwrap() > 6, "the CRM's pipeline is the main one: {main}");

    let server = serve(project);
    // The API: pipelines listed main first; the funnel sums them only without `pipeline`.
    let dims = get_json(&server.1, "/api/v1/dimensions");
    assert_eq!(dims["pipelines"][0]["pipeline"], "0", "{dims}");
    assert_eq!(dims["pipelines"][1]["pipeline"], "rentals", "{dims}");
    let new_of = |query: &str| {
        let f = get_json(&server.1, &format!("/api/v1/funnel?from=2026-03&to=2026-03{query}"));
        f["rows"][0]["deals_reached"].to_string()
    };
    assert_eq!(new_of("&pipeline=0"), main);
    assert_eq!(new_of("&pipeline=rentals"), rentals);
    assert_eq!(new_of(""), both);
    // Each pipeline's open deals are weighted by its own stages' odds: both closed rentals that
    // reached proposal were won (r3 was lost from new), so the open proposal counts in full,
    // where the CRM's odds would cut it.
    let forecast = get_json(&server.1, "/api/v1/pipeline?pipeline=rentals");
    let proposal = forecast["rows"].as_array().unwrap().iter().find(|r| r["stage"] == "proposal").unwrap().clone();
    assert_eq!(proposal["weighted_amount"], "70000.00", "{forecast}");

    let base = format!("http://{}/", server.1);
    let b = Browser::start(1440, 900);
    b.goto(&format!("{base}#/funnel?from=2026-03&to=2026-03"));
    let seq = b.rendered(0, "funnel");
    // The default is the main pipeline, and the picker says so.
    assert_eq!(reached_new(&b), main, "the funnel shows the main pipeline, not both summed");
    assert_eq!(b.js("return document.querySelector('#f-pipeline').value", json!([])), json!("0"));
    // The other pipeline, through the picker: the URL keeps it.
    b.click("#f-pipeline option[value='rentals']");
    let seq = b.rendered(seq, "funnel of rentals");
    assert_eq!(reached_new(&b), rentals);
    let hash = b.js("return location.hash", json!([])).as_str().unwrap().to_string();
    assert!(hash.contains("pipeline=rentals"), "{hash}");
    let shots = std::env::current_exe().unwrap().ancestors().nth(3).unwrap().join("screenshots");
    b.screenshot(&shots.join("funnel-second-pipeline.png"));
    // Both summed, only when asked.
    b.click("#f-pipeline option[value='*']");
    b.rendered(seq, "funnel of every pipeline");
    assert_eq!(reached_new(&b), both);
    // A bookmark restores the choice.
    b.goto(&format!("{base}?again=1{hash}"));
    b.rendered(0, "bookmarked rentals funnel");
    assert_eq!(reached_new(&b), rentals);
    assert_eq!(b.js("return document.querySelector('#f-pipeline').value", json!([])), json!("rentals"));
}
