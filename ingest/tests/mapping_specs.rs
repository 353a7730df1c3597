//! Mapping what real exports contain: fallbacks in column specs, a default in `values`, row
//! filters (`where`) for files, the same specs over a SQLite query's result columns, and
//! `[vocabularies]` extending the client kinds. Each change of the mapping reads the unchanged
//! file (or the quarantined rows) again, through the mapping fingerprint. Expected values are
//! worked out by hand in the comments.

mod common;

use common::{Env, env, source};
use dealhouse_ingest::sync::{SyncReport, TableReport};
use dealhouse_tests::project::Org;

fn org() -> String {
    Org::new().holding("center", "Центр").branch("msk", "center", "Москва", "Europe/Moscow").toml()
}

/// A CRM export in the shape of public sales-pipeline data sets: open deals have no dates at all
/// (D2) or only an engage date (D3); a third pipeline (Retail) belongs to another process.
const PIPELINE: &str = "opportunity_id,pipeline,deal_stage,engage_date,close_date\n\
    D1,Sales,Won,2017-01-05,2017-03-01\n\
    D2,Sales,Prospecting,,\n\
    D3,B2B,Engaging,2017-02-10,\n\
    D4,Retail,Won,2017-01-20,2017-02-02\n\
    D5,Sales,Lost,2017-01-07,2017-01-30\n";

/// The deals source with `dates` (created_at and updated_at specs), the `status` value map and
/// a `where` line.
fn deals_toml(dates: &str, status: &str, filter: &str) -> String {
    let org = org();
    format!(
        r#"{org}
[sources.crm_export]
kind = "csv"
path = "exports/sales_pipeline.csv"
table = "deals"
{filter}

[sources.crm_export.columns]
source_id = "opportunity_id"
pipeline = "pipeline"
stage = "deal_stage"
source_stage = "deal_stage"
status = "deal_stage"
{dates}

[sources.crm_export.values]
stage = {{ Prospecting = "new", Engaging = "contact", Won = "won", Lost = "lost" }}
status = {status}
"#
    )
}

const WITH_DEFAULT: &str = r#"{ Won = "won", Lost = "lost", "*" = "open" }"#;

fn table<'a>(report: &'a SyncReport, name: &str) -> &'a TableReport {
    let s = source(report, name);
    assert_eq!(s.error, None, "{report:?}");
    &s.tables[0]
}

async fn deals(e: &Env) -> Vec<Vec<String>> {
    e.rows("select source_id, stage, status, created_at, updated_at from deals order by source_id").await
}

#[tokio::test]
async fn fallbacks_load_an_open_deal_without_any_date() {
    let single = "created_at = \"engage_date\"\nupdated_at = \"engage_date\"";
    let mut e = env(&deals_toml(single, WITH_DEFAULT, ""));
    e.write("exports/sales_pipeline.csv", PIPELINE.as_bytes());
    let t = table(&e.sync().await, "crm_export").clone();
    // D2 has no engage date: quarantined, the four others load.
    assert_eq!((t.read, t.quarantined, t.skipped), (4, 1, 0));
    let q = e.rows("select location, reason from quarantine").await;
    assert_eq!(q[0][0], "exports/sales_pipeline.csv:3");
    assert!(q[0][1].contains("`created_at` is missing or empty"), "{q:?}");

    // Fallbacks without a constant: the unchanged file is read again (the mapping changed) and
    // D2 fails again, the reason naming every alternative tried.
    let two = "created_at = [\"{engage_date}\", \"{close_date}\"]\nupdated_at = [\"{close_date}\", \"{engage_date}\"]";
    e.reconfigure(&deals_toml(two, WITH_DEFAULT, ""));
    let t = table(&e.sync().await, "crm_export").clone();
    assert_eq!((t.read, t.quarantined), (4, 1));
    let q = e.rows("select reason from quarantine").await;
    assert_eq!(q.len(), 1);
    assert!(
        q[0][0].contains("`created_at` is empty in every alternative tried ([\"{engage_date}\", \"{close_date}\"])")
            && q[0][0].contains("[sources.crm_export.columns] created_at"),
        "{q:?}"
    );

    // A constant last: D2 loads with it and leaves the quarantine.
    let full = "created_at = [\"{engage_date}\", \"{close_date}\", \"=2017-01-01\"]\n\
                updated_at = [\"{close_date}\", \"{engage_date}\", \"=2017-01-01\"]";
    e.reconfigure(&deals_toml(full, WITH_DEFAULT, ""));
    let t = table(&e.sync().await, "crm_export").clone();
    assert_eq!((t.read, t.quarantined, t.cleared), (5, 0, 1));
    assert_eq!(e.count("select count(*) from quarantine").await, 0);
    // Bare dates are midday in the source's zone (UTC here). D1: engage 01-05, closed 03-01;
    // D2: nothing, the constant; D3: engage only, so updated falls back to it.
    assert_eq!(
        deals(&e).await,
        [
            ["D1", "won", "won", "2017-01-05T12:00:00Z", "2017-03-01T12:00:00Z"],
            ["D2", "new", "open", "2017-01-01T12:00:00Z", "2017-01-01T12:00:00Z"],
            ["D3", "contact", "open", "2017-02-10T12:00:00Z", "2017-02-10T12:00:00Z"],
            ["D4", "won", "won", "2017-01-20T12:00:00Z", "2017-02-02T12:00:00Z"],
            ["D5", "lost", "lost", "2017-01-07T12:00:00Z", "2017-01-30T12:00:00Z"],
        ]
    );
}

