-- Client base per month and branch: active at the start and end, new, churned and reactivated clients; every month of the spine appears, with zeros when nothing happened. Churn rate = churned_clients / active_start, inflow = new_clients / active_start, computed after summing; both have no honest base (active_start counts only the clients the data can see) until the look-back before the month is covered by history, and rates_null_reason says so.
-- column month: first day of the month
-- column branch_id: branch (a client counts in one branch: see fct_client_month)
-- column holding_id: the branch's holding
-- column active_start: clients active at the end of the previous month (a won deal in the churn_lookback_months months ending it)
-- column new_clients: clients whose first ever won deal is in the month
-- column churned_clients: clients active at the end of the previous month and not at the end of this one
-- column reactivated_clients: clients who won a deal in the month after having churned
-- column active_end: clients active at the end of the month
-- column churn_lookback_months: months without a won deal after which a client has churned (dealhouse.toml [kpi])
-- column history_months: months of data before this month (0 in the first month of the spine)
-- column rates_null_reason: why churn and inflow rates of this month have no base (the look-back before it is not covered by history: "not enough history: 3 of 12 months"); null when they do
-- test: unique(month, branch_id)
-- test: not_null(month, active_start, new_clients, churned_clients, reactivated_clients, active_end, churn_lookback_months, history_months)
-- test: sql: select * from mart_client_monthly where (history_months < churn_lookback_months) <> (rates_null_reason is not null)
-- test: relationships(holding_id -> holdings.holding_id)
-- test: sql: select * from mart_client_monthly where active_end <> active_start + new_clients + reactivated_clients - churned_clients
-- test: sql: select a.* from mart_client_monthly a join mart_client_monthly b on coalesce(a.branch_id, '') = coalesce(b.branch_id, '') and month_diff(b.month, a.month) = 1 where b.active_start <> a.active_end
-- test: sql: select m.month from dim_month m where (select count(*) from branches) > 0 and m.month not in (select month from mart_client_monthly)
with client_branches as (
    select branch_id, holding_id from branches
    union
    select branch_id, holding_id from fct_client_month
),
-- Churn in a month needs the look-back before it (the months whose won deals make a client
-- active at the month's start) inside the data; before that, active_start misses every client
-- whose purchases predate the history, and the rates over it come out as 0% churn and 1,705%
-- inflow.
spine as (
    select m.month, m.month_index, p.churn_lookback_months,
        m.month_index - (select min(month_index) from dim_month) as history_months
    from dim_month m
    cross join params p
)
select
    m.month,
    b.branch_id,
    b.holding_id,
    count(case when c.active_start then 1 end) as active_start,
    count(case when c.is_new then 1 end) as new_clients,
    count(case when c.is_churned then 1 end) as churned_clients,
    count(case when c.is_reactivated then 1 end) as reactivated_clients,
    count(case when c.active_end then 1 end) as active_end,
    m.churn_lookback_months,
    cast(m.history_months as bigint) as history_months,
    case
        when m.history_months < m.churn_lookback_months
        then concat('not enough history: ', cast(m.history_months as varchar), ' of ', cast(m.churn_lookback_months as varchar), ' months')
    end as rates_null_reason
from spine m
cross join client_branches b
left join fct_client_month c
    on c.month_index = m.month_index
    and coalesce(c.branch_id, '') = coalesce(b.branch_id, '')
    and coalesce(c.holding_id, '') = coalesce(b.holding_id, '')
group by m.month, m.churn_lookback_months, m.history_months, b.branch_id, b.holding_id
