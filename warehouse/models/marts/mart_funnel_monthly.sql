-- Stage funnel by creation cohort: per local month of deal creation, pipeline, holding, branch and manager, how many deals reached each main-path stage and how many went further (a skipped stage counts as reached).
-- column month: first day of the local month the deals were created in (cohort by creation, so late conversions count)
-- column pipeline: pipeline (category) id upstream: each pipeline is its own process, so sum stages within one
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column stage: main-path stage (new .. won)
-- column stage_order: its position (1 .. 6)
-- column deals_reached: deals whose furthest stage is this one or later
-- column deals_advanced: deals that reached the next stage (= deals_reached of the next stage; 0 for won)
-- column amount_reached: amount of the deals that reached the stage, RUB
-- test: unique(month, pipeline, holding_id, branch_id, manager_id, stage)
-- test: not_null(month, stage, stage_order, deals_reached, deals_advanced, amount_reached)
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract, won)
-- test: relationships(branch_id -> branches.branch_id)
-- test: sql: select a.* from mart_funnel_monthly a join mart_funnel_monthly b on a.month = b.month and a.pipeline = b.pipeline and coalesce(a.holding_id, '') = coalesce(b.holding_id, '') and coalesce(a.branch_id, '') = coalesce(b.branch_id, '') and coalesce(a.manager_id, '') = coalesce(b.manager_id, '') and b.stage_order = a.stage_order + 1 where b.deals_reached > a.deals_reached or b.deals_reached <> a.deals_advanced
-- test: sql: select * from mart_funnel_monthly where deals_advanced > deals_reached or (stage = 'won' and deals_advanced <> 0)
-- test: sql: select * from (select sum(deals_reached) as n from mart_funnel_monthly where stage = 'new') f, (select count(*) as n from fct_deal) d where f.n <> d.n
-- "% of previous step" = deals_reached / deals_reached of stage_order - 1 (or deals_advanced /
-- deals_reached of the same stage); "% of first stage" = deals_reached / deals_reached of new.
-- Sum the counts over any grouping first, then divide.
select
    d.created_month as month,
    d.pipeline,
    d.holding_id,
    d.branch_id,
    d.manager_id,
    s.stage,
    s.stage_order,
    count(case when d.max_stage_order >= s.stage_order then 1 end) as deals_reached,
    count(case when d.max_stage_order > s.stage_order then 1 end) as deals_advanced,
    coalesce(sum(case when d.max_stage_order >= s.stage_order then d.amount end), cast(0 as decimal(18, 2))) as amount_reached
from fct_deal d
cross join dim_stage s
where s.stage_order between 1 and 6
group by d.created_month, d.pipeline, d.holding_id, d.branch_id, d.manager_id, s.stage, s.stage_order
