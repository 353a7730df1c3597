-- Exchange rates, one per currency and day: what one unit of the currency is worth in the reporting currency. When sources give one day different rates, the day has no rate (rate null, rates_given > 1) rather than a guess, and the deals priced on it say so in stg_deal.amount_null_reason.
-- column currency: ISO 4217 code the rate prices
-- column rate_date: the day the rate is for
-- column rate: units of the reporting currency per unit of currency; null when the day's rows disagree
-- column rates_given: distinct rates the rows of fx_rates give for the currency and day (1 unless they disagree)
-- test: unique(currency, rate_date)
-- test: not_null(currency, rate_date, rates_given)
-- test: sql: select currency, rate_date, rates_given from stg_fx_rate where rates_given > 1
-- test: sql: select currency, rate_date, rate from stg_fx_rate where rate <= 0
select
    currency,
    rate_date,
    case when count(distinct rate) = 1 then min(rate) end as rate,
    count(distinct rate) as rates_given
from fx_rates
group by currency, rate_date
