-- Each client with a won deal: its lifecycle state at the reference month and its lifetime won deals, amount and commission.
-- column client_id: the client
-- column branch_id: the client's branch (fct_client_month)
-- column holding_id: the branch's holding
-- column state: at the last month of the spine: churned (no won deal in the 12 months ending it), at_risk (active, but no won deal in the last 6 months), new (first won deal in the last 6 months), reactivated (came back from churn in the last 6 months), else active
-- column first_won_at: close time of the first won deal (UTC)
-- column last_won_at: close time of the latest won deal (UTC)
-- column first_won_month: local month of the first won deal
-- column last_won_month: local month of the latest won deal
-- column won_deals: deals won, all time
-- column lifetime_amount: amount of the won deals, in the reporting currency
-- column lifetime_commission: commission of the won deals, in the reporting currency (the margin: use it for LTV)
-- test: unique(client_id)
-- test: not_null(client_id, state, first_won_at, last_won_at, won_deals)
-- test: accepted_values(state: new, active, at_risk, churned, reactivated)
-- test: relationships(client_id -> fct_client_month.client_id)
-- test: sql: select * from mart_client_lifecycle where first_won_at > last_won_at or won_deals < 1
-- test: sql: select * from (select count(*) as n from mart_client_lifecycle where state <> 'churned') l, (select sum(active_end) as n from mart_client_monthly where month = (select max(month) from dim_month)) m where l.n <> m.n
with params as (
    select 6 as recent_months
),
ref as (
    select max(month_index) as ref_index from dim_month
),
lifetime as (
    select client_id, min(closed_at) as first_won_at, max(closed_at) as last_won_at, count(*) as won_deals,
        sum(amount) as lifetime_amount, sum(commission) as lifetime_commission
    from fct_deal
    where status = 'won' and client_id is not null
    group by client_id
),
months as (
    select
        c.client_id,
        min(c.branch_id) as branch_id,
        min(c.holding_id) as holding_id,
        min(case when c.is_new then c.month end) as first_won_month,
        max(case when c.won_deals > 0 then c.month end) as last_won_month,
        min(case when c.is_new then c.month_index end) as first_index,
        max(case when c.won_deals > 0 then c.month_index end) as last_won_index,
        max(case when c.is_reactivated then c.month_index end) as last_reactivated_index,
        count(case when c.active_end and c.month_index = ref.ref_index then 1 end) > 0 as active_now
    from fct_client_month c
    cross join ref
    group by c.client_id
)
select
    l.client_id,
    m.branch_id,
    m.holding_id,
    case
        when not m.active_now then 'churned'
        when r.ref_index - m.last_won_index >= p.recent_months then 'at_risk'
        when r.ref_index - m.first_index < p.recent_months then 'new'
        when r.ref_index - m.last_reactivated_index < p.recent_months then 'reactivated'
        else 'active'
    end as state,
    l.first_won_at,
    l.last_won_at,
    m.first_won_month,
    m.last_won_month,
    l.won_deals,
    l.lifetime_amount,
    l.lifetime_commission
from lifetime l
join months m on m.client_id = l.client_id
cross join ref r
cross join params p
