-- Lost deals per local month of their close, holding, branch, manager and the last open stage they were lost from. Loss share of a stage = lost_deals / all lost deals, computed after summing.
-- column month: first day of the local month of closed_at
-- column pipeline: pipeline (category) id upstream
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column last_open_stage: the last open stage before the loss (unknown when the deal has no stage history)
-- column stage_order: position of that stage (null for unknown)
-- column lost_deals: deals lost
-- column lost_amount: their amount, in the reporting currency
-- test: unique(month, pipeline, holding_id, branch_id, manager_id, last_open_stage)
-- test: not_null(month, last_open_stage, lost_deals, lost_amount)
-- test: accepted_values(last_open_stage: new, contact, proposal, negotiation, contract, unknown)
-- test: relationships(branch_id -> branches.branch_id)
-- test: sql: select * from (select sum(lost_deals) as n from mart_loss_by_stage) l, (select sum(lost) as n from mart_win_rate_monthly) w where l.n <> w.n
select
    d.closed_month as month,
    d.pipeline,
    d.holding_id,
    d.branch_id,
    d.manager_id,
    coalesce(d.last_open_stage, 'unknown') as last_open_stage,
    s.stage_order,
    count(*) as lost_deals,
    coalesce(sum(d.amount), cast(0 as decimal(18, 2))) as lost_amount
from fct_deal d
left join dim_stage s on s.stage = d.last_open_stage
where d.status = 'lost'
group by d.closed_month, d.pipeline, d.holding_id, d.branch_id, d.manager_id, coalesce(d.last_open_stage, 'unknown'), s.stage_order
