//! The canonical model: the tables every connector fills and every model reads.
//!
//! This file is the single source of the canonical schema. Each table is declared once with
//! [`canonical_table!`]: the macro produces the row struct connectors fill, the Arrow schema
//! the Delta table is created with, and the column docs `dealhouse docs` and
//! `docs/schema.md` print. Every table is keyed by `(source_system, source_id)`: re-syncing a
//! record replaces the old version instead of adding a row.
//!
//! Conventions: ids are strings (`{source}:{upstream id}` for synced records, the config key for
//! organisation records); money is `Decimal128(18, 2)` (a deal's in its `currency`, everything
//! models derive in the reporting currency, `[reporting] currency`); exchange rates are
//! `Decimal128(20, 10)`; instants are
//! `Timestamp(µs, "UTC")`; calendar months are `Date32` holding the first day of the month.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int32Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use rust_decimal::Decimal;

use crate::{Error, Result};

/// Precision and scale of every money column: up to 10^16 units with kopecks (cents).
pub const MONEY_PRECISION: u8 = 18;
/// Kopecks (cents).
pub const MONEY_SCALE: i8 = 2;

/// The Arrow type of money columns.
pub fn money_type() -> DataType {
    DataType::Decimal128(MONEY_PRECISION, MONEY_SCALE)
}

/// Precision of exchange rates: up to 10^10 units of the reporting currency per unit.
pub const RATE_PRECISION: u8 = 20;
/// Ten decimals: a rate per single unit of a small currency (CBR quotes 10,000 IDR as
/// 55.1234 RUB, 0.00551234 per rupiah) stays exact, and `amount * rate` (scale 12) still fits
/// Decimal128 for every amount a money column holds.
pub const RATE_SCALE: i8 = 10;

/// The Arrow type of exchange rates.
pub fn rate_type() -> DataType {
    DataType::Decimal128(RATE_PRECISION, RATE_SCALE)
}

/// The Arrow type of instants: microseconds in UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Money, stored exactly (never as a float): a deal's in its own currency, models' in the
/// reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(pub Decimal);

impl Money {
    /// Kopecks as the scaled integer Arrow stores; errors if it does not fit the column.
    pub fn to_scaled(self) -> Result<i128> {
        let mut d = self.0;
        if d.round_dp(MONEY_SCALE as u32) != d {
            return Err(Error::Money { value: self.0, problem: "has more than 2 decimals; round it at the source" });
        }
        d.rescale(MONEY_SCALE as u32);
        let m = d.mantissa();
        if m.abs() >= 10i128.pow(MONEY_PRECISION as u32) {
            return Err(Error::Money { value: self.0, problem: "exceeds 18 digits" });
        }
        Ok(m)
    }
}

/// An exchange rate: units of the reporting currency per one unit of another, stored exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Rate(pub Decimal);

impl Rate {
    /// The scaled integer Arrow stores; errors if it does not fit the column.
    pub fn to_scaled(self) -> Result<i128> {
        let mut d = self.0;
        if d.round_dp(RATE_SCALE as u32) != d {
            return Err(Error::Money {
                value: self.0,
                problem: "has more than 10 decimals, more than an exchange rate keeps",
            });
        }
        d.rescale(RATE_SCALE as u32);
        let m = d.mantissa();
        if m.abs() >= 10i128.pow(RATE_PRECISION as u32) {
            return Err(Error::Money { value: self.0, problem: "exceeds 10^10, more than an exchange rate holds" });
        }
        Ok(m)
    }
}

impl std::str::FromStr for Money {
    type Err = rust_decimal::Error;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        s.parse::<Decimal>().map(Money)
    }
}

/// A Rust type that maps onto one Arrow column type.
pub trait ColumnType {
    /// The Arrow builder for this type.
    type Builder: ArrayBuilder;
    /// The column's Arrow type.
    fn data_type() -> DataType;
    /// Whether the column admits nulls (`Option<T>` does, `T` does not).
    fn nullable() -> bool;
    /// A builder with room for `n` values.
    fn builder(n: usize) -> Self::Builder;
    /// Appends one value.
    fn append(&self, b: &mut Self::Builder) -> Result<()>;
}

