//! The server as a client sees it: health, the dashboards page, read-only SQL whose figures equal
//! `dealhouse query`, refusals as JSON errors.

use dealhouse_tests::http::http;
use dealhouse_tests::{dealhouse_ok, scratch, serve};
use serde_json::json;

#[test]
fn serves_health_page_and_sql_matching_the_cli() {
    let tmp = scratch();
    let dir = tmp.path().join("d");
    let d = dir.to_str().unwrap();
    dealhouse_ok(&["demo", d, "--seed", "3", "--weeks", "6", "--as-of", "2026-11-23", "--no-serve"]);
    let cli = dealhouse_ok(&[
        "-C",
        d,
        "query",
        "--format",
        "csv",
        "select count(*) as n, sum(amount) as a from deals where status = 'won'",
    ]);
    let expected: Vec<&str> = cli.lines().nth(1).expect("a row").split(',').collect();
    // Six weeks of a demo company close deals; a zero here would make the comparison below vacuous.
    assert!(expected[0].parse::<i64>().expect("a count") > 0, "no won deals in the demo: {cli}");

    let server = serve(d);
    assert_eq!(http(&server.1, "GET", "/healthz", None, &[]).0, 200);
    let (status, page) = http(&server.1, "GET", "/", None, &[]);
    assert_eq!(status, 200);
    assert!(page.contains("/assets/app.js"));

    let query = json!({ "sql": "select count(*) as n, sum(amount) as a from deals where status = 'won'" });
    let (status, body) = http(&server.1, "POST", "/api/v1/sql", Some(&query), &[]);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["rows"][0]["n"].to_string(), expected[0]);
    // Money arrives as an exact decimal string, equal to the CLI's figure.
    assert_eq!(v["rows"][0]["a"].as_str(), Some(expected[1]));

    let (status, body) = http(&server.1, "POST", "/api/v1/sql", Some(&json!({ "sql": "delete from deals" })), &[]);
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json error body");
    assert_eq!(v["code"], "bad_sql");
}
