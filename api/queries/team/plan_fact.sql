-- Every plan (month, branch, manager, metric) with its fact, level and completion: the semantic layer's plan_fact table with the manager's name.
-- filter plans: p.month >= :from
-- filter plans: p.month <= :to
-- filter plans: p.holding_id in :holding
-- filter plans: p.branch_id in :branch
-- filter plans: p.manager_id in :manager
-- filter plans: p.metric in :metric
-- column *: = mart_plan_fact
-- column holding_id: holding of the planned branch
-- column manager_name: manager name
-- column level: manager, branch or group
-- column completion: fact / plan
select p.month, p.holding_id, p.branch_id, p.manager_id, m.name as manager_name, p.metric, p.level,
    p.plan, p.fact, cast(p.fact as double) / nullif(cast(p.plan as double), 0) as completion
from {tables.plan_fact} p
left join managers m on m.manager_id = p.manager_id
where {plans}
order by p.month, p.branch_id, p.manager_id, p.metric
