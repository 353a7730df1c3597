-- Sales cycle of won deals (close time - created_at, in days) per local month of the close, holding, branch and manager. Mean = cycle_days_sum / won_deals after summing; the median does not roll up (take it from fct_deal for other groupings).
-- column month: first day of the local month of closed_at
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column won_deals: deals won
-- column cycle_days_sum: sum of their cycles in days
-- column cycle_days_mean: mean cycle in days
-- column cycle_days_median: median cycle in days (this grain only)
-- test: unique(month, holding_id, branch_id, manager_id)
-- test: not_null(month, won_deals, cycle_days_sum)
-- test: sql: select * from mart_sales_cycle_monthly where cycle_days_sum < 0 or cycle_days_median < 0
with cycle as (
    select closed_month as month, holding_id, branch_id, manager_id,
        (to_unixtime(closed_at) - to_unixtime(created_at)) / 86400.0 as cycle_days
    from fct_deal
    where status = 'won'
)
select
    month,
    holding_id,
    branch_id,
    manager_id,
    count(*) as won_deals,
    sum(cycle_days) as cycle_days_sum,
    avg(cycle_days) as cycle_days_mean,
    median(cycle_days) as cycle_days_median
from cycle
group by month, holding_id, branch_id, manager_id