macro_rules! column_type {
    ($t:ty, $builder:ty, $dt:expr, $new:expr, |$v:ident, $b:ident| $append:expr, |$b2:ident| $null:expr) => {
        impl ColumnType for $t {
            type Builder = $builder;
            fn data_type() -> DataType {
                $dt
            }
            fn nullable() -> bool {
                false
            }
            fn builder(n: usize) -> Self::Builder {
                $new(n)
            }
            fn append(&self, $b: &mut Self::Builder) -> Result<()> {
                let $v = self;
                $append;
                Ok(())
            }
        }
        impl ColumnType for Option<$t> {
            type Builder = $builder;
            fn data_type() -> DataType {
                $dt
            }
            fn nullable() -> bool {
                true
            }
            fn builder(n: usize) -> Self::Builder {
                $new(n)
            }
            fn append(&self, b: &mut Self::Builder) -> Result<()> {
                match self {
                    Some(v) => v.append(b),
                    None => {
                        let $b2 = b;
                        $null;
                        Ok(())
                    }
                }
            }
        }
    };
}

column_type!(
    String,
    StringBuilder,
    DataType::Utf8,
    |n| StringBuilder::with_capacity(n, n * 16),
    |v, b| b.append_value(v),
    |b| b.append_null()
);
column_type!(bool, BooleanBuilder, DataType::Boolean, BooleanBuilder::with_capacity, |v, b| b.append_value(*v), |b| b
    .append_null());
column_type!(i32, Int32Builder, DataType::Int32, Int32Builder::with_capacity, |v, b| b.append_value(*v), |b| b
    .append_null());
column_type!(
    NaiveDate,
    Date32Builder,
    DataType::Date32,
    Date32Builder::with_capacity,
    |v, b| b.append_value(date_to_days(*v)),
    |b| b.append_null()
);
column_type!(
    DateTime<Utc>,
    TimestampMicrosecondBuilder,
    timestamp_type(),
    |n| TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC"),
    |v, b| b.append_value(v.timestamp_micros()),
    |b| b.append_null()
);
column_type!(
    Money,
    Decimal128Builder,
    money_type(),
    |n| Decimal128Builder::with_capacity(n)
        .with_precision_and_scale(MONEY_PRECISION, MONEY_SCALE)
        .expect("18,2 is a valid decimal type"),
    |v, b| b.append_value(v.to_scaled()?),
    |b| b.append_null()
);

column_type!(
    Rate,
    Decimal128Builder,
    rate_type(),
    |n| Decimal128Builder::with_capacity(n)
        .with_precision_and_scale(RATE_PRECISION, RATE_SCALE)
        .expect("20,10 is a valid decimal type"),
    |v, b| b.append_value(v.to_scaled()?),
    |b| b.append_null()
);

/// Days since the Unix epoch, as Arrow's Date32 stores them.
pub fn date_to_days(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// One column of a canonical table, for docs and validation.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// Column name.
    pub name: &'static str,
    /// What the column holds.
    pub doc: &'static str,
    /// Arrow type.
    pub data_type: DataType,
    /// Whether nulls are allowed.
    pub nullable: bool,
}

/// A canonical table: its name, what it holds and its columns.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// Table name (also its folder in the warehouse).
    pub name: &'static str,
    /// What one row is.
    pub doc: &'static str,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
}

impl TableDef {
    /// The Arrow schema the Delta table is created with.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns.iter().map(|c| Field::new(c.name, c.data_type.clone(), c.nullable)).collect::<Vec<_>>(),
        ))
    }
}

/// The merge key shared by every canonical table.
pub const KEY_COLUMNS: [&str; 2] = ["source_system", "source_id"];

/// A row type of a canonical table.
pub trait CanonicalRow: Sized {
    /// Table name.
    const TABLE: &'static str;
    /// The table's definition.
    fn table_def() -> TableDef;
    /// Converts rows into one Arrow batch with the table's schema.
    fn to_batch(rows: &[Self]) -> Result<RecordBatch>;
}

