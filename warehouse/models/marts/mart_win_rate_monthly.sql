-- Closed deals per local day of their close (the final stage change), holding, branch and manager: won, lost and their amounts. Win rate = won / (won + lost), computed after summing. By day so a period to date sums the same days of another period (like for like); month is the day's month.
-- column month: first day of the local month of closed_at
-- column closed_date: local calendar day of closed_at
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column won: deals won
-- column lost: deals lost
-- column won_amount: amount of the won deals, in the reporting currency
-- column won_commission: commission of the won deals, in the reporting currency
-- column lost_amount: amount of the lost deals, in the reporting currency
-- test: unique(closed_date, holding_id, branch_id, manager_id)
-- test: not_null(month, closed_date, won, lost, won_amount, won_commission, lost_amount)
-- test: relationships(branch_id -> branches.branch_id)
-- test: sql: select * from mart_win_rate_monthly where cast(date_trunc('month', closed_date) as date) <> month
-- test: sql: select * from mart_win_rate_monthly where won + lost = 0
-- test: sql: select * from (select sum(won + lost) as n from mart_win_rate_monthly) m, (select count(*) as n from fct_deal where status <> 'open') d where m.n <> d.n
select
    closed_month as month,
    closed_date,
    holding_id,
    branch_id,
    manager_id,
    count(case when status = 'won' then 1 end) as won,
    count(case when status = 'lost' then 1 end) as lost,
    coalesce(sum(case when status = 'won' then amount end), cast(0 as decimal(18, 2))) as won_amount,
    coalesce(sum(case when status = 'won' then commission end), cast(0 as decimal(18, 2))) as won_commission,
    coalesce(sum(case when status = 'lost' then amount end), cast(0 as decimal(18, 2))) as lost_amount
from fct_deal
where status in ('won', 'lost')
group by closed_month, closed_date, holding_id, branch_id, manager_id
