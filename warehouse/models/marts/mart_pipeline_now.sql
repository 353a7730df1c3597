-- Open deals now by pipeline, current stage, holding, branch and manager: count, amount, commission and the amount weighted by the stage's historical win rate.
-- column pipeline: pipeline (category) id upstream
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column stage: current stage
-- column stage_order: its position
-- column open_deals: open deals
-- column open_amount: their amount, in the reporting currency
-- column open_commission: their commission, in the reporting currency
-- column weighted_amount: sum over the deals of amount x won / closed of the deals of the same pipeline that reached the stage (mart_stage_win_rate), rounded to kopecks per deal; null when no deal that reached the stage has closed yet
-- test: unique(pipeline, holding_id, branch_id, manager_id, stage)
-- test: not_null(stage, open_deals, open_amount, open_commission)
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract)
-- test: relationships(branch_id -> branches.branch_id)
-- test: sql: select * from mart_pipeline_now where weighted_amount > open_amount or weighted_amount < 0
-- test: sql: select * from (select sum(open_deals) as n from mart_pipeline_now) p, (select count(*) as n from fct_deal where status = 'open') d where p.n <> d.n
with weighted as (
    select
        d.deal_id,
        d.pipeline,
        d.holding_id,
        d.branch_id,
        d.manager_id,
        d.stage,
        d.stage_order,
        d.amount,
        d.commission,
        case
            when w.closed_deals > 0
            then round(d.amount * cast(w.won_deals as decimal(18, 0)) / cast(w.closed_deals as decimal(18, 0)), 2)
        end as weighted_amount
    from fct_deal d
    left join mart_stage_win_rate w on w.pipeline = d.pipeline and w.stage = d.stage
    where d.status = 'open'
)
select
    pipeline,
    holding_id,
    branch_id,
    manager_id,
    stage,
    stage_order,
    count(*) as open_deals,
    coalesce(sum(amount), cast(0 as decimal(18, 2))) as open_amount,
    coalesce(sum(commission), cast(0 as decimal(18, 2))) as open_commission,
    sum(weighted_amount) as weighted_amount
from weighted
group by pipeline, holding_id, branch_id, manager_id, stage, stage_order
