//! End-to-end tests of the PostgreSQL and MySQL/MariaDB connectors against real servers, through
//! `sync_project` into a local warehouse.
//!
//! The servers: PostgreSQL at 127.0.0.1:5432 (trust auth, database `test`) and MariaDB at
//! 127.0.0.1:3306 (root without password); `scripts/test` starts both. Set
//! DEALHOUSE_TEST_POSTGRES_URL / DEALHOUSE_TEST_MYSQL_URL to use others. A test whose server is not
//! there fails saying how to start it. Each test works in a schema (PostgreSQL) or database
//! (MariaDB) of its own, dropped when the test ends, failed or not.
//!
//! Both engines run one scenario with the same upstream data and the same expected warehouse
//! rows, computed by hand in the comments next to them.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use common::{env, source};
use dealhouse_ingest::source::SourceContext;
use dealhouse_ingest::sync::{LogProgress, SyncOptions, SyncReport, TableReport, connector_for, sync_project};
use dealhouse_tests::project::Org;
use sqlx_core::connection::Connection;
use sqlx_mysql::MySqlConnection;
use sqlx_postgres::PgConnection;
use url::Url;

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL_URL: &str = "mysql://root@127.0.0.1:3306/test";

// ---------------------------------------------------------------------------------------------
// The project and warehouse side: `common::Env`, as in file_and_sql_sources.rs.

fn table<'a>(report: &'a SyncReport, name: &str, table: &str) -> &'a TableReport {
    let s = source(report, name);
    assert_eq!(s.error, None, "{report:?}");
    s.tables.iter().find(|t| t.table == table).unwrap_or_else(|| panic!("no table {table} in {s:?}"))
}

/// (read, inserted, updated, quarantined)
fn counts(t: &TableReport) -> (u64, u64, u64, u64) {
    (t.read, t.inserted, t.updated, t.quarantined)
}

fn org() -> String {
    Org::new()
        .holding("east", "Восток")
        .branch("vvo", "east", "Владивосток", "Asia/Vladivostok")
        .codes(&[("legacy", "VVO")])
        .toml()
}

// ---------------------------------------------------------------------------------------------
// The database side: a scratch schema or database per test, dropped by a guard.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Postgres,
    Mysql,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        }
    }

    fn admin_url(self) -> String {
        let (var, default) = match self {
            Kind::Postgres => ("DEALHOUSE_TEST_POSTGRES_URL", POSTGRES_URL),
            Kind::Mysql => ("DEALHOUSE_TEST_MYSQL_URL", MYSQL_URL),
        };
        std::env::var(var).unwrap_or_else(|_| default.to_string())
    }

    fn how_to_start(self) -> &'static str {
        match self {
            Kind::Postgres => {
                "These tests need a real PostgreSQL: run `scripts/test` (it installs and starts PostgreSQL and \
                 MariaDB), or start it yourself (`pg_ctlcluster 15 main start`) and point \
                 DEALHOUSE_TEST_POSTGRES_URL at it."
            }
            Kind::Mysql => {
                "These tests need a real MariaDB/MySQL: run `scripts/test` (it installs and starts PostgreSQL and \
                 MariaDB), or start it yourself (`mariadbd --user=mysql &`) and point DEALHOUSE_TEST_MYSQL_URL at it."
            }
        }
    }
}

/// An admin connection to the test server.
enum Admin {
    Pg(PgConnection),
    My(MySqlConnection),
}

impl Admin {
    async fn connect(kind: Kind, url: &str) -> Result<Admin, sqlx_core::Error> {
        Ok(match kind {
            Kind::Postgres => Admin::Pg(PgConnection::connect(url).await?),
            Kind::Mysql => Admin::My(MySqlConnection::connect(url).await?),
        })
    }

    /// Runs statements one by one.
    async fn exec(&mut self, statements: &[String]) {
        for sql in statements {
            let done = match self {
                Admin::Pg(c) => sqlx_core::raw_sql::raw_sql(sql).execute(&mut *c).await.map(|_| ()),
                Admin::My(c) => sqlx_core::raw_sql::raw_sql(sql).execute(&mut *c).await.map(|_| ()),
            };
            done.unwrap_or_else(|e| panic!("test setup failed on `{sql}`: {e}"));
        }
    }

