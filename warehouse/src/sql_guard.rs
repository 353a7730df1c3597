//! Checks on SQL from untrusted callers (the API's analyst SQL), before DataFusion plans it:
//! size, shape and functions that could exhaust the server or reach outside the warehouse.
//!
//! The checks run in three steps of increasing cost, each bounding what the next may meet:
//! 1. bytes, then tokens (the tokenizer is a loop: no recursion, whatever the input);
//! 2. the parser (its recursion limit bounds parenthesised nesting);
//! 3. a walk over the syntax tree (expression depth, table functions, sized functions).
//!
//! DataFusion's planner recurses per expression level and a few thousand `1+1+...` terms
//! overflow its stack (apache/datafusion#22229, #22936); `generate_series` and `range` allocate
//! outside the memory pool (#12919). Refusals carry a stable code, see [`Refusal`].

use std::ops::ControlFlow;

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    DescribeAlias, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, ObjectName, ObjectNamePart, Query, Statement,
    TableFactor, Value, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::Error;

/// Limits on one untrusted statement.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Largest SQL text, in bytes.
    pub max_bytes: usize,
    /// Most tokens (words, literals, symbols; whitespace not counted).
    pub max_tokens: usize,
    /// Most binary operators (`+`, `=`, `AND`, `OR`, ...).
    pub max_operators: usize,
    /// Most `SELECT`s (subqueries, UNION branches, CTEs).
    pub max_selects: usize,
    /// Deepest expression nesting.
    pub max_depth: usize,
    /// Largest literal size argument of `repeat`, `lpad`, `rpad`, `array_repeat`, `array_resize`.
    pub max_sized_argument: u64,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_tokens: 10_000,
            max_operators: 2_000,
            max_selects: 200,
            max_depth: 200,
            max_sized_argument: 10_000,
        }
    }
}

/// The kinds of refusal; each has a stable code the API sends (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// `sql_too_large`: more text or tokens than any legitimate query.
    SqlTooLarge,
    /// `sql_too_complex`: too many operators, SELECTs, or too deep.
    SqlTooComplex,
    /// `function_not_allowed`: a generator or a sized function with a large argument.
    FunctionNotAllowed,
    /// `bad_sql`: not exactly one well-formed read-only query.
    BadSql,
}

impl RefusalCode {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::SqlTooLarge => "sql_too_large",
            RefusalCode::SqlTooComplex => "sql_too_complex",
            RefusalCode::FunctionNotAllowed => "function_not_allowed",
            RefusalCode::BadSql => "bad_sql",
        }
    }
}

/// Why a statement was refused: `code` is stable (the API sends it), `message` says what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// What kind of refusal.
    pub code: RefusalCode,
    /// What was refused and how to fix it.
    pub message: String,
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused { code: r.code, message: r.message }
    }
}

fn refuse(code: RefusalCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// Functions that build data from their arguments alone, outside the memory pool.
const REFUSED_FUNCTIONS: [&str; 2] = ["generate_series", "range"];

/// Functions whose output size is their second argument: allowed with a small literal size.
const SIZED_FUNCTIONS: [&str; 5] = ["repeat", "lpad", "rpad", "array_repeat", "array_resize"];

/// Checks one untrusted statement: exactly one read-only query (SELECT, WITH, VALUES, SHOW
/// TABLES/COLUMNS, or EXPLAIN of one without ANALYZE or VERBOSE), within `limits`. Returns the parsed statement to plan.
pub fn check_untrusted(sql: &str, limits: &SqlLimits) -> Result<DfStatement, Refusal> {
    check_size(sql, limits)?;
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&GenericDialect {})
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            let m = e.to_string();
            // DataFusion shows the parser's error by its Debug name (`RecursionLimitExceeded`).
            if m.to_ascii_lowercase().replace(' ', "").contains("recursionlimit") {
                refuse(RefusalCode::SqlTooComplex, "the query nests too deeply; flatten subexpressions or use a CTE")
            } else {
                refuse(RefusalCode::BadSql, format!("SQL syntax error: {m}"))
            }
        })?;
    if statements.len() != 1 {
        return Err(refuse(RefusalCode::BadSql, format!("expected exactly one statement, got {}", statements.len())));
    }
    let statement = statements.pop_front().ok_or_else(|| refuse(RefusalCode::BadSql, "empty query"))?;
    let query = match &statement {
        DfStatement::Statement(s) => s.as_ref(),
        DfStatement::Explain(e) => {
            if e.options.analyze || e.options.verbose || e.options.show_statistics == Some(true) {
                return Err(refuse(
                    RefusalCode::BadSql,
                    "EXPLAIN ANALYZE and EXPLAIN VERBOSE are not available here; use plain EXPLAIN",
                ));
            }
            match e.statement.as_ref() {
                DfStatement::Statement(s) => s.as_ref(),
                other => return Err(not_read_only(&other.to_string())),
            }
        }
        other => return Err(not_read_only(&other.to_string())),
    };
    if !is_read_only(query) {
        return Err(not_read_only(&query.to_string()));
    }
    let mut walker = Walker { limits, depth: 0 };
    if let ControlFlow::Break(r) = query.visit(&mut walker) {
        return Err(r);
    }
    Ok(statement)
}

