-- Deals not deleted upstream, with the branch (the deal's own, else its manager's), the branch's holding and time zone resolved, and money converted to the reporting currency.
-- Conversion: a deal's amount and commission are in its currency (deals.currency; null = the
-- reporting currency). A deal in another currency is converted with the latest stg_fx_rate on or
-- before its fx_date: the local day it closed for won and lost deals (the money changed hands
-- then; the same close time fct_deal uses: the last stage change into won/lost, else the CRM's
-- close time, else updated_at), the local day it was created for open deals. Open deals do not
-- follow the newest rate: the warehouse has no clock but its data, and a deal's amount must
-- depend on its own rows only, so an incremental build of fct_deal equals a full one.
-- The product is rounded to kopecks half away from zero (the cast to decimal(18,2), the same
-- rule Bitrix24's commission rounding uses). A deal with no rate is never converted at 1 nor
-- dropped: amount and commission are null and amount_null_reason says which rate to add.
-- column deal_id: canonical deal id
-- column source_system: upstream system (source name in dealhouse.toml)
-- column source_id: the deal's id upstream
-- column client_id: the client
-- column manager_id: responsible manager
-- column branch_id: the deal's branch, else its manager's branch
-- column holding_id: holding of that branch
-- column time_zone: IANA zone of that branch; UTC when the deal has no branch
-- column pipeline: pipeline (category) id upstream
-- column stage: current canonical stage
-- column status: open, won or lost
-- column lost_reason: why the deal was lost
-- column amount: deal amount in the reporting currency; null when the source has none or no rate converts it (amount_null_reason)
-- column commission: expected agent commission in the reporting currency, converted like amount
-- column currency: ISO 4217 code of the deal's own money (amount_original, commission_original)
-- column amount_original: deal amount as the source states it, in currency
-- column commission_original: commission as the source states it, in currency
-- column fx_date: the local day whose rate converts the deal (close day of won and lost deals, creation day of open ones)
-- column fx_rate: the rate applied (units of the reporting currency per unit of currency); null for deals in the reporting currency and deals without a rate
-- column fx_rate_date: the day of that rate: the latest stg_fx_rate day on or before fx_date
-- column amount_null_reason: why amount is null (no amount upstream, no rate, conflicting rates); null when amount is set
-- column created_at: creation time (UTC)
-- column updated_at: last modification upstream (UTC)
-- column crm_closed_at: close time as the CRM reports it (editable upstream: fct_deal prefers the stage history)
-- test: unique(deal_id)
-- test: not_null(deal_id, stage, status, created_at, time_zone, currency, fx_date)
-- test: sql: select currency, fx_date, amount_null_reason from stg_deal where amount is null and amount_original is not null
-- test: sql: select deal_id from stg_deal where (amount is null) <> (amount_null_reason is not null)
with reporting as (
    -- Empty until a sync writes the project's [reporting] currency: its default.
    select coalesce(max(currency), 'RUB') as currency from reporting_currency
),
deal as (
    select
        d.*,
        coalesce(d.branch_id, m.branch_id) as resolved_branch_id,
        b.holding_id,
        coalesce(b.time_zone, 'UTC') as resolved_time_zone,
        coalesce(d.currency, r.currency) as deal_currency,
        r.currency as reporting_currency
    from deals d
    left join managers m on m.manager_id = d.manager_id
    left join branches b on b.branch_id = coalesce(d.branch_id, m.branch_id)
    cross join reporting r
    where not d.deleted
),
history_close as (
    select deal_id, to_stage, max(changed_at) as closed_at
    from deal_stage_changes
    where to_stage in ('won', 'lost')
    group by deal_id, to_stage
),
priced as (
    select
        d.*,
        local_date(
            case
                when d.status in ('won', 'lost') then coalesce(h.closed_at, d.closed_at, d.updated_at)
                else d.created_at
            end,
            d.resolved_time_zone
        ) as fx_date
    from deal d
    left join history_close h on h.deal_id = d.deal_id and h.to_stage = d.status
),
rate_day as (
    select p.deal_id, max(r.rate_date) as rate_date
    from priced p
    join stg_fx_rate r on r.currency = p.deal_currency and r.rate_date <= p.fx_date
    where p.deal_currency <> p.reporting_currency
    group by p.deal_id
),
converted as (
    select
        p.*,
        p.deal_currency = p.reporting_currency as in_reporting_currency,
        rd.rate_date as fx_rate_date,
        r.rate as fx_rate,
        r.rates_given
    from priced p
    left join rate_day rd on rd.deal_id = p.deal_id
    left join stg_fx_rate r on r.currency = p.deal_currency and r.rate_date = rd.rate_date
)
select
    deal_id,
    source_system,
    source_id,
    client_id,
    manager_id,
    resolved_branch_id as branch_id,
    holding_id,
    resolved_time_zone as time_zone,
    pipeline,
    stage,
    status,
    lost_reason,
    case
        when in_reporting_currency then amount
        else cast(amount * fx_rate as decimal(18, 2))
    end as amount,
    case
        when in_reporting_currency then commission
        else cast(commission * fx_rate as decimal(18, 2))
    end as commission,
    deal_currency as currency,
    amount as amount_original,
    commission as commission_original,
    fx_date,
    case when not in_reporting_currency then fx_rate end as fx_rate,
    case when not in_reporting_currency then fx_rate_date end as fx_rate_date,
    case
        when amount is null then 'no amount in the source'
        when in_reporting_currency then null
        when fx_rate_date is null then
            'no ' || deal_currency || ' rate on or before ' || cast(fx_date as varchar)
            || ' in fx_rates: add a row (rate_date <= ' || cast(fx_date as varchar) || ', currency '
            || deal_currency || ') to the rates source'
        when fx_rate is null then
            'conflicting ' || deal_currency || ' rates for ' || cast(fx_rate_date as varchar)
            || ' in fx_rates (' || cast(rates_given as varchar) || ' different rates): keep one'
    end as amount_null_reason,
    created_at,
    updated_at,
    closed_at as crm_closed_at
from converted