    async fn text(&mut self, sql: &str) -> String {
        let value = match self {
            Admin::Pg(c) => sqlx_core::query_scalar::query_scalar::<_, String>(sql).fetch_one(&mut *c).await,
            Admin::My(c) => sqlx_core::query_scalar::query_scalar::<_, String>(sql).fetch_one(&mut *c).await,
        };
        value.unwrap_or_else(|e| panic!("`{sql}`: {e}"))
    }
}

/// Drops the scratch schema/database when the test ends, also when it panics.
struct Scratch {
    kind: Kind,
    admin_url: String,
    name: String,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let (kind, url) = (self.kind, self.admin_url.clone());
        let sql = match kind {
            Kind::Postgres => format!("drop schema if exists {} cascade", self.name),
            Kind::Mysql => format!("drop database if exists {}", self.name),
        };
        // Drop cannot await, and the test's runtime may be unwinding: use a runtime of our own.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            rt.block_on(async {
                let mut admin = Admin::connect(kind, &url).await.map_err(|e| e.to_string())?;
                admin.exec(&[sql]).await;
                Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the scratch {} `{}`: {dropped:?}", kind.name(), self.name);
        }
    }
}

/// A scratch area on a server: the admin connection, the guard, and how queries reach it.
struct Server {
    kind: Kind,
    admin: Admin,
    /// Connection URL for the source under test.
    source_url: String,
    /// Prefix of table names in queries (`schema.` on PostgreSQL).
    prefix: String,
    _scratch: Scratch,
}

static SCRATCH_COUNTER: AtomicU32 = AtomicU32::new(0);