/// The first, cheap step alone (bytes, then tokens, operators and SELECTs; no parsing, no
/// recursion): for a caller that must parse the text itself before [`check_untrusted`] (the
/// PostgreSQL protocol parses SET, SHOW and transaction statements in its own dialect), so its
/// parser never meets an oversized input.
pub fn check_size(sql: &str, limits: &SqlLimits) -> Result<(), Refusal> {
    if sql.len() > limits.max_bytes {
        return Err(refuse(
            RefusalCode::SqlTooLarge,
            format!("the query is {} bytes; the limit is {}", sql.len(), limits.max_bytes),
        ));
    }
    check_tokens(sql, limits)
}

/// The statements a caller may run, one list for `dealhouse query` and `POST /api/v1/sql`:
/// queries (SELECT, WITH, VALUES) and the ones that list tables and columns (`SHOW TABLES`,
/// `SHOW COLUMNS FROM t`, `DESCRIBE t` / `DESC t`). The listings read the session's catalog, so a
/// scoped caller sees only the tables its session holds. EXPLAIN wraps one of these.
pub fn is_read_only(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Query(_)
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ExplainTable { describe_alias: DescribeAlias::Describe | DescribeAlias::Desc, .. }
    )
}

/// What [`is_read_only`] allows, for refusals.
pub const READ_ONLY_STATEMENTS: &str = "SELECT, WITH, VALUES, EXPLAIN, SHOW TABLES, SHOW COLUMNS FROM t, DESCRIBE t";

fn not_read_only(statement: &str) -> Refusal {
    let words: Vec<&str> = statement.split_whitespace().take(3).collect();
    refuse(
        RefusalCode::BadSql,
        format!("only one read-only query ({READ_ONLY_STATEMENTS}) is allowed; refused: {}", words.join(" ")),
    )
}

/// Counts tokens, operators, SELECTs and parenthesis depth without building a tree.
fn check_tokens(sql: &str, limits: &SqlLimits) -> Result<(), Refusal> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| refuse(RefusalCode::BadSql, format!("SQL syntax error: {e}")))?;
    let (mut count, mut operators, mut selects) = (0usize, 0usize, 0usize);
    for t in &tokens {
        match t {
            Token::Whitespace(_) => continue,
            Token::Word(w) if matches!(w.keyword, Keyword::AND | Keyword::OR | Keyword::XOR) => operators += 1,
            Token::Word(w) if w.keyword == Keyword::SELECT => selects += 1,
            Token::DoubleEq
            | Token::Eq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::DuckIntDiv
            | Token::Mod
            | Token::StringConcat
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight => operators += 1,
            _ => {}
        }
        count += 1;
    }
    let too_complex = |what: String| refuse(RefusalCode::SqlTooComplex, what);
    if count > limits.max_tokens {
        return Err(too_complex(format!("the query has {count} tokens; the limit is {}", limits.max_tokens)));
    }
    if operators > limits.max_operators {
        return Err(too_complex(format!(
            "the query has {operators} operators; the limit is {} (use IN (...) instead of long OR chains)",
            limits.max_operators
        )));
    }
    if selects > limits.max_selects {
        return Err(too_complex(format!("the query has {selects} SELECTs; the limit is {}", limits.max_selects)));
    }
    Ok(())
}

struct Walker<'a> {
    limits: &'a SqlLimits,
    depth: usize,
}

