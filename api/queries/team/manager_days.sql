-- Each manager's local days (mart_manager_daily) with the manager's name, latest day first.
-- filter days: cast(date_trunc('month', d.local_date) as date) >= :from
-- filter days: cast(date_trunc('month', d.local_date) as date) <= :to
-- filter days: d.holding_id in :holding
-- filter days: d.branch_id in :branch
-- filter days: d.manager_id in :manager
-- filter days: d.local_date = :day
-- column *: = mart_manager_daily
-- column manager_name: manager name
select d.local_date, d.holding_id, d.branch_id, d.manager_id, m.name as manager_name, d.calls, d.meetings,
    d.proposals_sent, d.contracts_signed, d.deals_won, d.deals_lost, d.won_amount
from mart_manager_daily d
left join managers m on m.manager_id = d.manager_id
where {days}
order by d.local_date desc, d.branch_id, d.manager_id
