-- Stages in pipeline order.
-- column stage: stage
-- column stage_order: position
-- column is_open: whether deals are worked in it
select stage, stage_order, is_open from dim_stage order by stage_order
