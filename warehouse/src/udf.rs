//! Scalar SQL functions the models need and DataFusion lacks: calendar arithmetic in a per-row
//! IANA time zone (each branch counts its days and months in its own zone, and DataFusion can
//! only convert with one constant zone per expression).
//!
//! - `local_date(ts, tz) -> Date32`: the calendar day `ts` falls on in zone `tz`.
//! - `local_month(ts, tz) -> Date32`: the first day of the month `ts` falls in, in zone `tz`.
//! - `month_diff(later, earlier) -> Int32`: whole calendar months from `earlier` to `later`
//!   (dates; only their year and month count), for cohort grids and rolling windows.
//! - `seconds_between(earlier, later) -> Int64`: whole seconds from `earlier` to `later`
//!   (timestamps), truncated toward zero: durations as exact integers, so sums and means of them
//!   do not depend on the order rows are added in, as float sums do.
//!
//! Null inputs give null. An unknown zone is an execution error naming the zone and the fix.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate};
use chrono_tz::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use datafusion::prelude::SessionContext;

use crate::schema::date_to_days;

/// Registers every dealhouse function on a context and returns it.
pub fn with_udfs(ctx: SessionContext) -> SessionContext {
    for f in udfs() {
        ctx.register_udf(f);
    }
    ctx
}

/// Every dealhouse function.
pub fn udfs() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(LocalCalendar::new(LocalUnit::Date)),
        ScalarUDF::new_from_impl(LocalCalendar::new(LocalUnit::Month)),
        ScalarUDF::new_from_impl(MonthDiff::new()),
        ScalarUDF::new_from_impl(SecondsBetween::new()),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum LocalUnit {
    Date,
    Month,
}

/// `local_date` / `local_month`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalCalendar {
    unit: LocalUnit,
    signature: Signature,
}

impl LocalCalendar {
    fn new(unit: LocalUnit) -> Self {
        Self { unit, signature: Signature::user_defined(Volatility::Immutable) }
    }
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

impl ScalarUDFImpl for LocalCalendar {
    fn name(&self) -> &str {
        match self.unit {
            LocalUnit::Date => "local_date",
            LocalUnit::Month => "local_month",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Date32)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let name = self.name();
        let [ts, tz] = arg_types else {
            return plan_err!("{name}(ts, tz) takes 2 arguments, got {}", arg_types.len());
        };
        // Every unit and zone converts losslessly enough to UTC microseconds (the canonical
        // instant type); a zone-less timestamp is read as UTC, as the canonical tables store it.
        let ts = match ts {
            DataType::Timestamp(_, _) | DataType::Null => utc_micros(),
            other => return plan_err!("{name}: first argument must be a timestamp, got {other}"),
        };
        let tz = match tz {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => DataType::Utf8,
            other => return plan_err!("{name}: second argument must be an IANA time zone name (text), got {other}"),
        };
        Ok(vec![ts, tz])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [ts, tz] = arrays.as_slice() else {
            return exec_err!("{}(ts, tz) takes 2 arguments, got {}", self.name(), arrays.len());
        };
        let ts = ts.as_primitive_opt::<TimestampMicrosecondType>().ok_or_else(|| {
            datafusion::error::DataFusionError::Execution(format!(
                "{}: expected a microsecond timestamp after coercion, got {}",
                self.name(),
                ts.data_type()
            ))
        })?;
        let tz = tz.as_string_opt::<i32>().ok_or_else(|| {
            datafusion::error::DataFusionError::Execution(format!(
                "{}: expected a text time zone after coercion, got {}",
                self.name(),
                tz.data_type()
            ))
        })?;
        let mut zones: HashMap<&str, Tz> = HashMap::new();
        let mut out = Vec::with_capacity(ts.len());
        for i in 0..ts.len() {
            if ts.is_null(i) || tz.is_null(i) {
                out.push(None);
                continue;
            }
            let name = tz.value(i);
            let zone = match zones.get(name) {
                Some(z) => *z,
                None => {
                    let z = parse_zone(self.name(), name)?;
                    zones.insert(name, z);
                    z
                }
            };
            let micros = ts.value(i);
            let Some(instant) = DateTime::from_timestamp_micros(micros) else {
                return exec_err!("{}: timestamp {micros} µs is out of the representable range", self.name());
            };
            let day = instant.with_timezone(&zone).date_naive();
            let day = match self.unit {
                LocalUnit::Date => day,
                LocalUnit::Month => first_of_month(day),
            };
            out.push(Some(date_to_days(day)));
        }
        let array: ArrayRef = Arc::new(Date32Array::from(out));
        finish(array, all_scalar)
    }
}

fn parse_zone(function: &str, name: &str) -> Result<Tz> {
    name.parse::<Tz>().or_else(|_| {
        exec_err!(
            "{function}: unknown time zone `{name}`; use an IANA name such as `Europe/Moscow` or \
             `Asia/Vladivostok` (fix the branch's time_zone in dealhouse.toml)"
        )
    })
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// Returns a scalar when every input was a scalar, so constant folding keeps working.
fn finish(array: ArrayRef, all_scalar: bool) -> Result<ColumnarValue> {
    if all_scalar && array.len() == 1 {
        return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?));
    }
    Ok(ColumnarValue::Array(array))
}

