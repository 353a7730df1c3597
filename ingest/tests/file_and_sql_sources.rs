//! End-to-end tests of the CSV, XLSX and SQLite connectors through `sync_project`: a project
//! built from a small TOML in a temp dir, a local warehouse, queries through `QuerySession`.
//! Expected values are computed by hand in the comments next to them.

mod common;

use std::path::Path;

use common::{Env, env, source};
use dealhouse_tests::project::Org;

/// Moscow (1C code 12; `bad` maps onto the same code) and Vladivostok (legacy and targets `VVO`).
fn org() -> String {
    Org::new()
        .holding("center", "Центр")
        .branch("msk", "center", "Москва", "Europe/Moscow")
        .codes(&[("onec", "12"), ("bad", "12")])
        .branch("vvo", "center", "Владивосток", "Asia/Vladivostok")
        .codes(&[("legacy", "VVO"), ("targets", "VVO")])
        .toml()
}

fn cp1251(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

mod files {
    use super::*;

    /// A 1C-style export: `;`, CRLF, quoted fields, `1 234,56` money (one with no-break spaces),
    /// `31.12.2024` dates in Moscow time.
    const ONEC_CSV: &str = "Номер;Дата;Контрагент;Сумма;Комиссия;Филиал;Статус\r\n\
        Д-001;31.12.2024;\"ООО \"\"Ромашка\"\"\";1 234,56;123,46;12;Оплачен\r\n\
        Д-002;15.01.2025;ИП Петров;1\u{a0}234\u{a0}567,8;0;12;Отменён\r\n\
        Д-003;01.02.2025;\"Театр; малая сцена\";-1234,5;;12;В работе\r\n";

    fn onec_toml(encoding: Option<&str>, amount_header: &str) -> String {
        let encoding = encoding.map(|e| format!("encoding = \"{e}\"\n")).unwrap_or_default();
        let org = org();
        format!(
            r#"{org}
[sources.onec]
kind = "csv"
path = "exports/deals_1c.csv"
table = "deals"
{encoding}delimiter = ";"
decimal_comma = true
date_format = "%d.%m.%Y"
time_zone = "Europe/Moscow"

[sources.onec.columns]
source_id = "Номер"
title = "Контрагент"
created_at = "Дата"
updated_at = "Дата"
amount = "{amount_header}"
commission = "Комиссия"
branch_code = "Филиал"
pipeline = "=1c"
stage = "Статус"
source_stage = "Статус"
status = "Статус"

[sources.onec.values]
stage = {{ "Оплачен" = "won", "Отменён" = "lost", "В работе" = "negotiation" }}
status = {{ "Оплачен" = "won", "Отменён" = "lost", "В работе" = "open" }}
"#
        )
    }

    async fn assert_onec_loaded(e: &Env) {
        let report = e.sync().await;
        let onec = source(&report, "onec");
        assert_eq!(onec.error, None);
        assert_eq!((onec.tables[0].read, onec.tables[0].quarantined), (3, 0));
        // 1 234,56 -> 123456 kopecks; 1 234 567,8 -> 123456780; -1234,5 -> -123450.
        assert_eq!(
            e.scaled("select amount from deals order by source_id").await,
            vec![Some(123_456), Some(123_456_780), Some(-123_450)]
        );
        assert_eq!(
            e.scaled("select commission from deals order by source_id").await,
            vec![Some(12_346), Some(0), None]
        );
        // A bare date is midday in Moscow (UTC+3): 09:00 UTC the same day.
        assert_eq!(
            e.rows("select deal_id, title, branch_id, stage, status, source_stage, created_at from deals order by source_id")
                .await,
            vec![
                vec!["onec:Д-001", "ООО \"Ромашка\"", "msk", "won", "won", "Оплачен", "2024-12-31T09:00:00Z"],
                vec!["onec:Д-002", "ИП Петров", "msk", "lost", "lost", "Отменён", "2025-01-15T09:00:00Z"],
                vec!["onec:Д-003", "Театр; малая сцена", "msk", "negotiation", "open", "В работе", "2025-02-01T09:00:00Z"],
            ]
        );
    }

    #[tokio::test]
    async fn files_cp1251_csv_loads_exact_money() {
        let e = env(&onec_toml(Some("windows-1251"), "Сумма"));
        e.write("exports/deals_1c.csv", &cp1251(ONEC_CSV));
        assert_onec_loaded(&e).await;
    }

    #[tokio::test]
    async fn files_cp1251_csv_is_sniffed_without_encoding() {
        let e = env(&onec_toml(None, "Сумма"));
        e.write("exports/deals_1c.csv", &cp1251(ONEC_CSV));
        assert_onec_loaded(&e).await;
    }

    #[tokio::test]
    async fn files_wrong_encoding_is_refused_naming_file_and_line() {
        let org = org();
        let toml = format!(
            r#"{org}
[sources.onec]
kind = "csv"
path = "exports/deals_1c.csv"
table = "deals"
encoding = "utf-8"

[sources.onec.columns]
source_id = "id"
title = "title"
created_at = "date"
updated_at = "date"
pipeline = "=1c"
stage = "=new"
source_stage = "=new"
status = "=open"
"#
        );
        let e = env(&toml);
        // ASCII until line 3, which holds cp1251 Cyrillic.
        e.write("exports/deals_1c.csv", &cp1251("id,title,date\n1,ok,2025-01-01\n2,Театр,2025-01-02\n"));
        let report = e.sync().await;
        let error = source(&report, "onec").error.clone().unwrap();
        assert!(error.contains("deals_1c.csv"), "{error}");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("windows-1251"), "{error}");
        assert_eq!(e.count("select count(*) from deals").await, 0);
        assert_eq!(e.count("select count(*) from quarantine").await, 0);
    }

    #[tokio::test]
    async fn files_missing_mapped_header_refuses_the_whole_file() {
        let e = env(&onec_toml(Some("windows-1251"), "Сумма, руб"));
        e.write("exports/deals_1c.csv", &cp1251(ONEC_CSV));
        let report = e.sync().await;
        let error = source(&report, "onec").error.clone().unwrap();
        assert!(error.contains("deals_1c.csv"), "{error}");
        assert!(error.contains("`Сумма, руб`"), "names the missing header: {error}");
        assert!(error.contains("`Сумма`") && error.contains("`Номер`"), "lists the headers present: {error}");
        assert_eq!(e.count("select count(*) from deals").await, 0);
        assert_eq!(e.count("select count(*) from quarantine").await, 0);
    }

    #[tokio::test]
    async fn files_bad_rows_are_quarantined_and_unchanged_files_skipped() {
        let org = org();
        let toml = format!(
            r#"{org}
[sources.bad]
kind = "csv"
path = "bad.csv"
table = "deals"
delimiter = ";"
decimal_comma = true
date_format = "%d.%m.%Y"

[sources.bad.columns]
source_id = "id"
created_at = "date"
updated_at = "date"
amount = "amount"
branch_code = "branch"
pipeline = "=1c"
stage = "=new"
source_stage = "=new"
status = "=open"
"#
        );
        let mut e = env(&toml);
        let content = "id;date;amount;branch\n\
                       A1;31.12.2024;100,50;12\n\
                       A2;32.13.2024;5,00;12\n\
                       A3;01.01.2025;10,555;12\n\
                       A4;02.01.2025;7;99\n\
                       A5;03.01.2025;1 000;12\n";
        e.write("bad.csv", content.as_bytes());
        let report = e.sync().await;
        let bad = source(&report, "bad");
        assert_eq!(bad.error, None);
        assert_eq!((bad.tables[0].read, bad.tables[0].inserted, bad.tables[0].quarantined), (2, 2, 3));
        assert_eq!(e.scaled("select amount from deals order by source_id").await, vec![Some(10_050), Some(100_000)]);
        let q = e.rows("select location, reason, source_id, entity from quarantine order by location").await;
        assert_eq!(q.len(), 3, "{q:?}");
        assert_eq!(q.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["bad.csv:3", "bad.csv:4", "bad.csv:5"]);
        assert!(
            q[0][1].contains("`created_at`") && q[0][1].contains("32.13.2024") && q[0][1].contains("%d.%m.%Y"),
            "{q:?}"
        );
        assert!(q[1][1].contains("`amount`") && q[1][1].contains("10,555") && q[1][1].contains("3 decimals"), "{q:?}");
        assert!(q[2][1].contains("`99`") && q[2][1].contains("codes"), "{q:?}");
        assert!(q.iter().all(|r| r[2] == r[0] && r[3] == "deals"));
        let raw = e.rows("select raw from quarantine where location = 'bad.csv:4'").await;
        let raw: serde_json::Value = serde_json::from_str(&raw[0][0]).unwrap();
        assert_eq!(raw, serde_json::json!({"id": "A3", "date": "01.01.2025", "amount": "10,555", "branch": "12"}));

        // The same bytes again: skipped by their hash, nothing read or added.
        let report = e.sync().await;
        let bad = source(&report, "bad");
        assert_eq!((bad.tables[0].read, bad.tables[0].inserted, bad.tables[0].quarantined), (0, 0, 0));
        assert_eq!(e.count("select count(*) from deals").await, 2);
        assert_eq!(e.count("select count(*) from quarantine").await, 3);

        // A changed file is read again whole; rows already there are merged, not duplicated.
        e.write("bad.csv", format!("{content}A6;04.01.2025;2,5;12\n").as_bytes());
        let report = e.sync().await;
        let bad = source(&report, "bad");
        assert_eq!((bad.tables[0].read, bad.tables[0].inserted, bad.tables[0].quarantined), (3, 1, 3));
        assert_eq!(e.count("select count(*) from deals").await, 3);
        assert_eq!(e.count("select count(*) from quarantine").await, 3);

        // Doing what the reason says (adding the code) re-reads the unchanged file: A4 now loads.
        e.reconfigure(
            &toml.replace("bad = \"12\"", "bad = \"99\"").replace("legacy = \"VVO\"", "legacy = \"VVO\", bad = \"12\""),
        );
        let report = e.sync().await;
        let bad = source(&report, "bad");
        assert_eq!((bad.tables[0].read, bad.tables[0].quarantined), (4, 2), "{report:?}");
        assert_eq!(
            e.rows("select source_id, branch_id from deals where source_id in ('A1', 'A4') order by source_id").await,
            vec![vec!["A1", "vvo"], vec!["A4", "msk"]]
        );
    }

    /// The Maven Analytics "CRM + Sales + Opportunities" files, mapped by config alone: two
    /// sources in one project whose ids line up (`teams:{sales_agent}`).
    #[tokio::test]
    async fn files_maven_crm_sales_opportunities_by_config_alone() {
        let org = Org::new()
            .holding("mv", "MavenTech")
            .branch("central", "mv", "Central", "America/Chicago")
            .city("Chicago")
            .codes(&[("teams", "Central")])
            .branch("west", "mv", "West", "America/Los_Angeles")
            .city("San Francisco")
            .codes(&[("teams", "West")])
            .toml();
        let toml = org
            + r#"
[sources.pipeline]
kind = "csv"
path = "maven/sales_pipeline.csv"
table = "deals"

[sources.pipeline.columns]
source_id = "opportunity_id"
title = "{product} for {account}"
client_id = "pipeline:{account}"
manager_id = "teams:{sales_agent}"
pipeline = "=maven"
stage = "deal_stage"
source_stage = "deal_stage"
status = "deal_stage"
amount = "close_value"
created_at = "engage_date"
updated_at = "engage_date"
closed_at = "close_date"

[sources.pipeline.values]
stage = { Won = "won", Lost = "lost", Engaging = "contact", Prospecting = "new" }
status = { Won = "won", Lost = "lost", Engaging = "open", Prospecting = "open" }

[sources.teams]
kind = "csv"
path = "maven/sales_teams.csv"
table = "managers"

[sources.teams.columns]
source_id = "sales_agent"
name = "sales_agent"
branch_code = "regional_office"
active = "=true"
"#;
        let e = env(&toml);
        e.write(
            "maven/sales_pipeline.csv",
            b"opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value\n\
              1C1I7A6R,Moses Frase,GTX Plus Basic,Cancity,Won,2016-10-20,2017-03-01,1054\n\
              Z063OYW0,Darcel Schlecht,GTXPro,Isdom,Won,2016-10-25,2017-03-11,4514\n\
              EC4QE1BX,Darcel Schlecht,MG Special,Cancity,Lost,2016-10-25,2017-03-07,0\n\
              MV1LWRNH,Zane Levy,GTX Basic,Codehow,Engaging,2016-10-25,,\n\
              PE84CX4O,Zane Levy,GTXPro,,Prospecting,,,\n",
        );
        e.write(
            "maven/sales_teams.csv",
            b"sales_agent,manager,regional_office\n\
              Moses Frase,Dustin Brinkmann,Central\n\
              Darcel Schlecht,Melvin Marxen,Central\n\
              Zane Levy,Summer Sewald,West\n",
        );
        let report = e.sync().await;
        assert!(report.ok(), "{report:?}");
        // The bare close dates are midday in the source's zone (UTC, none is set): 06:00 the same
        // day in Chicago, where midnight UTC would be 18:00 the day before (a close on 03-01 in
        // February).
        assert_eq!(
            e.rows(
                "select d.source_id, d.stage, d.status, d.client_id, d.title, m.name, m.branch_id, d.closed_at \
                    from deals d join managers m on d.manager_id = m.manager_id order by d.source_id"
            )
            .await,
            vec![
                vec![
                    "1C1I7A6R",
                    "won",
                    "won",
                    "pipeline:Cancity",
                    "GTX Plus Basic for Cancity",
                    "Moses Frase",
                    "central",
                    "2017-03-01T12:00:00Z"
                ],
                vec![
                    "EC4QE1BX",
                    "lost",
                    "lost",
                    "pipeline:Cancity",
                    "MG Special for Cancity",
                    "Darcel Schlecht",
                    "central",
                    "2017-03-07T12:00:00Z"
                ],
                vec![
                    "MV1LWRNH",
                    "contact",
                    "open",
                    "pipeline:Codehow",
                    "GTX Basic for Codehow",
                    "Zane Levy",
                    "west",
                    "NULL"
                ],
                vec![
                    "Z063OYW0",
                    "won",
                    "won",
                    "pipeline:Isdom",
                    "GTXPro for Isdom",
                    "Darcel Schlecht",
                    "central",
                    "2017-03-11T12:00:00Z"
                ],
            ]
        );
        assert_eq!(
            e.scaled("select amount from deals order by source_id").await,
            vec![Some(105_400), Some(0), None, Some(451_400)]
        );
        assert_eq!(
            e.rows("select manager_id, active from managers order by manager_id").await,
            vec![
                vec!["teams:Darcel Schlecht", "true"],
                vec!["teams:Moses Frase", "true"],
                vec!["teams:Zane Levy", "true"],
            ]
        );
        // Prospecting rows have no engage_date in this dataset: no creation time, so quarantined.
        let q = e.rows("select location, reason from quarantine").await;
        assert_eq!(q.len(), 1, "{q:?}");
        assert_eq!(q[0][0], "maven/sales_pipeline.csv:6");
        assert!(q[0][1].contains("`created_at`"), "{q:?}");
    }

    #[tokio::test]
    async fn files_xlsx_plans_with_excel_dates_and_russian_headers() {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
        let org = org();
        let toml = format!(
            r#"{org}
[sources.targets]
kind = "xlsx"
path = "plans.xlsx"
sheet = "Планы"
table = "plans"

[sources.targets.columns]
source_id = "{{Месяц}}/{{Филиал}}/{{ID менеджера}}/{{Показатель}}"
month = "Месяц"
branch_code = "Филиал"
manager_id = "ID менеджера"
metric = "Показатель"
target = "План"

[sources.targets.values]
metric = {{ "Выручка" = "won_amount", "Сделки" = "deals_won" }}
"#
        );
        let e = env(&toml);
        let mut wb = Workbook::new();
        wb.add_worksheet().set_name("Инструкция").unwrap().write_string(0, 0, "Заполните лист «Планы»").unwrap();
        let sheet = wb.add_worksheet();
        sheet.set_name("Планы").unwrap();
        let date = Format::new().set_num_format("dd.mm.yyyy");
        for (c, h) in ["Месяц", "Филиал", "ID менеджера", "Показатель", "План"].into_iter().enumerate()
        {
            sheet.write_string(0, c as u16, h).unwrap();
        }
        type PlanRow<'a> = ((u16, u8, u8), &'a str, &'a str, &'a str, f64);
        let rows: [PlanRow; 3] = [
            ((2025, 1, 1), "VVO", "", "Выручка", 1_500_000.5),
            ((2025, 1, 15), "VVO", "crm:17", "Сделки", 12.0),
            ((2025, 2, 1), "VVO", "", "Выручка", 2_000_000.0),
        ];
        for (i, ((y, m, d), branch, manager, metric, target)) in rows.into_iter().enumerate() {
            let r = i as u32 + 1;
            sheet.write_datetime_with_format(r, 0, ExcelDateTime::from_ymd(y, m, d).unwrap(), &date).unwrap();
            sheet.write_string(r, 1, branch).unwrap();
            if !manager.is_empty() {
                sheet.write_string(r, 2, manager).unwrap();
            }
            sheet.write_string(r, 3, metric).unwrap();
            sheet.write_number(r, 4, target).unwrap();
        }
        wb.save(e.path("plans.xlsx")).unwrap();

        let report = e.sync().await;
        assert!(report.ok(), "{report:?}");
        assert_eq!(e.count("select count(*) from quarantine").await, 0);
        assert_eq!(
            e.rows("select source_id, month, branch_id, manager_id, metric from plans order by source_id").await,
            vec![
                vec!["2025-01-01/VVO//Выручка", "2025-01-01", "vvo", "NULL", "won_amount"],
                vec!["2025-01-15/VVO/crm:17/Сделки", "2025-01-01", "vvo", "crm:17", "deals_won"],
                vec!["2025-02-01/VVO//Выручка", "2025-02-01", "vvo", "NULL", "won_amount"],
            ]
        );
        // 1 500 000,50 -> 150000050 kopecks; 12 -> 1200; 2 000 000 -> 200000000.
        assert_eq!(
            e.scaled("select target from plans order by source_id").await,
            vec![Some(150_000_050), Some(1_200), Some(200_000_000)]
        );
    }

    #[tokio::test]
    async fn files_xlsx_unknown_sheet_is_refused_listing_sheets() {
        let org = org();
        let toml = format!(
            "{org}\n[sources.targets]\nkind = \"xlsx\"\npath = \"plans.xlsx\"\nsheet = \"Plans\"\ntable = \"plans\"\n\n\
             [sources.targets.columns]\nsource_id = \"id\"\nmonth = \"m\"\nmetric = \"=calls\"\ntarget = \"t\"\n"
        );
        let e = env(&toml);
        let mut wb = rust_xlsxwriter::Workbook::new();
        wb.add_worksheet().set_name("Планы").unwrap().write_string(0, 0, "id").unwrap();
        wb.save(e.path("plans.xlsx")).unwrap();
        let report = e.sync().await;
        let error = source(&report, "targets").error.clone().unwrap();
        assert!(error.contains("plans.xlsx") && error.contains("`Plans`") && error.contains("`Планы`"), "{error}");
    }
}