const DATES: &str = "created_at = [\"{engage_date}\", \"{close_date}\", \"=2017-01-01\"]\n\
                     updated_at = [\"{close_date}\", \"{engage_date}\", \"=2017-01-01\"]";

#[tokio::test]
async fn a_values_default_maps_every_value_not_listed() {
    let mut e = env(&deals_toml(DATES, r#"{ Won = "won", Lost = "lost" }"#, ""));
    e.write("exports/sales_pipeline.csv", PIPELINE.as_bytes());
    let t = table(&e.sync().await, "crm_export").clone();
    // Prospecting (D2) and Engaging (D3) are not in the status map: quarantined as before.
    assert_eq!((t.read, t.quarantined), (3, 2));
    let q = e.rows("select reason from quarantine order by location").await;
    assert!(q[0][0].contains("value `Prospecting` is not in [sources.crm_export.values.status]"), "{q:?}");
    assert!(q[0][0].contains("`\"*\" = \"...\"`"), "the reason offers the default: {q:?}");

    e.reconfigure(&deals_toml(DATES, WITH_DEFAULT, ""));
    let t = table(&e.sync().await, "crm_export").clone();
    assert_eq!((t.quarantined, t.cleared), (0, 2));
    let status: Vec<[String; 2]> = deals(&e).await.into_iter().map(|r| [r[0].clone(), r[2].clone()]).collect();
    assert_eq!(
        status,
        [["D1", "won"], ["D2", "open"], ["D3", "open"], ["D4", "won"], ["D5", "lost"]].map(|r| r.map(String::from))
    );
}

#[tokio::test]
async fn where_keeps_the_matching_rows_and_counts_the_others_as_skipped() {
    let mut e = env(&deals_toml(DATES, WITH_DEFAULT, "where = { pipeline = [\"Sales\"] }"));
    e.write("exports/sales_pipeline.csv", PIPELINE.as_bytes());
    let t = table(&e.sync().await, "crm_export").clone();
    // D3 (B2B) and D4 (Retail) are left out: skipped, not quarantined.
    assert_eq!((t.read, t.quarantined, t.skipped), (3, 0, 2));
    assert_eq!(e.rows("select source_id from deals order by source_id").await, [["D1"], ["D2"], ["D5"]]);
    assert_eq!(e.count("select count(*) from quarantine").await, 0);
    // Nothing changed: the file is not read again, nothing skipped.
    assert_eq!(table(&e.sync().await, "crm_export").skipped, 0);

    // A wider filter is another mapping: the unchanged file is read again and D3 joins.
    e.reconfigure(&deals_toml(DATES, WITH_DEFAULT, "where = { pipeline = [\"Sales\", \"B2B\"] }"));
    let t = table(&e.sync().await, "crm_export").clone();
    assert_eq!((t.read, t.inserted, t.skipped), (4, 1, 1));
    assert_eq!(e.rows("select source_id from deals order by source_id").await, [["D1"], ["D2"], ["D3"], ["D5"]]);

    // A filter on a column the file lacks refuses the file, naming it.
    e.reconfigure(&deals_toml(DATES, WITH_DEFAULT, "where = { funnel = [\"Sales\"] }"));
    let report = e.sync().await;
    let error = source(&report, "crm_export").error.clone().expect("the file is refused");
    assert!(error.contains("missing column `funnel`") && error.contains("[sources.crm_export.columns]"), "{error}");
}

fn clients_toml(vocabularies: &str) -> String {
    let org = org();
    format!(
        r#"{org}
{vocabularies}
[sources.companies]
kind = "csv"
path = "companies.csv"
table = "clients"

[sources.companies.columns]
source_id = "id"
name = "name"
kind = "kind"
"#
    )
}

#[tokio::test]
async fn configured_client_kinds_load_and_unknown_ones_say_where_to_add_them() {
    let mut e = env(&clients_toml(""));
    e.write("companies.csv", "id,name,kind\nC1,Arena,venue\nC2,Big Promo,promoter-agency\n".as_bytes());
    let t = table(&e.sync().await, "companies").clone();
    assert_eq!((t.read, t.quarantined), (1, 1));
    let q = e.rows("select location, reason from quarantine").await;
    assert_eq!(q[0][0], "companies.csv:3");
    assert!(
        q[0][1].contains("unknown client kind `promoter-agency`")
            && q[0][1].contains("promoter, venue, theatre, sports_club, agency, other")
            && q[0][1].contains("`client_kind` in [vocabularies]"),
        "{q:?}"
    );

    // The company's own kind configured: the unchanged file is read again and C2 loads.
    e.reconfigure(&clients_toml("[vocabularies]\nclient_kind = [\"promoter-agency\"]\n"));
    let t = table(&e.sync().await, "companies").clone();
    assert_eq!((t.read, t.quarantined, t.cleared), (2, 0, 1));
    assert_eq!(
        e.rows("select client_id, kind from clients order by client_id").await,
        [["companies:C1", "venue"], ["companies:C2", "promoter-agency"]]
    );
}

fn sqlite_toml() -> String {
    let org = org();
    format!(
        r#"{org}
[sources.legacy]
kind = "sqlite"
path = "legacy.db"

[sources.legacy.tables.deals]
query = "select id as source_id, pipeline, stage as source_stage, engaged, closed from deals"

[sources.legacy.tables.deals.columns]
stage = "source_stage"
status = "source_stage"
created_at = ["{{engaged}}", "{{closed}}", "=2020-01-01"]
updated_at = ["{{closed}}", "{{engaged}}", "=2020-01-01"]

[sources.legacy.tables.deals.values]
stage = {{ "Новая" = "new", "Успех" = "won" }}
status = {{ "Успех" = "won", "*" = "open" }}
"#
    )
}

#[tokio::test]
async fn sql_tables_take_the_same_columns_and_values_specs() {
    let e = env(&sqlite_toml());
    let conn = rusqlite::Connection::open(e.path("legacy.db")).unwrap();
    conn.execute_batch(
        "create table deals (id integer primary key, pipeline text, stage text, engaged text, closed text);
         insert into deals values
           (1, 'main', 'Успех', '2024-05-02 10:00:00', '2024-06-01 15:30:00'),
           (2, 'main', 'Новая', null, null),
           (3, 'main', 'Черновик', '2024-05-03 09:00:00', null);",
    )
    .unwrap();
    let t = table(&e.sync().await, "legacy").clone();
    // Row 3's stage `Черновик` has no entry in the stage map (which has no default): quarantined
    // at its key; rows 1 and 2 load, 2 through the constant date and the status default.
    assert_eq!((t.read, t.quarantined), (2, 1));
    assert_eq!(
        deals(&e).await,
        [
            ["1", "won", "won", "2024-05-02T10:00:00Z", "2024-06-01T15:30:00Z"],
            ["2", "new", "open", "2020-01-01T12:00:00Z", "2020-01-01T12:00:00Z"],
        ]
    );
    let q = e.rows("select source_id, reason from quarantine").await;
    assert_eq!(q[0][0], "sqlite:deals:source_id=3");
    assert!(q[0][1].contains("`Черновик` is not in [sources.legacy.tables.deals.values.stage]"), "{q:?}");
}
