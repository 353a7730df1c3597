-- Every completed stay of a deal in an open stage, dated by the local month the deal left the stage, with the deal's holding, branch and manager: what time-in-stage statistics (medians over the stays themselves) are computed from.
-- column deal_id: the deal
-- column entry_seq: which stay of the deal (fct_stage_transition)
-- column stage: the open stage
-- column stage_order: its position (dim_stage)
-- column pipeline: the deal's pipeline (category) id upstream
-- column holding_id: the deal's holding
-- column branch_id: the deal's branch
-- column manager_id: the deal's responsible manager
-- column left_month: local month the deal left the stage (first day)
-- column seconds_in_stage: how long the stay lasted, in whole seconds (aggregate these: exact)
-- column hours_in_stage: the same in hours, rounded to 6 decimals
-- test: unique(deal_id, entry_seq)
-- test: not_null(deal_id, entry_seq, stage, stage_order, left_month, seconds_in_stage, hours_in_stage)
-- test: relationships(deal_id -> fct_deal.deal_id)
select
    s.deal_id,
    s.entry_seq,
    s.stage,
    g.stage_order,
    d.pipeline,
    d.holding_id,
    d.branch_id,
    d.manager_id,
    local_month(s.left_at, d.time_zone) as left_month,
    s.seconds_in_stage,
    s.hours_in_stage
from fct_stage_transition s
join fct_deal d on d.deal_id = s.deal_id
join dim_stage g on g.stage = s.stage
where s.left_at is not null and g.is_open
