//! PostgreSQL and MySQL/MariaDB values as the record mapper's [`RawValue`]s.
//!
//! Each value is read by its column's type: NUMERIC/DECIMAL as an exact decimal (never through
//! a float), integers as integers, text as text, timestamps without zone as wall-clock times (the
//! source's `time_zone` applies later), PostgreSQL `timestamptz` and MySQL `TIMESTAMP` as UTC
//! instants. A value that cannot be read becomes [`RawValue::Invalid`] with what it was and how
//! to fix it, so its row is quarantined with that reason instead of failing the sync.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use rust_decimal::Decimal;
use sqlx_core::column::Column;
use sqlx_core::row::Row;
use sqlx_core::type_info::TypeInfo;
use sqlx_core::value::ValueRef;
use sqlx_mysql::MySqlRow;
use sqlx_postgres::{PgRow, PgTypeKind};

use crate::mapping::{RawValue, Record};

/// A PostgreSQL row as a record named by its result columns.
pub fn pg_record(row: &PgRow) -> Record {
    let mut record = Record::new();
    for (i, column) in row.columns().iter().enumerate() {
        record.push(column.name(), pg_value(row, i));
    }
    record
}

/// A MySQL/MariaDB row as a record named by its result columns.
pub fn mysql_record(row: &MySqlRow) -> Record {
    let mut record = Record::new();
    for (i, column) in row.columns().iter().enumerate() {
        record.push(column.name(), mysql_value(row, i));
    }
    record
}

fn pg_value(row: &PgRow, i: usize) -> RawValue {
    match row.try_get_raw(i) {
        Ok(v) if v.is_null() => return RawValue::Null,
        Ok(_) => {}
        Err(e) => return RawValue::Invalid(format!("a value that cannot be read ({e})")),
    }
    let type_info = row.columns()[i].type_info();
    // Built-in types are named in capitals, extension types (citext) as created.
    let upper = type_info.name().to_ascii_uppercase();
    let name = upper.as_str();
    let value = match name {
        "BOOL" => row.try_get::<bool, _>(i).map(RawValue::Bool),
        "INT2" => row.try_get::<i16, _>(i).map(|v| RawValue::Int(v.into())),
        "INT4" => row.try_get::<i32, _>(i).map(|v| RawValue::Int(v.into())),
        "INT8" => row.try_get::<i64, _>(i).map(RawValue::Int),
        "FLOAT4" => row.try_get::<f32, _>(i).map(float4),
        "FLOAT8" => row.try_get::<f64, _>(i).map(RawValue::Float),
        "NUMERIC" => row.try_get::<Decimal, _>(i).map(RawValue::Decimal),
        // Text-like types are UTF-8 on the wire whatever the database encoding (the server
        // converts to the client encoding, which sqlx sets to UTF-8).
        "TEXT" | "VARCHAR" | "CHAR" | "NAME" | "UNKNOWN" | "CITEXT" => {
            row.try_get_unchecked::<String, _>(i).map(RawValue::Text)
        }
        "DATE" | "TIMESTAMP" | "TIMESTAMPTZ" => return pg_time(row, i, name),
        // An enum's value travels as its label.
        _ if matches!(type_info.kind(), PgTypeKind::Enum(_)) => {
            row.try_get_unchecked::<String, _>(i).map(RawValue::Text)
        }
        other => {
            return RawValue::Invalid(format!(
                "a PostgreSQL `{}` value, which is not read directly; cast it in the query \
                 (`column::text`, or `column::numeric` for money)",
                other.to_lowercase()
            ));
        }
    };
    value.unwrap_or_else(|e| {
        RawValue::Invalid(format!(
            "a PostgreSQL `{}` value that cannot be read ({e}); cast it in the query (e.g. `column::text`)",
            name.to_lowercase()
        ))
    })
}

/// PostgreSQL dates and timestamps from their binary form (days or microseconds since
/// 2000-01-01), so `infinity` and values beyond chrono's range become a reason instead of a panic.
fn pg_time(row: &PgRow, i: usize, name: &str) -> RawValue {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default().and_time(NaiveTime::MIN);
    let shown = name.to_lowercase();
    let (time, infinite) = if name == "DATE" {
        match row.try_get_unchecked::<i32, _>(i) {
            Ok(days) => {
                (epoch.checked_add_signed(chrono::Duration::days(days.into())), matches!(days, i32::MAX | i32::MIN))
            }
            Err(e) => return RawValue::Invalid(format!("a PostgreSQL `date` value that cannot be read ({e})")),
        }
    } else {
        match row.try_get_unchecked::<i64, _>(i) {
            Ok(micros) => (
                epoch.checked_add_signed(chrono::Duration::microseconds(micros)),
                matches!(micros, i64::MAX | i64::MIN),
            ),
            Err(e) => return RawValue::Invalid(format!("a PostgreSQL `{shown}` value that cannot be read ({e})")),
        }
    };
    match time {
        _ if infinite => RawValue::Invalid(format!(
            "the PostgreSQL {shown} `infinity`, which is no point in time; turn it into NULL in the query              (nullif(column, 'infinity'))"
        )),
        None => RawValue::Invalid(format!("a PostgreSQL {shown} beyond the years dealhouse can represent")),
        Some(t) if name == "TIMESTAMPTZ" => RawValue::Utc(t.and_utc()),
        Some(t) if name == "DATE" => RawValue::Date(t.date()),
        Some(t) => RawValue::DateTime(t),
    }
}

