-- Canonical pipeline stages: their order, whether a deal can be worked in them, and the stall SLA in days. Override this model in a project's models/ folder to change the SLAs.
-- column stage: canonical stage name (new, contact, proposal, negotiation, contract, won, lost)
-- column stage_order: position on the main path (new 1 .. won 6); lost is 7, terminal and off the main path
-- column is_open: true for the five stages a deal is worked in (new .. contract)
-- column sla_days: days without a call, meeting, email or stage change after which an open deal in this stage is stalled (null for won and lost)
-- test: unique(stage)
-- test: unique(stage_order)
-- test: not_null(stage, stage_order, is_open)
-- test: sql: select * from dim_stage where is_open and (sla_days is null or sla_days <= 0)
-- test: sql: select * from dim_stage where (stage in ('won', 'lost')) = is_open
select stage, cast(stage_order as int) as stage_order, is_open, cast(sla_days as int) as sla_days
from (values
    ('new', 1, true, 2),
    ('contact', 2, true, 5),
    ('proposal', 3, true, 5),
    ('negotiation', 4, true, 7),
    ('contract', 5, true, 10),
    ('won', 6, false, null),
    ('lost', 7, false, null)
) as s (stage, stage_order, is_open, sla_days)
