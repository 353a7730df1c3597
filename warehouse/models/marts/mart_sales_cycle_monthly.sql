-- Sales cycle of won deals (close time - created_at) per local month of the close, holding, branch and manager. Mean = cycle_seconds_sum / won_deals after summing; the median does not roll up (take it from fct_deal for other groupings). Every figure comes from whole seconds, so a rebuild gives the same digits.
-- column month: first day of the local month of closed_at
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column won_deals: deals won
-- column cycle_seconds_sum: sum of their cycles in whole seconds (exact: sum and divide by won_deals for the mean)
-- column cycle_days_sum: cycle_seconds_sum in days, rounded to 6 decimals
-- column cycle_days_mean: mean cycle in days (cycle_seconds_sum / won_deals), rounded to 6 decimals
-- column cycle_days_median: median cycle in days (this grain only), rounded to 6 decimals
-- test: unique(month, holding_id, branch_id, manager_id)
-- test: not_null(month, won_deals, cycle_seconds_sum, cycle_days_sum, cycle_days_mean, cycle_days_median)
-- test: sql: select * from mart_sales_cycle_monthly where cycle_seconds_sum < 0 or cycle_days_median < 0
with cycle as (
    select closed_month as month, holding_id, branch_id, manager_id,
        seconds_between(created_at, closed_at) as cycle_seconds
    from fct_deal
    where status = 'won'
),
grouped as (
    select
        month,
        holding_id,
        branch_id,
        manager_id,
        count(*) as won_deals,
        sum(cycle_seconds) as cycle_seconds_sum,
        median(cast(cycle_seconds as decimal(20, 1))) as cycle_seconds_median
    from cycle
    group by month, holding_id, branch_id, manager_id
)
select
    month,
    holding_id,
    branch_id,
    manager_id,
    won_deals,
    cycle_seconds_sum,
    cast(round(cast(cycle_seconds_sum as decimal(38, 6)) / 86400, 6) as decimal(18, 6)) as cycle_days_sum,
    cast(round(cast(cycle_seconds_sum as decimal(38, 6)) / (won_deals * 86400), 6) as decimal(18, 6)) as cycle_days_mean,
    cast(round(cast(cycle_seconds_median as decimal(38, 6)) / 86400, 6) as decimal(18, 6)) as cycle_days_median
from grouped
