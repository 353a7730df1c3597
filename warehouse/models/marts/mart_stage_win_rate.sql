-- Historical win rate by pipeline and stage over every closed deal: of the deals of the pipeline that reached a stage and closed, how many were won. It weights the open pipeline (a stage's odds differ between pipelines, so each pipeline has its own).
-- column pipeline: pipeline (category) id upstream; every pipeline with a deal has every open stage
-- column stage: main-path open stage (new .. contract)
-- column stage_order: its position
-- column closed_deals: closed (won or lost) deals that reached the stage
-- column won_deals: of those, the won ones
-- test: unique(pipeline, stage)
-- test: not_null(pipeline, stage, stage_order, closed_deals, won_deals)
-- test: sql: select * from mart_stage_win_rate where won_deals > closed_deals
with pipelines as (
    select distinct pipeline from fct_deal
)
select
    p.pipeline,
    s.stage,
    s.stage_order,
    count(d.deal_id) as closed_deals,
    count(case when d.status = 'won' then 1 end) as won_deals
from pipelines p
cross join dim_stage s
left join fct_deal d
    on d.pipeline = p.pipeline and d.status in ('won', 'lost') and d.max_stage_order >= s.stage_order
where s.is_open
group by p.pipeline, s.stage, s.stage_order
