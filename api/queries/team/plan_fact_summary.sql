-- Plan and fact summed per metric and level over every selected plan, completion as the ratio of the sums.
-- column metric: planned metric
-- column level: manager, branch or group
-- column plans: plans summed
-- column plan: sum of the targets
-- column fact: sum of the facts
-- column completion: fact / plan of the sums
select metric, level, count(*) as plans, sum(plan) as plan, sum(fact) as fact,
    cast(sum(fact) as double) / nullif(cast(sum(plan) as double), 0) as completion
from {query.plan_fact} p
group by metric, level
order by metric, level