async fn server(kind: Kind) -> Server {
    let admin_url = kind.admin_url();
    let mut admin = match Admin::connect(kind, &admin_url).await {
        Ok(a) => a,
        Err(e) => panic!("{} is not reachable at {admin_url} ({e}). {}", kind.name(), kind.how_to_start()),
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let name = format!(
        "dh_test_{}_{}_{}",
        std::process::id(),
        SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos % 1_000_000
    );
    let create = match kind {
        Kind::Postgres => format!("create schema {name}"),
        Kind::Mysql => format!("create database {name} character set utf8mb4"),
    };
    admin.exec(&[create]).await;
    let scratch = Scratch { kind, admin_url: admin_url.clone(), name: name.clone() };
    let (source_url, prefix) = match kind {
        Kind::Postgres => (admin_url, format!("{name}.")),
        Kind::Mysql => {
            let mut url = Url::parse(&admin_url).unwrap();
            url.set_path(&name);
            (url.to_string(), String::new())
        }
    };
    if kind == Kind::Mysql {
        admin.exec(&[format!("use {name}")]).await;
    }
    Server { kind, admin, source_url, prefix, _scratch: scratch }
}

impl Server {
    /// A literal for text stored in a legacy one-byte encoding: on MariaDB the exact cp1251 or
    /// latin1 bytes (encoded here, independently of the server) go in as a hex literal, so the
    /// column really holds that encoding; PostgreSQL stores UTF-8 text.
    fn legacy_text(&self, text: &str, encoding: &'static encoding_rs::Encoding) -> String {
        match self.kind {
            Kind::Postgres => format!("'{text}'"),
            Kind::Mysql => {
                let (bytes, _, unmappable) = encoding.encode(text);
                assert!(!unmappable, "{text} does not fit {}", encoding.name());
                format!("X'{}'", hex(&bytes))
            }
        }
    }

    /// An instant literal written in Moscow time (+03:00): PostgreSQL reads the offset, MariaDB
    /// reads it in the session time zone, which the setup sets to +03:00.
    fn msk(&self, local: &str) -> String {
        match self.kind {
            Kind::Postgres => format!("'{local}+03'"),
            Kind::Mysql => format!("'{local}'"),
        }
    }

    fn toml(&self, connection: &str) -> String {
        let p = &self.prefix;
        let org = org();
        format!(
            r#"{org}
[sources.legacy]
kind = "{kind}"
{connection}
time_zone = "Asia/Vladivostok"

[sources.legacy.tables.intake_requests]
query = """
select id as source_id, dept as department, branch as branch_code, inn as client_inn, subject,
       created as created_at, status, resolved as resolved_at, updated_at
from {p}requests
"""
cursor = "updated_at"
lookback_seconds = 300

[sources.legacy.tables.deals]
query = """
select id as source_id, title, amount, commission, stage, stage as source_stage, status,
       branch as branch_code, 'legacy' as pipeline, archived as deleted, created_at, updated_at, closed_at
from {p}deals
"""
cursor = "updated_at"
lookback_seconds = 300
"#,
            kind = self.kind.name(),
        )
    }

    fn inline_toml(&self) -> String {
        self.toml(&format!("url = \"{}\"", self.source_url))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The scenario both engines run.

async fn create_tables(s: &mut Server) {
    let p = s.prefix.clone();
    let win = encoding_rs::WINDOWS_1251;
    let latin1 = encoding_rs::WINDOWS_1252;
    let ddl = match s.kind {
        Kind::Postgres => vec![
            format!(
                "create table {p}requests (id integer primary key, dept text, branch text, inn varchar(12), \
                 subject text, created timestamp, status text, resolved timestamp, updated_at timestamp)"
            ),
            format!("create type {p}deal_status as enum ('open', 'won', 'lost')"),
            format!(
                "create table {p}deals (id bigint primary key, title text, amount numeric, commission numeric(12, 2), \
                 stage text, status {p}deal_status, branch text, archived boolean, created_at timestamptz, \
                 updated_at timestamptz, closed_at timestamptz)"
            ),
        ],
        Kind::Mysql => vec![
            "set time_zone = '+03:00'".to_string(),
            // Strict mode off for this session only, so the legacy zero date below goes in as such.
            "set sql_mode = ''".to_string(),
            "create table requests (id int primary key, dept varchar(20), branch varchar(10), inn varchar(12), \
             subject varchar(100) character set cp1251, created datetime, status varchar(20), resolved datetime null, \
             updated_at datetime) default charset = utf8mb4"
                .to_string(),
            "create table deals (id bigint primary key, title varchar(100) character set latin1, \
             amount decimal(20, 3), commission decimal(12, 2), stage varchar(20), status enum('open', 'won', 'lost'), \
             branch varchar(10), archived boolean, created_at timestamp null default null, \
             updated_at timestamp null default null, closed_at timestamp null default null) default charset = utf8mb4"
                .to_string(),
        ],
    };
    s.admin.exec(&ddl).await;
    // A timestamp that is a valid value upstream but no instant: PostgreSQL's infinity, MySQL's
    // zero date. Its row must be quarantined, not crash the read.
    let never = match s.kind {
        Kind::Postgres => "'infinity'",
        Kind::Mysql => "'0000-00-00 00:00:00'",
    };
    let t = |text: &str| s.legacy_text(text, win);
    let requests = format!(
        "insert into {p}requests values \
         (1, 'content',    'VVO', '2536000001', {}, '2025-01-10 09:00:00', 'new',         null,                  '2025-01-10 09:00:00'), \
         (2, 'marketing',  'VVO', null,         {}, '2025-01-10 10:00:00', 'new',         null,                  '2025-01-10 10:00:00'), \
         (3, 'docflow',    'VVO', '2536000003', {}, '2025-01-10 11:00:00', 'done',        '2025-01-10 11:30:00', '2025-01-10 11:00:00'), \
         (4, 'accounting', 'VVO', null,         {}, '2025-01-10 12:00:00', 'in_progress', null,                  '2025-01-10 12:00:00'), \
         (7, 'content',    'XXX', null,         {}, '2025-01-10 08:00:00', 'new',         null,                  '2025-01-10 08:00:00'), \
         (9, 'content',    'VVO', null,         {}, '2025-01-10 08:30:00', 'done',        {never},               '2025-01-10 08:30:00')",
        t("Афиша"),
        t("Баннер"),
        t("Договор"),
        t("Счёт"),
        t("Чужой"),
        t("Вечность"),
    );
    let m = |local: &str| s.msk(local);
    let deals = format!(
        "insert into {p}deals values \
         (101, {}, 1234.56,             123.46, 'won',      'won',  'VVO', false, {}, {}, {}), \
         (102, {}, 9999999999999999.99, null,   'proposal', 'open', 'VVO', true,  {}, {}, null), \
         (103, {}, 10.555,              null,   'new',      'open', 'VVO', null,  {}, {}, null)",
        s.legacy_text("Café Müller", latin1),
        m("2025-01-10 09:00:00"),
        m("2025-01-10 10:00:00"),
        m("2025-01-10 10:00:00"),
        s.legacy_text("Große Bühne", latin1),
        m("2025-01-10 02:30:00"),
        m("2025-01-10 02:30:00"),
        s.legacy_text("Arrondi", latin1),
        m("2025-01-10 08:00:00"),
        m("2025-01-10 08:00:00"),
    );
    s.admin.exec(&[requests, deals]).await;
    if s.kind == Kind::Mysql {
        // The columns really hold cp1251 and latin1 bytes (checked against encoding_rs's).
        let (cp, _, _) = win.encode("Афиша");
        assert_eq!(s.admin.text("select hex(subject) from requests where id = 1").await, hex(&cp));
        let (l1, _, _) = latin1.encode("Café Müller");
        assert_eq!(s.admin.text("select hex(title) from deals where id = 101").await, hex(&l1));
    }
}

async fn incremental_scenario(kind: Kind) {
    let mut s = server(kind).await;
    create_tables(&mut s).await;
    let e = env(&s.inline_toml());

    // `discover` lists both tables with a planner estimate.
    let ctx = SourceContext { project: e.project.clone(), source_name: "legacy".into(), http: reqwest::Client::new() };
    let sources = dealhouse_ingest::source_config::parse_sources(&e.project.config).unwrap();
    let connector = connector_for(ctx, &sources["legacy"]).await.unwrap();
    connector.check().await.unwrap();
    let streams = connector.discover().await.unwrap();
    let mut tables: Vec<&str> = streams.iter().map(|s| s.table).collect();
    tables.sort();
    assert_eq!(tables, ["deals", "intake_requests"]);
    assert!(streams.iter().all(|s| s.estimated_rows.is_some()), "{streams:?}");

    // First sync: everything.
    let report = e.sync().await;
    // Requests 7 (unknown branch) and 9 (no instant) are quarantined; deal 103 (3 decimals) too.
    assert_eq!(counts(table(&report, "legacy", "intake_requests")), (4, 4, 0, 2));
    assert_eq!(counts(table(&report, "legacy", "deals")), (2, 2, 0, 1));
    // Naive times are Vladivostok wall-clock (UTC+10): 09:00 there is 23:00 UTC the day before.
    assert_eq!(
        e.rows(
            "select request_id, department, branch_id, client_inn, subject, created_at, status, resolved_at \
                from intake_requests order by source_id"
        )
        .await,
        vec![
            vec!["legacy:1", "content", "vvo", "2536000001", "Афиша", "2025-01-09T23:00:00Z", "new", "NULL"],
            vec!["legacy:2", "marketing", "vvo", "NULL", "Баннер", "2025-01-10T00:00:00Z", "new", "NULL"],
            vec![
                "legacy:3",
                "docflow",
                "vvo",
                "2536000003",
                "Договор",
                "2025-01-10T01:00:00Z",
                "done",
                "2025-01-10T01:30:00Z"
            ],
            vec!["legacy:4", "accounting", "vvo", "NULL", "Счёт", "2025-01-10T02:00:00Z", "in_progress", "NULL"],
        ]
    );
    // Instants ignore the source's zone: 09:00+03:00 is 06:00 UTC; 02:30+03:00 is 23:30 UTC the day before.
    assert_eq!(
        e.rows(
            "select deal_id, title, stage, status, branch_id, created_at, updated_at, closed_at, deleted \
                from deals order by source_id"
        )
        .await,
        vec![
            vec![
                "legacy:101",
                "Café Müller",
                "won",
                "won",
                "vvo",
                "2025-01-10T06:00:00Z",
                "2025-01-10T07:00:00Z",
                "2025-01-10T07:00:00Z",
                "false"
            ],
            vec![
                "legacy:102",
                "Große Bühne",
                "proposal",
                "open",
                "vvo",
                "2025-01-09T23:30:00Z",
                "2025-01-09T23:30:00Z",
                "NULL",
                "true"
            ],
        ]
    );
    // 1234.56 -> 123456 kopecks; 9999999999999999.99 -> 999999999999999999 (a double would round it to 1e16).
    assert_eq!(
        e.scaled("select amount from deals order by source_id").await,
        vec![Some(123_456), Some(999_999_999_999_999_999)]
    );
    assert_eq!(e.scaled("select commission from deals order by source_id").await, vec![Some(12_346), None]);
    let q = e.rows("select location, reason from quarantine order by location").await;
    let kind_name = kind.name();
    assert_eq!(
        q.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(),
        [
            format!("{kind_name}:deals:source_id=103"),
            format!("{kind_name}:intake_requests:source_id=7"),
            format!("{kind_name}:intake_requests:source_id=9")
        ]
    );
    assert!(q[0][1].contains("`amount`") && q[0][1].contains("10.555") && q[0][1].contains("3 decimals"), "{q:?}");
    assert!(q[1][1].contains("`XXX`") && q[1][1].contains("legacy = \"XXX\""), "{q:?}");
    assert!(q[2][1].contains("`resolved_at`"), "{q:?}");
    // The cursors are the largest updated_at read, in the column's own type: the requests' naive
    // 12:00:00 (request 4) and the deals' instant 10:00+03:00 = 07:00Z (deal 101).
    assert_eq!(
        e.warehouse.last_cursor("intake_requests", "legacy").await.unwrap().as_deref(),
        Some("ts:2025-01-10T12:00:00")
    );
    assert_eq!(e.warehouse.last_cursor("deals", "legacy").await.unwrap().as_deref(), Some("tstz:2025-01-10T07:00:00Z"));

    // Second sync, nothing changed upstream: the look-back re-reads only the rows within 300 s of
    // the cursors (request 4, deal 101), and the merge finds nothing new.
    let report = e.sync().await;
    assert_eq!(counts(table(&report, "legacy", "intake_requests")), (1, 0, 0, 0));
    assert_eq!(counts(table(&report, "legacy", "deals")), (1, 0, 0, 0));
    assert_eq!(e.count("select count(*) from intake_requests").await, 4);
    assert_eq!(e.count("select count(*) from deals").await, 2);
    assert_eq!(e.count("select count(*) from quarantine").await, 3);

    // Upstream: request 2 is edited (updated_at moves on); request 5 is written in the very
    // second of the cursor, request 6 late (3 minutes before it, inside the look-back), request 8
    // 10 minutes before it (outside the look-back); deal 101 is edited, deal 104 is written in
    // the second of the deals' cursor.
    let p = s.prefix.clone();
    let win = encoding_rs::WINDOWS_1251;
    let changes = vec![
        format!(
            "update {p}requests set subject = {}, updated_at = '2025-01-10 13:05:00' where id = 2",
            s.legacy_text("Баннер 3x6", win)
        ),
        format!(
            "insert into {p}requests values \
             (5, 'self_service', 'VVO', null, {}, '2025-01-10 12:00:00', 'new', null, '2025-01-10 12:00:00'), \
             (6, 'content',      'VVO', null, {}, '2025-01-10 11:57:00', 'new', null, '2025-01-10 11:57:00'), \
             (8, 'content',      'VVO', null, {}, '2025-01-10 11:50:00', 'new', null, '2025-01-10 11:50:00')",
            s.legacy_text("Портал", win),
            s.legacy_text("Поздний", win),
            s.legacy_text("Старый", win),
        ),
        format!("update {p}deals set amount = 2000.10, updated_at = {} where id = 101", s.msk("2025-01-10 10:30:00")),
        format!(
            "insert into {p}deals values (104, 'Nouveau', 500, null, 'new', 'open', 'VVO', false, {}, {}, null)",
            s.msk("2025-01-10 10:00:00"),
            s.msk("2025-01-10 10:00:00")
        ),
    ];
    s.admin.exec(&changes).await;
    let report = e.sync().await;
    // Requests from 11:55:00 on: 2 (13:05, changed), 4 (12:00, unchanged), 5 (12:00, new), 6 (11:57, new).
    assert_eq!(counts(table(&report, "legacy", "intake_requests")), (4, 2, 1, 0));
    // Deals from 06:55Z on: 101 (07:30Z, changed) and 104 (07:00Z, new).
    assert_eq!(counts(table(&report, "legacy", "deals")), (2, 1, 1, 0));
    assert_eq!(
        e.rows("select source_id, count(*) from intake_requests group by source_id order by source_id").await,
        ["1", "2", "3", "4", "5", "6"].map(|id| vec![id.to_string(), "1".to_string()]).to_vec()
    );
    assert_eq!(
        e.rows("select source_id, subject from intake_requests where source_id in ('2', '5', '6') order by source_id")
            .await,
        vec![vec!["2", "Баннер 3x6"], vec!["5", "Портал"], vec!["6", "Поздний"]]
    );
    // The edit replaced deal 101 in place: still 3 deals (101, 102, 104), 2000.10 -> 200010 kopecks.
    assert_eq!(
        e.rows("select source_id, count(*) from deals group by source_id order by source_id").await,
        ["101", "102", "104"].map(|id| vec![id.to_string(), "1".to_string()]).to_vec()
    );
    assert_eq!(
        e.scaled("select amount from deals order by source_id").await,
        vec![Some(200_010), Some(999_999_999_999_999_999), Some(50_000)]
    );
    assert_eq!(
        e.rows("select updated_at from deals where source_id = '101'").await,
        vec![vec!["2025-01-10T07:30:00Z"]]
    );
    assert_eq!(
        e.warehouse.last_cursor("intake_requests", "legacy").await.unwrap().as_deref(),
        Some("ts:2025-01-10T13:05:00")
    );
}

#[tokio::test]
async fn postgres_typed_incremental_sync_with_lookback_and_quarantine() {
    incremental_scenario(Kind::Postgres).await;
}

#[tokio::test]
async fn mysql_typed_incremental_sync_with_legacy_encodings_and_quarantine() {
    incremental_scenario(Kind::Mysql).await;
}

// ---------------------------------------------------------------------------------------------
// Quarantined rows are read again by source_id once the mapping is fixed.

async fn replay_scenario(kind: Kind) {
    let mut s = server(kind).await;
    create_tables(&mut s).await;
    let mut e = env(&s.inline_toml());
    e.sync().await;
    // As in the incremental scenario: requests 7 (branch XXX) and 9 (no instant), deal 103.
    assert_eq!(e.count("select count(*) from quarantine").await, 3);

    // The user does what request 7's reason says: a branch claims code XXX.
    let khv = Org::new()
        .holding("east", "Восток")
        .branch("vvo", "east", "Владивосток", "Asia/Vladivostok")
        .codes(&[("legacy", "VVO")])
        .branch("khv", "east", "Хабаровск", "Asia/Vladivostok")
        .codes(&[("legacy", "XXX")])
        .toml();
    e.reconfigure(&s.inline_toml().replace(&org(), &khv));
    let report = e.sync().await;
    let requests = table(&report, "legacy", "intake_requests");
    // The cursor read re-reads request 4 only (within 300 s of 12:00); the replay asks for 7
    // and 9 by source_id (both updated long before the cursor) and loads 7.
    assert_eq!((requests.read, requests.replayed, requests.inserted, requests.cleared), (1, 2, 1, 1));
    assert_eq!(
        e.rows("select branch_id, subject from intake_requests where source_id = '7'").await,
        vec![vec!["khv", "Чужой"]]
    );
    let deals = table(&report, "legacy", "deals");
    assert_eq!((deals.read, deals.replayed, deals.cleared), (1, 1, 0));
    let q = e.rows("select location, mapping is not null from quarantine order by location").await;
    let kind_name = kind.name();
    assert_eq!(
        q,
        vec![
            vec![format!("{kind_name}:deals:source_id=103"), "true".into()],
            vec![format!("{kind_name}:intake_requests:source_id=9"), "true".into()]
        ]
    );

    // Request 9 is fixed in the database without moving updated_at: the cursor misses it, a
    // forced replay does not.
    let p = s.prefix.clone();
    s.admin.exec(&[format!("update {p}requests set resolved = null where id = 9")]).await;
    assert_eq!(counts(table(&e.sync().await, "legacy", "intake_requests")), (1, 0, 0, 0));
    assert_eq!(e.count("select count(*) from quarantine").await, 2);
    let replay = SyncOptions { replay_quarantine: true, ..Default::default() };
    let report = sync_project(e.project.clone(), &e.warehouse, &replay, &LogProgress).await.unwrap();
    let requests = table(&report, "legacy", "intake_requests");
    assert_eq!((requests.replayed, requests.inserted, requests.cleared), (1, 1, 1));
    assert_eq!(e.count("select count(*) from intake_requests").await, 6);
    assert_eq!(e.rows("select location from quarantine").await, vec![vec![format!("{kind_name}:deals:source_id=103")]]);
}

#[tokio::test]
async fn postgres_fixed_mapping_loads_quarantined_rows_by_source_id() {
    replay_scenario(Kind::Postgres).await;
}

#[tokio::test]
async fn mysql_fixed_mapping_loads_quarantined_rows_by_source_id() {
    replay_scenario(Kind::Mysql).await;
}

// ---------------------------------------------------------------------------------------------
// Errors: clear, actionable, and never showing the password.

const PASSWORD: &str = "Sup3r-Secret-pw";

/// The error of source `legacy` after a sync with this connection line.
async fn sync_error(s: &Server, connection: &str) -> String {
    let e = env(&s.toml(connection));
    let report = e.sync().await;
    let error = source(&report, "legacy").error.clone().unwrap_or_else(|| panic!("no error in {report:?}"));
    assert!(!error.contains(PASSWORD), "the password leaked: {error}");
    error
}

async fn error_scenario(kind: Kind) {
    let s = server(kind).await;
    // PostgreSQL trusts local users whatever password they give; MariaDB's root has none, so a
    // password is given there only where it is the mistake under test.
    let usable_password = match kind {
        Kind::Postgres => PASSWORD,
        Kind::Mysql => "",
    };
    let with = |user: &str, password: &str, port: u16, database: &str| {
        let mut url = Url::parse(&s.source_url).unwrap();
        url.set_username(user).unwrap();
        url.set_password(Some(password).filter(|p| !p.is_empty())).unwrap();
        url.set_port(Some(port)).unwrap();
        if !database.is_empty() {
            url.set_path(database);
        }
        format!("url = \"{url}\"")
    };
    let port = Url::parse(&s.source_url).unwrap().port().unwrap_or(match kind {
        Kind::Postgres => 5432,
        Kind::Mysql => 3306,
    });
    let user = Url::parse(&s.source_url).unwrap().username().to_string();
    let engine = match kind {
        Kind::Postgres => "PostgreSQL",
        Kind::Mysql => "MySQL/MariaDB",
    };

    // Authentication: PostgreSQL trusts local users whatever their password, so a user that does
    // not exist is refused there; MariaDB refuses root with a wrong password.
    let who = match kind {
        Kind::Postgres => "dh_nobody",
        Kind::Mysql => user.as_str(),
    };
    let error = sync_error(&s, &with(who, PASSWORD, port, "")).await;
    assert!(error.contains(&format!("authentication failed for user `{who}`")), "{error}");
    assert!(error.contains(":***@") && error.contains("check the user and password"), "{error}");

    let error = sync_error(&s, &with(&user, usable_password, port, "dh_no_such_database")).await;
    assert!(error.contains("database `dh_no_such_database` does not exist"), "{error}");

    // Nothing listens on port 1.
    let error = sync_error(&s, &with(&user, PASSWORD, 1, "")).await;
    assert!(
        error.contains(&format!("cannot reach {engine} at 127.0.0.1:1")) && error.contains("is it running?"),
        "{error}"
    );

    let error = sync_error(&s, "url_env = \"DEALHOUSE_TEST_VARIABLE_NOBODY_SETS\"").await;
    assert!(error.contains("`DEALHOUSE_TEST_VARIABLE_NOBODY_SETS`") && error.contains("is not set"), "{error}");

    // The tables were never created: the check names the table, the query and where to fix it
    // (tables are checked in name order, so `deals` first).
    let e = env(&s.inline_toml());
    let report = e.sync().await;
    let error = source(&report, "legacy").error.clone().unwrap();
    assert!(error.contains("the query for `deals` fails"), "{error}");
    assert!(error.contains("a table the query reads does not exist"), "{error}");
    assert!(error.contains("fix [sources.legacy.tables.deals].query"), "{error}");
    assert_eq!(e.count("select count(*) from intake_requests").await, 0);
}

#[tokio::test]
async fn postgres_connection_errors_are_clear_and_never_show_the_password() {
    error_scenario(Kind::Postgres).await;
}

#[tokio::test]
async fn mysql_connection_errors_are_clear_and_never_show_the_password() {
    error_scenario(Kind::Mysql).await;
}