fn mysql_value(row: &MySqlRow, i: usize) -> RawValue {
    let name = row.columns()[i].type_info().name();
    // sqlx reads a zero date as NULL; it is a value that is no point in time, so its row goes to
    // quarantine with the fix rather than losing the value silently.
    if matches!(name, "DATE" | "DATETIME" | "TIMESTAMP") && is_zero_date(row, i) {
        return RawValue::Invalid(format!(
            "the MySQL zero {} 0000-00-00, which is no point in time; turn it into NULL in the query \
             (NULLIF(column, '0000-00-00'))",
            name.to_lowercase()
        ));
    }
    match row.try_get_raw(i) {
        Ok(v) if v.is_null() => return RawValue::Null,
        Ok(_) => {}
        Err(e) => return RawValue::Invalid(format!("a value that cannot be read ({e})")),
    }
    let value = match name {
        // BOOLEAN is TINYINT(1), which may hold any small number: keep the number, the mapper
        // reads 0/1 as false/true. Integers of every width decode through the widest type.
        "BOOLEAN" | "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "BIGINT" => {
            row.try_get_unchecked::<i64, _>(i).map(RawValue::Int)
        }
        // Above i64::MAX the exact digits still fit a text value.
        "TINYINT UNSIGNED" | "SMALLINT UNSIGNED" | "MEDIUMINT UNSIGNED" | "INT UNSIGNED" | "BIGINT UNSIGNED"
        | "YEAR" => row
            .try_get_unchecked::<u64, _>(i)
            .map(|v| i64::try_from(v).map_or_else(|_| RawValue::Text(v.to_string()), RawValue::Int)),
        "FLOAT" => row.try_get::<f32, _>(i).map(float4),
        "DOUBLE" => row.try_get::<f64, _>(i).map(RawValue::Float),
        // DECIMAL travels as its digits; read them exactly (a plain parse would round past 28
        // digits instead of refusing).
        "DECIMAL" => row.try_get_unchecked::<String, _>(i).map(|digits| match Decimal::from_str_exact(&digits) {
            Ok(d) => RawValue::Decimal(d),
            Err(_) => RawValue::Invalid(format!(
                "the DECIMAL `{digits}`, which has more than 28 significant digits; round it in the query"
            )),
        }),
        // The connection's character set is utf8mb4, so the server converts latin1, cp1251 ...
        // columns to UTF-8 before sending them.
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" | "JSON" => {
            row.try_get_unchecked::<String, _>(i).map(RawValue::Text)
        }
        // Binary strings, and text columns with a binary collation (flagged binary on the wire):
        // text when the bytes are UTF-8.
        "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            row.try_get_unchecked::<Vec<u8>, _>(i).map(|bytes| match String::from_utf8(bytes) {
                Ok(text) => RawValue::Text(text),
                Err(e) => RawValue::Invalid(format!(
                    "{} bytes of binary data that are not UTF-8 text; convert them in the query \
                     (e.g. CONVERT(column USING cp1251) for Windows-1251 bytes)",
                    e.as_bytes().len()
                )),
            })
        }
        "DATE" => row.try_get::<NaiveDate, _>(i).map(RawValue::Date),
        "DATETIME" => row.try_get::<NaiveDateTime, _>(i).map(RawValue::DateTime),
        // The session time zone is UTC (sqlx sets it), so TIMESTAMP values arrive as UTC.
        "TIMESTAMP" => row.try_get::<DateTime<Utc>, _>(i).map(RawValue::Utc),
        other => {
            return RawValue::Invalid(format!(
                "a MySQL `{}` value, which is not read directly; cast it in the query (CAST(column AS CHAR))",
                other.to_lowercase()
            ));
        }
    };
    value.unwrap_or_else(|e| {
        RawValue::Invalid(format!(
            "a MySQL `{}` value that cannot be read ({e}); fix it at the source or cast it in the query",
            name.to_lowercase()
        ))
    })
}

/// A zero date: in the binary protocol a value of length 0 (its first byte), in the text
/// protocol the digits `0000-00-00`. A real NULL has no bytes at all.
fn is_zero_date(row: &MySqlRow, i: usize) -> bool {
    row.try_get_unchecked::<Vec<u8>, _>(i)
        .is_ok_and(|bytes| bytes.first() == Some(&0) || bytes.starts_with(b"0000-00-00"))
}

/// A single-precision float through its shortest text, so `0.1::real` is 0.1 and not
/// 0.100000001490116.
fn float4(v: f32) -> RawValue {
    v.to_string().parse::<f64>().map_or(RawValue::Float(f64::from(v)), RawValue::Float)
}
