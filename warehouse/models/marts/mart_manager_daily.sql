-- Each manager's day in the local calendar of the manager's branch: calls, meetings, proposals and contracts (1C contract rows counted for the deal's manager), and deals won and lost by their close time.
-- column local_date: calendar day in the branch's time zone
-- column holding_id: holding of the branch
-- column branch_id: the manager's branch (the deal's or activity's when the manager has none)
-- column manager_id: the manager
-- column calls: done calls
-- column meetings: done meetings
-- column proposals_sent: proposals sent
-- column contracts_signed: contracts signed
-- column deals_won: deals whose final change into won falls on the day
-- column deals_lost: deals whose final change into lost falls on the day
-- column won_amount: amount of the deals won, in the reporting currency
-- test: unique(local_date, branch_id, manager_id)
-- test: not_null(local_date, calls, meetings, proposals_sent, contracts_signed, deals_won, deals_lost, won_amount)
-- test: relationships(branch_id -> branches.branch_id)
-- test: relationships(manager_id -> managers.manager_id)
-- test: sql: select * from (select sum(deals_won) as w, sum(deals_lost) as l from mart_manager_daily) m, (select sum(won) as w, sum(lost) as l from mart_win_rate_monthly) r where m.w <> r.w or m.l <> r.l
with activity_events as (
    select
        local_date,
        holding_id,
        branch_id,
        manager_id,
        case when activity_type = 'call' and done then 1 else 0 end as calls,
        case when activity_type = 'meeting' and done then 1 else 0 end as meetings,
        case when activity_type = 'proposal_sent' then 1 else 0 end as proposals_sent,
        case when activity_type = 'contract_signed' then 1 else 0 end as contracts_signed,
        0 as deals_won,
        0 as deals_lost,
        cast(0 as decimal(18, 2)) as won_amount
    from stg_activity
    where activity_type in ('call', 'meeting', 'proposal_sent', 'contract_signed')
),
close_events as (
    select
        local_date(d.closed_at, coalesce(b.time_zone, d.time_zone)) as local_date,
        coalesce(b.holding_id, d.holding_id) as holding_id,
        coalesce(m.branch_id, d.branch_id) as branch_id,
        d.manager_id,
        0 as calls,
        0 as meetings,
        0 as proposals_sent,
        0 as contracts_signed,
        case when d.status = 'won' then 1 else 0 end as deals_won,
        case when d.status = 'lost' then 1 else 0 end as deals_lost,
        case when d.status = 'won' then coalesce(d.amount, cast(0 as decimal(18, 2))) else cast(0 as decimal(18, 2)) end as won_amount
    from fct_deal d
    left join managers m on m.manager_id = d.manager_id
    left join branches b on b.branch_id = m.branch_id
    where d.status in ('won', 'lost')
),
events as (
    select * from activity_events
    union all
    select * from close_events
)
select
    local_date,
    holding_id,
    branch_id,
    manager_id,
    sum(calls) as calls,
    sum(meetings) as meetings,
    sum(proposals_sent) as proposals_sent,
    sum(contracts_signed) as contracts_signed,
    sum(deals_won) as deals_won,
    sum(deals_lost) as deals_lost,
    sum(won_amount) as won_amount
from events
group by local_date, holding_id, branch_id, manager_id