/// `month_diff(later, earlier)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct MonthDiff {
    signature: Signature,
}

impl MonthDiff {
    fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for MonthDiff {
    fn name(&self) -> &str {
        "month_diff"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("month_diff(later, earlier) takes 2 arguments, got {}", arg_types.len());
        }
        arg_types
            .iter()
            .map(|t| match t {
                DataType::Date32 | DataType::Date64 | DataType::Null => Ok(DataType::Date32),
                other => plan_err!("month_diff: arguments must be dates, got {other}; cast timestamps with local_date"),
            })
            .collect()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [later, earlier] = arrays.as_slice() else {
            return exec_err!("month_diff(later, earlier) takes 2 arguments, got {}", arrays.len());
        };
        let (Some(later), Some(earlier)) = (
            later.as_primitive_opt::<datafusion::arrow::datatypes::Date32Type>(),
            earlier.as_primitive_opt::<datafusion::arrow::datatypes::Date32Type>(),
        ) else {
            return exec_err!("month_diff: expected dates after coercion");
        };
        let months = |days: i32| {
            let d = NaiveDate::from_num_days_from_ce_opt(days.saturating_add(EPOCH_DAYS_FROM_CE))?;
            Some(d.year() * 12 + d.month0() as i32)
        };
        let out: Int32Array = later.iter().zip(earlier.iter()).map(|(a, b)| Some(months(a?)? - months(b?)?)).collect();
        finish(Arc::new(out), all_scalar)
    }
}

/// `seconds_between(earlier, later)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SecondsBetween {
    signature: Signature,
}

