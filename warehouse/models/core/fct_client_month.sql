-- One row per client per month from its first won deal, for the months it is active at the start or the end: its won deals that month and the flags the client KPIs count.
-- column client_id: the client
-- column branch_id: the client's branch: its own (clients.branch_id), else that of its first won deal (one branch per client, so branch and holding rollups are sums)
-- column holding_id: the holding of that branch (else that of the first won deal)
-- column month: first day of the month (won deals count in the branch's local month of their close)
-- column month_index: months since 1970-01 (dim_month)
-- column won_deals: deals won that month
-- column won_amount: amount of those deals in the reporting currency
-- column won_commission: commission of those deals in the reporting currency
-- column active_start: active at the end of the previous month (a won deal in the churn_lookback_months months ending it: dealhouse.toml [kpi], default 12)
-- column active_end: active at the end of this month (a won deal in the churn_lookback_months months ending it)
-- column is_new: this is the month of the client's first ever won deal
-- column is_churned: active at the end of the previous month and not at the end of this one
-- column is_reactivated: won a deal this month after having churned (not active at the previous month's end, not new)
-- test: unique(client_id, month)
-- test: not_null(client_id, month, month_index, won_deals, active_start, active_end, is_new, is_churned, is_reactivated)
-- test: sql: select * from fct_client_month where not active_start and not active_end
-- test: sql: select * from fct_client_month where active_end <> ((active_start and not is_churned) or is_new or is_reactivated)
-- test: sql: select client_id, count(*) as firsts from fct_client_month where is_new group by client_id having count(*) <> 1
with lookback as (
    -- dealhouse.toml [kpi] churn_lookback_months (default 12), as the build's params table.
    select churn_lookback_months as active_months from params
),
won as (
    select client_id, closed_month as month, month_diff(closed_month, date '1970-01-01') as month_index,
        count(*) as won_deals, sum(amount) as won_amount, sum(commission) as won_commission
    from fct_deal
    where status = 'won' and client_id is not null
    group by client_id, closed_month
),
first_deal as (
    select client_id, branch_id, holding_id
    from (
        select client_id, branch_id, holding_id,
            row_number() over (partition by client_id order by closed_at, deal_id) as rn
        from fct_deal
        where status = 'won' and client_id is not null
    ) f
    where rn = 1
),
client_branch as (
    select f.client_id, coalesce(c.branch_id, f.branch_id) as branch_id, f.holding_id as first_holding_id
    from first_deal f
    left join clients c on c.client_id = f.client_id
),
client as (
    select w.client_id, min(cb.branch_id) as branch_id, coalesce(min(b.holding_id), min(cb.first_holding_id)) as holding_id,
        min(w.month_index) as first_index
    from won w
    join client_branch cb on cb.client_id = w.client_id
    left join branches b on b.branch_id = cb.branch_id
    group by w.client_id
),
grid as (
    select c.client_id, c.branch_id, c.holding_id, c.first_index, m.month, m.month_index
    from client c
    join dim_month m on m.month_index >= c.first_index
),
status as (
    select
        g.client_id, g.branch_id, g.holding_id, g.month, g.month_index, g.first_index,
        coalesce(sum(case when w.month_index = g.month_index then w.won_deals end), 0) as won_deals,
        sum(case when w.month_index = g.month_index then w.won_amount end) as won_amount,
        sum(case when w.month_index = g.month_index then w.won_commission end) as won_commission,
        count(case when w.month_index > g.month_index - p.active_months then 1 end) > 0 as active_end,
        count(case when w.month_index < g.month_index then 1 end) > 0 as active_start
    from grid g
    cross join lookback p
    left join won w
        on w.client_id = g.client_id
        and w.month_index between g.month_index - p.active_months and g.month_index
    group by g.client_id, g.branch_id, g.holding_id, g.month, g.month_index, g.first_index
)
select
    client_id,
    branch_id,
    holding_id,
    month,
    month_index,
    won_deals,
    won_amount,
    won_commission,
    active_start,
    active_end,
    month_index = first_index as is_new,
    active_start and not active_end as is_churned,
    won_deals > 0 and not active_start and month_index > first_index as is_reactivated
from status
where active_start or active_end
