//! A section's Arrow columns as typed cells, the one reading of query results every format
//! renders from: money stays an exact decimal string, days stay days, counts stay integers.

use chrono::NaiveDate;
use dealhouse_warehouse::datafusion::arrow::array::{Array, ArrayRef, AsArray};
use dealhouse_warehouse::datafusion::arrow::compute::cast;
use dealhouse_warehouse::datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Float64Type, Int64Type};
use dealhouse_warehouse::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

use super::definition::ColumnFormat;

/// One value of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// Text.
    Text(String),
    /// A whole number.
    Int(i64),
    /// An exact decimal (money), as its text: `1234.50`.
    Decimal(String),
    /// Any other number (a share, hours).
    Float(f64),
    /// A calendar day.
    Date(NaiveDate),
}

impl Cell {
    /// The value as a number, for spreadsheets (a decimal of 18 digits fits a double's 15-17
    /// significant digits up to 10^13 roubles with kopecks).
    pub fn number(&self) -> Option<f64> {
        match self {
            Self::Int(i) => Some(*i as f64),
            Self::Decimal(s) => s.parse().ok(),
            Self::Float(f) if f.is_finite() => Some(*f),
            _ => None,
        }
    }

    /// The value as text: decimals exact, days ISO, `decimal_comma` for spreadsheets in a
    /// Russian locale.
    pub fn text(&self, decimal_comma: bool) -> String {
        let number = |s: String| if decimal_comma { s.replace('.', ",") } else { s };
        match self {
            Self::Null => String::new(),
            Self::Text(s) => s.clone(),
            Self::Int(i) => i.to_string(),
            Self::Decimal(s) => number(s.clone()),
            Self::Float(f) if f.is_finite() => number(f.to_string()),
            Self::Float(_) => String::new(),
            Self::Date(d) => d.format("%Y-%m-%d").to_string(),
        }
    }
}

/// The cells of one column.
pub fn cells(array: &ArrayRef) -> Result<Vec<Cell>, String> {
    let n = array.len();
    let err = |e: dealhouse_warehouse::datafusion::arrow::error::ArrowError| e.to_string();
    let out = match array.data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let a = cast(array, &DataType::Int64).map_err(err)?;
            let a = a.as_primitive::<Int64Type>();
            (0..n).map(|i| if a.is_null(i) { Cell::Null } else { Cell::Int(a.value(i)) }).collect()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let a = cast(array, &DataType::Float64).map_err(err)?;
            let a = a.as_primitive::<Float64Type>();
            (0..n).map(|i| if a.is_null(i) { Cell::Null } else { Cell::Float(a.value(i)) }).collect()
        }
        DataType::Date32 | DataType::Date64 => {
            let a = cast(array, &DataType::Date32).map_err(err)?;
            let a = a.as_primitive::<Date32Type>();
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Cell::Null
                    } else {
                        Cell::Date(epoch + chrono::Duration::days(i64::from(a.value(i))))
                    }
                })
                .collect()
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => formatted(array, Cell::Decimal)?,
        _ => formatted(array, Cell::Text)?,
    };
    Ok(out)
}

/// Arrow's own display of each value (exact for decimals; text for the rest).
fn formatted(array: &ArrayRef, wrap: fn(String) -> Cell) -> Result<Vec<Cell>, String> {
    let f = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).map_err(|e| e.to_string())?;
    Ok((0..array.len()).map(|i| if array.is_null(i) { Cell::Null } else { wrap(f.value(i).to_string()) }).collect())
}

/// The totals row of a section: the sum of each money, count and number column (exact for
/// decimals and integers), nothing under the others.
pub fn totals(columns: &[(ColumnFormat, ArrayRef)]) -> Result<Vec<Cell>, String> {
    columns
        .iter()
        .map(|(format, array)| {
            if !format.is_summed() {
                return Ok(Cell::Null);
            }
            Ok(match array.data_type() {
                DataType::Decimal128(_, scale) => {
                    let a = array.as_primitive::<Decimal128Type>();
                    let sum: i128 = a.iter().flatten().sum();
                    Cell::Decimal(decimal_text(sum, *scale))
                }
                DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                    let a = cast(array, &DataType::Float64).map_err(|e| e.to_string())?;
                    Cell::Float(a.as_primitive::<Float64Type>().iter().flatten().sum())
                }
                DataType::Decimal256(..) => {
                    let a = cast(array, &DataType::Decimal128(38, 6)).map_err(|e| e.to_string())?;
                    Cell::Decimal(decimal_text(a.as_primitive::<Decimal128Type>().iter().flatten().sum(), 6))
                }
                _ => {
                    let a = cast(array, &DataType::Int64).map_err(|e| e.to_string())?;
                    Cell::Int(a.as_primitive::<Int64Type>().iter().flatten().sum())
                }
            })
        })
        .collect()
}

/// An unscaled decimal as text: (123450, 2) -> `1234.50`.
pub fn decimal_text(unscaled: i128, scale: i8) -> String {
    if scale <= 0 {
        return (unscaled * 10i128.pow(u32::from(scale.unsigned_abs()))).to_string();
    }
    let scale = scale as usize;
    let digits = unscaled.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{}{int}.{frac}", if unscaled < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_exactly() {
        assert_eq!(decimal_text(123450, 2), "1234.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(Cell::Decimal("1234.50".into()).text(true), "1234,50");
        assert_eq!(Cell::Float(0.25).text(false), "0.25");
    }
}
