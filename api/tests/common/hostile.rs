//! The hostile SQL of the API tests, shared by `/api/v1/sql`'s (`refusal.rs`) and the PostgreSQL
//! protocol's (`pgwire.rs`): each query with the API error codes it may be answered with.

/// Every hostile query and the codes that answer it.
pub fn hostile() -> Vec<(String, &'static [&'static str])> {
    let refused: &'static [&'static str] = &["bad_sql"];
    let function: &'static [&'static str] = &["function_not_allowed"];
    // A quoted path or URL as a table: refused by name, or not even parsed as a table.
    let file: &'static [&'static str] = &["function_not_allowed", "bad_sql"];
    let complex: &'static [&'static str] = &["sql_too_complex", "sql_too_large"];
    let bounded: &'static [&'static str] = &["query_timeout", "memory_limit"];
    let s = |x: &str| x.to_string();
    let every_table = "deals a, deal_stage_changes b, activities c, managers d, clients e, plans f, \
                       intake_requests g, branches h, fct_deal i, stg_activity j, dim_stage k, fct_stage_transition l";
    vec![
        (s("drop table deals"), refused),
        (s("delete from deals"), refused),
        (s("insert into deals select * from deals"), refused),
        (s("update deals set amount = 0"), refused),
        (s("truncate table deals"), refused),
        (s("alter table deals add column x int"), refused),
        (s("create table x as select 1"), refused),
        (s("create view v as select * from deals"), refused),
        (s("create external table x stored as csv location '/etc/passwd'"), refused),
        (s("copy deals to '/tmp/dealhouse-leak.csv'"), refused),
        (s("copy (select * from deals) to '/tmp/dealhouse-leak.parquet'"), refused),
        (s("set datafusion.execution.batch_size = 1"), refused),
        (s("reset datafusion.execution.batch_size"), refused),
        (s("select 1; select 2"), refused),
        (s("select count(*) from deals; drop table deals"), refused),
        (s("explain analyze select count(*) from deals"), refused),
        (s("explain verbose select * from deals"), refused),
        (s("select * from read_csv('/etc/passwd')"), function),
        (s("select * from read_parquet('/etc/passwd')"), function),
        (s("select * from 'http://127.0.0.1:9/x.csv'"), file),
        (s("select * from '/etc/passwd'"), file),
        (s("select * from \"/etc/passwd\""), file),
        (format!("select {}", vec!["1"; 5_000].join("+")), complex),
        (format!("select * from deals where {}", vec!["amount=1"; 10_000].join(" or ")), complex),
        (format!("select * from deals where {}", vec!["amount=1"; 1_000].join(" or ")), complex),
        (format!("select {}1{}", "(".repeat(500), ")".repeat(500)), complex),
        (format!("select * from {}deals{}", "(select * from ".repeat(80), ") t".repeat(80)), complex),
        (s("select count(*) from generate_series(1, 1000000000000)"), function),
        (s("select generate_series(1, 1e12)"), function),
        (s("select count(*) from range(1, 1000000000000)"), function),
        (s("select unnest(range(1, 1000000000000))"), function),
        (s("select repeat('x', 2147483647)"), function),
        (s("select lpad(title, 2000000000, 'y') from deals"), function),
        (s("with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t"), complex),
        // A filter keeps the count from being answered from row-count statistics.
        (format!("select count(*) from {every_table} where a.deal_id <> b.source_id"), bounded),
        (format!("select max(a.title || b.deal_id || c.activity_id) from {every_table}"), bounded),
        (s("select * from quarantine_does_not_exist"), refused),
    ]
}
