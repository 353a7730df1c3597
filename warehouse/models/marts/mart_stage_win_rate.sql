-- Historical win rate by stage over every closed deal: of the deals that reached a stage and closed, how many were won. It weights the open pipeline.
-- column stage: main-path open stage (new .. contract)
-- column stage_order: its position
-- column closed_deals: closed (won or lost) deals that reached the stage
-- column won_deals: of those, the won ones
-- test: unique(stage)
-- test: not_null(stage, stage_order, closed_deals, won_deals)
-- test: sql: select * from mart_stage_win_rate where won_deals > closed_deals
select
    s.stage,
    s.stage_order,
    count(d.deal_id) as closed_deals,
    count(case when d.status = 'won' then 1 end) as won_deals
from dim_stage s
left join fct_deal d on d.status in ('won', 'lost') and d.max_stage_order >= s.stage_order
where s.is_open
group by s.stage, s.stage_order