mod sql {
    use super::*;

    fn legacy_toml() -> String {
        let org = org();
        format!(
            r#"{org}
[sources.legacy]
kind = "sqlite"
path = "legacy.db"
time_zone = "Asia/Vladivostok"

[sources.legacy.tables.intake_requests]
query = """
select id as source_id, dept as department, branch as branch_code, inn as client_inn, subject,
       created as created_at, status, resolved as resolved_at, updated_at, 'ignored' as extra
from requests;
"""
cursor = "updated_at"
lookback_seconds = 300
"#
        )
    }

    fn create_db(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch(
            "create table requests (id integer primary key, dept text, branch text, inn text, subject text,
                                    created text, status text, resolved text, updated_at text);
             insert into requests values
               (1, 'content',    'VVO', '2536000001', 'Афиша',  '2025-01-10 09:00:00', 'new',         null, '2025-01-10 09:00:00'),
               (2, 'marketing',  'VVO', null,         'Баннер', '2025-01-10 10:00:00', 'new',         null, '2025-01-10 10:00:00'),
               (3, 'docflow',    'VVO', '2536000003', 'Договор','2025-01-10 11:00:00', 'done', '2025-01-10 11:30:00', '2025-01-10 11:00:00'),
               (4, 'accounting', 'VVO', null,         'Счёт',   '2025-01-10 12:00:00', 'in_progress', null, '2025-01-10 12:00:00'),
               (7, 'content',    'XXX', null,         'Чужой',  '2025-01-10 08:00:00', 'new',         null, '2025-01-10 08:00:00');",
        )
        .unwrap();
        conn
    }

    #[tokio::test]
    async fn sql_sqlite_incremental_sync_updates_in_place() {
        let e = env(&legacy_toml());
        let conn = create_db(&e.path("legacy.db"));

        let report = e.sync().await;
        let legacy = source(&report, "legacy");
        assert_eq!(legacy.error, None);
        let t = &legacy.tables[0];
        assert_eq!((t.table.as_str(), t.read, t.inserted, t.quarantined), ("intake_requests", 4, 4, 1));
        // 09:00 in Vladivostok (UTC+10) is 23:00 UTC the day before.
        assert_eq!(
            e.rows(
                "select request_id, department, branch_id, client_inn, created_at, status, resolved_at \
                    from intake_requests where source_id = '1'"
            )
            .await,
            vec![vec!["legacy:1", "content", "vvo", "2536000001", "2025-01-09T23:00:00Z", "new", "NULL"]]
        );
        let q = e.rows("select location, reason from quarantine").await;
        assert_eq!(q.len(), 1);
        assert_eq!(q[0][0], "sqlite:intake_requests:source_id=7");
        assert!(q[0][1].contains("`XXX`") && q[0][1].contains("legacy = \"XXX\""), "{q:?}");

        conn.execute_batch(
            "update requests set status = 'done', resolved = '2025-01-10 13:00:00', updated_at = '2025-01-10 13:00:00' where id = 1;
             update requests set subject = 'Баннер 3x6', updated_at = '2025-01-10 13:05:00' where id = 2;
             insert into requests values (5, 'self_service', 'VVO', null, 'Портал', '2025-01-10 13:10:00', 'new', null, '2025-01-10 13:10:00');",
        )
        .unwrap();
        let report = e.sync().await;
        let t = &source(&report, "legacy").tables[0];
        // The cursor was 12:00:00; minus 300 s of look-back the read starts at 11:55:00, so it
        // re-reads row 4 (12:00) and the changed rows 1, 2 and the new row 5, but not row 3 (11:00).
        assert_eq!((t.read, t.inserted, t.updated, t.quarantined), (4, 1, 2, 0));
        assert_eq!(
            e.rows("select source_id, count(*) from intake_requests group by source_id order by source_id").await,
            ["1", "2", "3", "4", "5"].map(|id| vec![id.to_string(), "1".to_string()]).to_vec()
        );
        assert_eq!(
            e.rows(
                "select source_id, status, subject, resolved_at, department from intake_requests \
                    where source_id in ('1', '2', '5') order by source_id"
            )
            .await,
            vec![
                vec!["1", "done", "Афиша", "2025-01-10T03:00:00Z", "content"],
                vec!["2", "new", "Баннер 3x6", "NULL", "marketing"],
                vec!["5", "new", "Портал", "NULL", "self_service"],
            ]
        );
    }

    #[tokio::test]
    async fn sql_missing_database_is_a_clear_error() {
        let e = env(&legacy_toml());
        let report = e.sync().await;
        let error = source(&report, "legacy").error.clone().unwrap();
        assert!(error.contains("legacy.db") && error.contains("does not exist"), "{error}");
    }

    #[tokio::test]
    async fn sql_query_without_source_id_fails_the_check() {
        let toml = legacy_toml().replace("select id as source_id,", "select id,");
        let e = env(&toml);
        create_db(&e.path("legacy.db"));
        let report = e.sync().await;
        let error = source(&report, "legacy").error.clone().unwrap();
        assert!(error.contains("`source_id`") && error.contains("intake_requests"), "{error}");
    }
}
