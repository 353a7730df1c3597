//! Refusals and failures as PostgreSQL errors: the SQLSTATE a client library recognises, a
//! message, and a hint saying what to change.

use dealhouse_warehouse::datafusion::error::DataFusionError;
use dealhouse_warehouse::sql_guard::RefusalCode;
use pgwire::error::{ErrorInfo, PgWireError};

use crate::{ApiError, ErrorCode};

/// An error that ends the connection (login refusals, too many connections).
pub(super) fn fatal(code: &str, message: &str, hint: &str) -> PgWireError {
    PgWireError::UserError(Box::new(info("FATAL", code, message, Some(hint))))
}

/// An error that ends the statement; the connection stays usable.
pub(super) fn error(code: &str, message: impl Into<String>, hint: Option<&str>) -> PgWireError {
    PgWireError::UserError(Box::new(info("ERROR", code, &message.into(), hint)))
}

fn info(severity: &str, code: &str, message: &str, hint: Option<&str>) -> ErrorInfo {
    let mut info = ErrorInfo::new(severity.to_owned(), code.to_owned(), message.to_owned());
    info.hint = hint.map(str::to_owned);
    info
}

/// A statement that would change something: the warehouse is served read-only.
pub(super) fn read_only(statement: &str) -> PgWireError {
    let words: Vec<&str> = statement.split_whitespace().take(3).collect();
    error(
        "25006",
        format!("cannot execute {} in a read-only connection", words.join(" ")),
        Some("dealhouse serves the warehouse read-only: send SELECT, WITH, VALUES, EXPLAIN or SHOW"),
    )
}

/// A statement refused or failed while being planned.
pub(super) fn of_planning(e: dealhouse_warehouse::Error) -> PgWireError {
    use dealhouse_warehouse::Error as W;
    match e {
        W::Refused { code, message } => match code {
            RefusalCode::SqlTooLarge | RefusalCode::SqlTooComplex => {
                error("54000", message, Some("simplify the query: fewer terms, less nesting, IN (...) for OR chains"))
            }
            RefusalCode::FunctionNotAllowed => error("42501", message, None),
            RefusalCode::BadSql if message.starts_with("SQL syntax error") => error("42601", message, None),
            RefusalCode::BadSql if message.starts_with("only one read-only") => error(
                "25006",
                message,
                Some("dealhouse serves the warehouse read-only: send SELECT, WITH, VALUES, EXPLAIN or SHOW"),
            ),
            RefusalCode::BadSql => error("42601", message, None),
        },
        W::DataFusion(e) => of_datafusion(e),
        e if e.is_bad_sql() => error("42601", e.to_string(), None),
        other => {
            tracing::error!(error = %other, "PostgreSQL statement failed");
            error("XX000", "internal error; see the server log", None)
        }
    }
}

fn of_datafusion(e: DataFusionError) -> PgWireError {
    let message = e.to_string();
    match e.find_root() {
        DataFusionError::SchemaError(..) => error("42703", message, None),
        DataFusionError::Plan(m) if m.contains("not found") && m.contains("table") => error(
            "42P01",
            message,
            Some("\\dt (or SELECT table_name FROM information_schema.tables) lists the tables you may read"),
        ),
        DataFusionError::NotImplemented(_) => error("0A000", message, None),
        DataFusionError::ResourcesExhausted(_) => {
            error("53200", message, Some("aggregate more or select fewer rows; the server's memory is shared"))
        }
        DataFusionError::Plan(_) | DataFusionError::SQL(..) => error("42601", message, None),
        _ => error("22000", message, None),
    }
}

/// An error of a run under the server's limits ([`crate::sql::run_limited`]).
pub(super) fn of_run(e: ApiError) -> PgWireError {
    let (code, hint) = match e.code {
        ErrorCode::QueryTimeout => {
            ("57014", Some("filter or aggregate more; [server] query_timeout_seconds is the limit"))
        }
        ErrorCode::Busy => ("53000", Some("retry shortly; [server] max_concurrent_queries is the limit")),
        ErrorCode::MemoryLimit => ("53200", Some("aggregate more or select fewer rows")),
        ErrorCode::SqlTooLarge | ErrorCode::SqlTooComplex => ("54000", None),
        ErrorCode::FunctionNotAllowed => ("42501", None),
        ErrorCode::BadSql => ("42601", None),
        ErrorCode::QueryFailed => ("22000", None),
        _ => ("XX000", None),
    };
    error(code, e.message, hint)
}

/// An answer past the row or byte cap: refused rather than cut, since a client would take a cut
/// answer for the whole one.
pub(super) fn too_large(max_rows: usize, max_mb: usize) -> PgWireError {
    error(
        "54000",
        format!("the answer is larger than this server sends at once ({max_rows} rows or {max_mb} MiB)"),
        Some("add LIMIT, filter or aggregate; [server] max_result_rows and max_result_mb are the limits"),
    )
}