macro_rules! canonical_table {
    (
        $(#[doc = $tdoc:literal])*
        $name:ident => $table:literal {
            $( $(#[doc = $cdoc:literal])+ $field:ident : $ty:ty ),+ $(,)?
        }
    ) => {
        $(#[doc = $tdoc])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $( $(#[doc = $cdoc])+ pub $field: $ty, )+
            /// Upstream system: the source's name in `dealhouse.toml` (`config` for the organisation).
            pub source_system: String,
            /// The record's id in that system.
            pub source_id: String,
        }

        impl CanonicalRow for $name {
            const TABLE: &'static str = $table;

            fn table_def() -> TableDef {
                TableDef {
                    name: $table,
                    doc: concat!($($tdoc),*).trim_start(),
                    columns: vec![
                        $( ColumnDef {
                            name: stringify!($field),
                            doc: concat!($($cdoc),+).trim_start(),
                            data_type: <$ty as ColumnType>::data_type(),
                            nullable: <$ty as ColumnType>::nullable(),
                        }, )+
                        ColumnDef { name: "source_system", doc: "Upstream system: the source's name in dealhouse.toml (`config` for the organisation).", data_type: DataType::Utf8, nullable: false },
                        ColumnDef { name: "source_id", doc: "The record's id in that system.", data_type: DataType::Utf8, nullable: false },
                    ],
                }
            }

            fn to_batch(rows: &[Self]) -> Result<RecordBatch> {
                let def = Self::table_def();
                let mut columns: Vec<ArrayRef> = Vec::with_capacity(def.columns.len());
                $({
                    let mut b = <$ty as ColumnType>::builder(rows.len());
                    for r in rows {
                        r.$field.append(&mut b)?;
                    }
                    columns.push(ArrayBuilder::finish(&mut b));
                })+
                for key in [0usize, 1] {
                    let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 8);
                    for r in rows {
                        b.append_value(if key == 0 { &r.source_system } else { &r.source_id });
                    }
                    columns.push(ArrayBuilder::finish(&mut b));
                }
                Ok(RecordBatch::try_new(def.schema(), columns)?)
            }
        }
    };
}

canonical_table! {
    /// A holding: a legal group of branches.
    Holding => "holdings" {
        /// Holding id (config key).
        holding_id: String,
        /// Display name.
        name: String,
    }
}

canonical_table! {
    /// A city branch of a holding, with the time zone its "per day" figures use.
    Branch => "branches" {
        /// Branch id (config key, e.g. `msk`).
        branch_id: String,
        /// Holding the branch belongs to.
        holding_id: String,
        /// Display name.
        name: String,
        /// City.
        city: String,
        /// IANA time zone, e.g. `Asia/Vladivostok`: local days are counted in it.
        time_zone: String,
        /// Date the branch switched its intake to the unified CRM, if it has.
        crm_switch_date: Option<NaiveDate>,
    }
}

canonical_table! {
    /// A sales manager.
    Manager => "managers" {
        /// Manager id (`{source}:{user id}`).
        manager_id: String,
        /// Branch the manager works in.
        branch_id: Option<String>,
        /// Full name.
        name: String,
        /// Whether the account is active upstream.
        active: bool,
    }
}

canonical_table! {
    /// A B2B client: promoter, venue, theatre, sports club or artists' agency.
    Client => "clients" {
        /// Client id (`{source}:{company id}`).
        client_id: String,
        /// Legal or trade name.
        name: String,
        /// Taxpayer number (INN), where known.
        inn: Option<String>,
        /// Client kind: promoter, venue, theatre, sports_club, agency, other, or one added in `[vocabularies]`.
        kind: Option<String>,
        /// Branch that owns the client, where known.
        branch_id: Option<String>,
        /// When the client was created upstream (UTC).
        created_at: Option<DateTime<Utc>>,
    }
}

canonical_table! {
    /// A deal in a sales pipeline, in its latest known state.
    Deal => "deals" {
        /// Deal id (`{source}:{deal id}`).
        deal_id: String,
        /// Deal title.
        title: Option<String>,
        /// Client the deal is with.
        client_id: Option<String>,
        /// Responsible manager.
        manager_id: Option<String>,
        /// Branch (from the manager's department).
        branch_id: Option<String>,
        /// Pipeline (category) id upstream.
        pipeline: String,
        /// Canonical stage: new, contact, proposal, negotiation, contract, won, lost.
        stage: String,
        /// Stage id as the source system names it.
        source_stage: String,
        /// open, won or lost.
        status: String,
        /// Why the deal was lost, if it was.
        lost_reason: Option<String>,
        /// Deal amount (expected ticket revenue) in `currency`, as the source states it.
        amount: Option<Money>,
        /// Expected agent commission in `currency`.
        commission: Option<Money>,
        /// Creation time (UTC).
        created_at: DateTime<Utc>,
        /// Last modification upstream (UTC).
        updated_at: DateTime<Utc>,
        /// Close time as the source reports it (UTC); models prefer the final stage change.
        closed_at: Option<DateTime<Utc>>,
        /// True when the record was deleted upstream (found by reconciliation).
        deleted: bool,
        /// ISO 4217 code of `amount` and `commission` (the row's own, else the source's
        /// `currency`); null in rows stored before currencies were kept, read as the reporting
        /// currency. `stg_deal` converts to the reporting currency.
        currency: Option<String>,
    }
}

canonical_table! {
    /// One move of a deal from one stage to another.
    DealStageChange => "deal_stage_changes" {
        /// Deal that moved.
        deal_id: String,
        /// Canonical stage before the move (null when the deal was created).
        from_stage: Option<String>,
        /// Canonical stage after the move.
        to_stage: String,
        /// When it moved (UTC).
        changed_at: DateTime<Utc>,
        /// Who moved it (manager id), when known.
        changed_by: Option<String>,
    }
}

canonical_table! {
    /// A call, meeting, email, proposal, contract or task.
    Activity => "activities" {
        /// Activity id (`{source}:{activity id}`).
        activity_id: String,
        /// Deal the activity belongs to, if any.
        deal_id: Option<String>,
        /// Client, if known.
        client_id: Option<String>,
        /// Responsible manager.
        manager_id: Option<String>,
        /// call, meeting, email, proposal_sent, contract_signed, task, or one added in `[vocabularies]`.
        activity_type: String,
        /// incoming or outgoing, where it applies.
        direction: Option<String>,
        /// When it happened or starts (UTC).
        at: DateTime<Utc>,
        /// Deadline (UTC), if any.
        due_at: Option<DateTime<Utc>>,
        /// Whether it is done.
        done: bool,
        /// Outcome text.
        result: Option<String>,
    }
}

canonical_table! {
    /// A monthly target for a branch or a manager.
    Plan => "plans" {
        /// First day of the planned month.
        month: NaiveDate,
        /// Branch the target is for.
        branch_id: Option<String>,
        /// Manager the target is for (null for a branch-level target).
        manager_id: Option<String>,
        /// Planned metric: won_amount, commission, deals_won, calls, meetings, new_clients.
        metric: String,
        /// Target value.
        target: Money,
    }
}

canonical_table! {
    /// An exchange rate for a day: what one unit of a currency is worth in the reporting
    /// currency (`[reporting] currency`), loaded like `plans` from a file or SQL source.
    ExchangeRate => "fx_rates" {
        /// The day the rate is for; a deal uses the latest rate on or before its day.
        rate_date: NaiveDate,
        /// ISO 4217 code of the currency the rate prices.
        currency: String,
        /// Units of the reporting currency per one unit of `currency` (positive).
        rate: Rate,
    }
}

canonical_table! {
    /// The reporting currency the project file sets (`[reporting] currency`), written by every
    /// sync like the organisation, so models convert to it and rebuild when it changes.
    ReportingCurrency => "reporting_currency" {
        /// ISO 4217 code every mart reports money in.
        currency: String,
    }
}

canonical_table! {
    /// A request from a department's intake system (legacy or the unified CRM).
    IntakeRequest => "intake_requests" {
        /// Request id (`{source}:{request id}`).
        request_id: String,
        /// Department: marketing, content, docflow, accounting or self_service.
        department: String,
        /// Branch the request came in at.
        branch_id: Option<String>,
        /// Client, if known.
        client_id: Option<String>,
        /// Client taxpayer number (INN), as entered.
        client_inn: Option<String>,
        /// Deal the request became, if linked.
        deal_id: Option<String>,
        /// Short subject.
        subject: Option<String>,
        /// When it was received (UTC).
        created_at: DateTime<Utc>,
        /// new, in_progress, done or rejected.
        status: String,
        /// When it was resolved (UTC).
        resolved_at: Option<DateTime<Utc>>,
        /// The legacy request a migrated request was carried over from, as the migration kept it:
        /// the legacy system's id (`1042`), or `{legacy source}:{id}` when several legacy systems
        /// could hold that id. Empty for requests that never lived in a legacy system, or whose
        /// migration kept no reference.
        legacy_ref: Option<String>,
        /// The amount the request is for, if the system records one (the request's own money,
        /// as entered).
        amount: Option<Money>,
    }
}

canonical_table! {
    /// A record a connector could not parse or map, kept with the reason instead of dropped.
    QuarantineRecord => "quarantine" {
        /// Canonical table the record was meant for.
        entity: String,
        /// Where it came from: file:line, API method and page, table and key.
        location: String,
        /// The raw record as read.
        raw: String,
        /// What was wrong and how to fix it.
        reason: String,
        /// When it was quarantined (UTC).
        quarantined_at: DateTime<Utc>,
        /// The record's id upstream, by which a replay reads it again (the CRM's id, the query's
        /// or the pushed record's `source_id`); empty when the record had none.
        record_id: Option<String>,
        /// Fingerprint of the source's mapping (stage map, `values`, branch codes, queries) the
        /// record failed under: a sync under a different one re-reads the record.
        mapping: Option<String>,
    }
}

/// Every canonical table, in load order (organisation first).
pub fn canonical_tables() -> Vec<TableDef> {
    vec![
        Holding::table_def(),
        Branch::table_def(),
        Manager::table_def(),
        Client::table_def(),
        Deal::table_def(),
        DealStageChange::table_def(),
        Activity::table_def(),
        Plan::table_def(),
        ExchangeRate::table_def(),
        ReportingCurrency::table_def(),
        IntakeRequest::table_def(),
        QuarantineRecord::table_def(),
    ]
}

/// The definition of a canonical table by name.
pub fn canonical_table(name: &str) -> Option<TableDef> {
    canonical_tables().into_iter().find(|t| t.name == name)
}

/// Renders the canonical schema as Markdown (the source of `docs/schema.md`).
pub fn schema_markdown() -> String {
    let mut out = String::from(
        "# Canonical schema\n\nGenerated from `warehouse/src/schema.rs` by `dealhouse docs --schema`; \
         do not edit by hand. Every table is a Delta table keyed by `(source_system, source_id)`.\n",
    );
    for t in canonical_tables() {
        out.push_str(&format!(
            "\n## `{}`\n\n{}\n\n| column | type | null | meaning |\n|---|---|---|---|\n",
            t.name, t.doc
        ));
        for c in &t.columns {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                c.name,
                c.data_type,
                if c.nullable { "yes" } else { "no" },
                c.doc
            ));
        }
    }
    out
}