impl SecondsBetween {
    fn new() -> Self {
        Self { signature: Signature::user_defined(Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for SecondsBetween {
    fn name(&self) -> &str {
        "seconds_between"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != 2 {
            return plan_err!("seconds_between(earlier, later) takes 2 arguments, got {}", arg_types.len());
        }
        arg_types
            .iter()
            .map(|t| match t {
                DataType::Timestamp(_, _) | DataType::Null => Ok(utc_micros()),
                other => plan_err!("seconds_between: arguments must be timestamps, got {other}"),
            })
            .collect()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args.args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [earlier, later] = arrays.as_slice() else {
            return exec_err!("seconds_between(earlier, later) takes 2 arguments, got {}", arrays.len());
        };
        let (Some(earlier), Some(later)) = (
            earlier.as_primitive_opt::<TimestampMicrosecondType>(),
            later.as_primitive_opt::<TimestampMicrosecondType>(),
        ) else {
            return exec_err!("seconds_between: expected microsecond timestamps after coercion");
        };
        // Whole seconds of the exact difference, truncated toward zero (so swapping the
        // arguments only flips the sign); in i128, where no difference of two i64 overflows, and
        // any such difference in seconds fits an i64 again.
        let seconds = |a: i64, b: i64| i64::try_from((i128::from(b) - i128::from(a)) / 1_000_000).ok();
        let out: Int64Array = earlier.iter().zip(later.iter()).map(|(a, b)| seconds(a?, b?)).collect();
        finish(Arc::new(out), all_scalar)
    }
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01, Arrow's day 0.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::display::array_value_to_string;

    async fn one(sql: &str) -> Result<String> {
        let ctx = with_udfs(SessionContext::new());
        let batches = ctx.sql(sql).await?.collect().await?;
        let b = &batches[0];
        Ok(array_value_to_string(b.column(0), 0)?)
    }

    async fn column(sql: &str) -> Vec<String> {
        let ctx = with_udfs(SessionContext::new());
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches
            .iter()
            .flat_map(|b| (0..b.num_rows()).map(|i| array_value_to_string(b.column(0), i).unwrap()).collect::<Vec<_>>())
            .collect()
    }

    #[tokio::test]
    async fn vladivostok_and_moscow_see_different_days_around_midnight() {
        // 2025-03-31 14:30 UTC = 2025-04-01 00:30 in Vladivostok (UTC+10) = 17:30 in Moscow (UTC+3).
        let ts = "timestamp '2025-03-31T14:30:00Z'";
        assert_eq!(one(&format!("select local_date({ts}, 'Asia/Vladivostok')")).await.unwrap(), "2025-04-01");
        assert_eq!(one(&format!("select local_date({ts}, 'Europe/Moscow')")).await.unwrap(), "2025-03-31");
        assert_eq!(one(&format!("select local_month({ts}, 'Asia/Vladivostok')")).await.unwrap(), "2025-04-01");
        assert_eq!(one(&format!("select local_month({ts}, 'Europe/Moscow')")).await.unwrap(), "2025-03-01");
        // 13:59:59 UTC is still 23:59:59 on the 31st in Vladivostok.
        let before = "timestamp '2025-03-31T13:59:59Z'";
        assert_eq!(one(&format!("select local_date({before}, 'Asia/Vladivostok')")).await.unwrap(), "2025-03-31");
        // Moscow turns the day at 21:00 UTC.
        let moscow_midnight = "timestamp '2025-03-31T21:00:00Z'";
        assert_eq!(one(&format!("select local_date({moscow_midnight}, 'Europe/Moscow')")).await.unwrap(), "2025-04-01");
    }

    #[tokio::test]
    async fn dst_era_offsets_come_from_the_tz_database() {
        // Moscow kept UTC+4 all year from 2011-03-27 to 2014-10-26, and had summer time (UTC+4,
        // winter UTC+3) before that: 2010-07-01 20:30 UTC is 00:30 on 07-02 under UTC+4 ...
        let summer = "timestamp '2010-07-01T20:30:00Z'";
        assert_eq!(one(&format!("select local_date({summer}, 'Europe/Moscow')")).await.unwrap(), "2010-07-02");
        // ... while 2010-01-01 20:30 UTC is 23:30 on 01-01 under winter UTC+3.
        let winter = "timestamp '2010-01-01T20:30:00Z'";
        assert_eq!(one(&format!("select local_date({winter}, 'Europe/Moscow')")).await.unwrap(), "2010-01-01");
        // Vladivostok was UTC+11 in 2013 (the 2011-2014 "permanent summer time"), UTC+10 today.
        let y2013 = "timestamp '2013-01-31T13:30:00Z'";
        assert_eq!(one(&format!("select local_month({y2013}, 'Asia/Vladivostok')")).await.unwrap(), "2013-02-01");
        let y2025 = "timestamp '2025-01-31T13:30:00Z'";
        assert_eq!(one(&format!("select local_month({y2025}, 'Asia/Vladivostok')")).await.unwrap(), "2025-01-01");
    }

    #[tokio::test]
    async fn null_inputs_give_null_and_columns_mix_zones() {
        assert_eq!(one("select local_date(cast(null as timestamp), 'Europe/Moscow')").await.unwrap(), "");
        assert_eq!(one("select local_month(timestamp '2025-01-01T00:00:00Z', null)").await.unwrap(), "");
        let rows = column(
            "select local_date(ts, tz) from (values \
               (timestamp '2025-06-30T15:00:00Z', 'Asia/Vladivostok'), \
               (timestamp '2025-06-30T15:00:00Z', 'Europe/Moscow'), \
               (timestamp '2025-06-30T15:00:00Z', null), \
               (null, 'Europe/Moscow')) as t(ts, tz)",
        )
        .await;
        assert_eq!(rows, vec!["2025-07-01", "2025-06-30", "", ""]);
    }

    #[tokio::test]
    async fn unknown_zone_is_a_clear_error() {
        let e =
            one("select local_date(timestamp '2025-01-01T00:00:00Z', 'Mars/Olympus')").await.unwrap_err().to_string();
        assert!(e.contains("unknown time zone `Mars/Olympus`") && e.contains("IANA"), "{e}");
        let e = one("select local_month(ts, tz) from (values (timestamp '2025-01-01T00:00:00Z', 'MSK')) as t(ts, tz)")
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("local_month") && e.contains("`MSK`"), "{e}");
        let e = one("select local_date(1, 'Europe/Moscow')").await.unwrap_err().to_string();
        assert!(e.contains("must be a timestamp"), "{e}");
    }

    #[tokio::test]
    async fn seconds_between_is_the_exact_difference_in_whole_seconds() {
        let at = |s: &str| format!("timestamp '{s}'");
        let between = |a: &str, b: &str| format!("select seconds_between({}, {})", at(a), at(b));
        // 1 h 0 min 1.999999 s: whole seconds, not rounded.
        assert_eq!(one(&between("2025-01-01T10:00:00Z", "2025-01-01T11:00:01.999999Z")).await.unwrap(), "3601");
        // Swapped: the same seconds, negative (truncated toward zero, not floored to -3602).
        assert_eq!(one(&between("2025-01-01T11:00:01.999999Z", "2025-01-01T10:00:00Z")).await.unwrap(), "-3601");
        // Across Moscow's 2014-10-26 change from UTC+4 to UTC+3: instants, so 24 h = 86400 s.
        assert_eq!(one(&between("2014-10-25T12:00:00Z", "2014-10-26T12:00:00Z")).await.unwrap(), "86400");
        // Zone-less and second-unit timestamps are read as UTC instants like the canonical ones.
        assert_eq!(
            one("select seconds_between(arrow_cast(timestamp '2025-01-01T00:00:00', 'Timestamp(Second, None)'), \
                 timestamp '2025-01-02T00:00:00Z')")
            .await
            .unwrap(),
            "86400"
        );
        assert_eq!(one("select seconds_between(null, timestamp '2025-01-01T00:00:00Z')").await.unwrap(), "");
        let e = one("select seconds_between(1, 2)").await.unwrap_err().to_string();
        assert!(e.contains("seconds_between") && e.contains("must be timestamps"), "{e}");
    }

    #[tokio::test]
    async fn month_diff_counts_calendar_months() {
        assert_eq!(one("select month_diff(date '2025-03-31', date '2024-12-01')").await.unwrap(), "3");
        assert_eq!(one("select month_diff(date '2024-12-01', date '2025-03-31')").await.unwrap(), "-3");
        assert_eq!(one("select month_diff(date '2025-01-01', date '2025-01-31')").await.unwrap(), "0");
        assert_eq!(one("select month_diff(date '2025-01-01', null)").await.unwrap(), "");
    }
}