impl Visitor for Walker<'_> {
    type Break = Refusal;

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Refusal> {
        if query.with.as_ref().is_some_and(|w| w.recursive) {
            return ControlFlow::Break(refuse(
                RefusalCode::SqlTooComplex,
                "WITH RECURSIVE is not available here: it can run without bound",
            ));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<Refusal> {
        for part in &name.0 {
            let ObjectNamePart::Identifier(ident) = part else {
                return ControlFlow::Break(refuse(RefusalCode::BadSql, format!("`{name}` is not a table name")));
            };
            // A quoted path or URL as a table name would read a file if URL tables were enabled
            // (they are not: apache/datafusion#4850); refuse it by name too.
            if ident.quote_style == Some('\'') || ident.value.contains('/') || ident.value.contains("://") {
                return ControlFlow::Break(refuse(
                    RefusalCode::FunctionNotAllowed,
                    "files and URLs cannot be read here; query the warehouse's tables by name",
                ));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<Refusal> {
        match factor {
            TableFactor::Table { args: None, .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. }
            | TableFactor::UNNEST { .. } => ControlFlow::Continue(()),
            TableFactor::Table { name, .. } => ControlFlow::Break(refuse(
                RefusalCode::FunctionNotAllowed,
                format!("table function `{name}` is not available here; query the warehouse's tables"),
            )),
            _ => ControlFlow::Break(refuse(
                RefusalCode::FunctionNotAllowed,
                "only tables, subqueries, joins and UNNEST may appear in FROM here",
            )),
        }
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<Refusal> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return ControlFlow::Break(refuse(
                RefusalCode::SqlTooComplex,
                format!(
                    "expressions nest deeper than {} levels; split long chains (IN (...) instead of OR chains)",
                    self.limits.max_depth
                ),
            ));
        }
        if let Expr::Function(f) = expr {
            let name = match f.name.0.last() {
                Some(ObjectNamePart::Identifier(i)) => i.value.to_ascii_lowercase(),
                _ => String::new(),
            };
            if REFUSED_FUNCTIONS.contains(&name.as_str()) {
                return ControlFlow::Break(refuse(
                    RefusalCode::FunctionNotAllowed,
                    format!(
                        "`{name}` is not available here (it can allocate without bound); use dim_month for month spines"
                    ),
                ));
            }
            if SIZED_FUNCTIONS.contains(&name.as_str()) {
                let size = match &f.args {
                    FunctionArguments::List(l) => l.args.get(1).and_then(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => literal_integer(e),
                        _ => None,
                    }),
                    _ => None,
                };
                if size.is_none_or(|n| n.unsigned_abs() > self.limits.max_sized_argument) {
                    return ControlFlow::Break(refuse(
                        RefusalCode::FunctionNotAllowed,
                        format!(
                            "`{name}` needs a literal size of at most {} as its second argument",
                            self.limits.max_sized_argument
                        ),
                    ));
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<Refusal> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

fn literal_integer(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp { expr, .. } | Expr::Nested(expr) => literal_integer(expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(sql: &str) -> &'static str {
        match check_untrusted(sql, &SqlLimits::default()) {
            Ok(_) => "ok",
            Err(r) => r.code.as_str(),
        }
    }

    #[test]
    fn allows_ordinary_queries() {
        for sql in [
            "select 1",
            "with a as (select 1 as x) select * from a",
            "select branch_id, count(*) from deals group by 1 order by 2 desc limit 5",
            "select * from deals d join branches b on d.branch_id = b.branch_id where d.amount > 10",
            "select x from unnest([1, 2]) as t(x)",
            "select repeat('-', 20), lpad(name, 10) from branches",
            "explain select * from deals",
            "select 1 union all select 2",
            "values (1), (2)",
            "show tables",
            "show columns from deals",
            "describe deals",
            "DESC deals",
        ] {
            let r = check_untrusted(sql, &SqlLimits::default());
            assert!(r.is_ok(), "{sql}: {r:?}");
        }
    }

    #[test]
    fn refuses_hostile_shapes() {
        let chain = |op: &str, n: usize| format!("select {}", vec!["1"; n].join(op));
        assert_eq!(code(&chain("+", 5_000)), "sql_too_complex");
        assert_eq!(code(&format!("select * from deals where {}", vec!["a = 1"; 10_000].join(" or "))), "sql_too_large");
        assert_eq!(code(&format!("select * from deals where {}", vec!["a=1"; 2_500].join(" or "))), "sql_too_complex");
        // Under the operator cap but deeper than the depth cap.
        assert_eq!(code(&chain("+", 500)), "sql_too_complex");
        assert_eq!(code(&format!("select {}1{}", "(".repeat(300), ")".repeat(300))), "sql_too_complex");
        assert_eq!(code(&"x".repeat(70_000)), "sql_too_large");
        assert_eq!(code("select * from generate_series(1, 1000000000000)"), "function_not_allowed");
        assert_eq!(code("select generate_series(1, 1e12)"), "function_not_allowed");
        assert_eq!(code("select * from range(1, 100)"), "function_not_allowed");
        assert_eq!(code("select RANGE(1, 100)"), "function_not_allowed");
        assert_eq!(code("select repeat('x', 1000000000)"), "function_not_allowed");
        assert_eq!(code("select repeat('x', amount) from deals"), "function_not_allowed");
        assert_eq!(code("select * from read_csv('/etc/passwd')"), "function_not_allowed");
        assert_eq!(code("select * from 'http://example.com/x.csv'"), "function_not_allowed");
        assert_eq!(code("select * from \"/etc/passwd\""), "function_not_allowed");
        assert_eq!(
            code("with recursive t(n) as (select 1 union all select n + 1 from t) select * from t"),
            "sql_too_complex"
        );
        for bad in [
            "drop table deals",
            "insert into deals values (1)",
            "delete from deals",
            "update deals set amount = 0",
            "create table x as select 1",
            "create external table x stored as csv location '/etc/passwd'",
            "copy deals to '/tmp/x.csv'",
            "copy (select 1) to '/tmp/x.csv'",
            "set datafusion.execution.batch_size = 1",
            "reset datafusion.execution.batch_size",
            "select 1; select 2",
            "explain analyze select 1",
            "explain verbose select 1",
            "explain copy deals to '/tmp/x'",
            "explain deals",
            "describe select 1",
            "",
        ] {
            assert_eq!(code(bad), "bad_sql", "{bad}");
        }
    }
}