/// Canonical pipeline stages in order; `lost` is terminal and off the main path.
pub const STAGES: [&str; 7] = ["new", "contact", "proposal", "negotiation", "contract", "won", "lost"];

/// Standard client kinds (`clients.kind`); `[vocabularies] client_kind` adds more.
pub const CLIENT_KINDS: [&str; 6] = ["promoter", "venue", "theatre", "sports_club", "agency", "other"];

/// Standard activity types (`activities.activity_type`); `[vocabularies] activity_type` adds more.
pub const ACTIVITY_TYPES: [&str; 6] = ["call", "meeting", "email", "proposal_sent", "contract_signed", "task"];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn deal_batch_has_declared_schema_and_exact_money() {
        let d = Deal {
            deal_id: "crm:1".into(),
            title: None,
            client_id: Some("crm:7".into()),
            manager_id: None,
            branch_id: Some("msk".into()),
            pipeline: "0".into(),
            stage: "won".into(),
            source_stage: "WON".into(),
            status: "won".into(),
            lost_reason: None,
            amount: Some("1234.56".parse().unwrap()),
            commission: Some("123.5".parse().unwrap()),
            created_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            updated_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            closed_at: None,
            deleted: false,
            currency: Some("USD".into()),
            source_system: "crm".into(),
            source_id: "1".into(),
        };
        let batch = Deal::to_batch(&[d]).unwrap();
        assert_eq!(batch.schema(), Deal::table_def().schema());
        let amount = batch
            .column_by_name("amount")
            .unwrap()
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Decimal128Array>()
            .unwrap();
        assert_eq!(amount.value(0), 123456);
        let commission = batch.column_by_name("commission").unwrap();
        assert_eq!(datafusion::arrow::util::display::array_value_to_string(commission, 0).unwrap(), "123.50");
    }

    #[test]
    fn money_that_does_not_fit_is_an_error_not_a_rounding() {
        assert!(Money("0.001".parse().unwrap()).to_scaled().is_err());
        assert!(Money("1e17".parse::<Decimal>().unwrap_or(Decimal::MAX)).to_scaled().is_err());
    }

    #[test]
    fn rates_keep_ten_decimals_exactly() {
        // 10,000 IDR = 55.1234 RUB: 0.00551234 per rupiah, 55123400 at scale 10.
        assert_eq!(Rate("0.00551234".parse().unwrap()).to_scaled().unwrap(), 55_123_400);
        assert_eq!(Rate("91.2525".parse().unwrap()).to_scaled().unwrap(), 912_525_000_000);
        assert!(Rate("0.00000000001".parse().unwrap()).to_scaled().is_err());
        assert!(Rate("10000000000".parse().unwrap()).to_scaled().is_err());
        assert_eq!(ExchangeRate::table_def().schema().field_with_name("rate").unwrap().data_type(), &rate_type());
    }

    #[test]
    fn every_table_has_the_merge_key() {
        for t in canonical_tables() {
            for k in KEY_COLUMNS {
                assert!(t.columns.iter().any(|c| c.name == k && !c.nullable), "{} lacks {k}", t.name);
            }
        }
    }
}
