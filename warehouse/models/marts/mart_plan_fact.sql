-- Plan vs fact for every planned metric, month, branch and manager: manager plans compare with the manager's own figures, branch plans (no manager) with the whole branch's, plans with neither with the whole group's.
-- column month: first day of the planned month (facts in the branch's local month)
-- column branch_id: planned branch (null for a group-wide plan)
-- column manager_id: planned manager (null for a branch-level plan)
-- column metric: won_amount, commission, deals_won, calls, meetings or new_clients
-- column plan: the target
-- column fact: the actual value (0 when nothing happened; null for a metric dealhouse does not know)
-- test: unique(month, branch_id, manager_id, metric)
-- test: not_null(month, metric, plan)
-- test: accepted_values(metric: won_amount, commission, deals_won, calls, meetings, new_clients)
-- test: relationships(branch_id -> branches.branch_id)
-- test: relationships(manager_id -> managers.manager_id)
-- test: sql: select * from mart_plan_fact where fact < 0
with won as (
    select closed_month as month, branch_id, manager_id, client_id, closed_at, deal_id, amount, commission
    from fct_deal
    where status = 'won'
),
first_won as (
    select month, branch_id, manager_id
    from (
        select month, branch_id, manager_id,
            row_number() over (partition by client_id order by closed_at, deal_id) as rn
        from won
        where client_id is not null
    ) f
    where rn = 1
),
facts as (
    select month, branch_id, manager_id, 'won_amount' as metric, cast(coalesce(amount, 0) as decimal(28, 2)) as value from won
    union all
    select month, branch_id, manager_id, 'commission', cast(coalesce(commission, 0) as decimal(28, 2)) from won
    union all
    select month, branch_id, manager_id, 'deals_won', cast(1 as decimal(28, 2)) from won
    union all
    select month, branch_id, manager_id, 'new_clients', cast(1 as decimal(28, 2)) from first_won
    union all
    select local_month(at, time_zone), branch_id, manager_id, 'calls', cast(1 as decimal(28, 2))
    from stg_activity where activity_type = 'call' and done
    union all
    select local_month(at, time_zone), branch_id, manager_id, 'meetings', cast(1 as decimal(28, 2))
    from stg_activity where activity_type = 'meeting' and done
)
select
    p.month,
    p.branch_id,
    p.manager_id,
    p.metric,
    p.target as plan,
    case
        when p.metric in ('won_amount', 'commission', 'deals_won', 'new_clients', 'calls', 'meetings')
        then coalesce(sum(f.value), cast(0 as decimal(28, 2)))
    end as fact
from plans p
left join facts f
    on f.month = p.month
    and f.metric = p.metric
    and (
        (p.manager_id is not null and f.manager_id = p.manager_id)
        or (p.manager_id is null and p.branch_id is not null and f.branch_id = p.branch_id)
        or (p.manager_id is null and p.branch_id is null)
    )
group by p.source_system, p.source_id, p.month, p.branch_id, p.manager_id, p.metric, p.target
