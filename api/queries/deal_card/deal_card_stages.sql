-- The deal's stays in each stage, in order.
-- column *: = fct_stage_transition
-- column days_in_stage: days the stay lasted
select entry_seq, stage, entered_at, left_at, seconds_in_stage / 86400.0 as days_in_stage
from fct_stage_transition
where deal_id = :deal
order by entry_seq
