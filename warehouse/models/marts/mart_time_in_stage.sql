-- Time deals spend in each open stage, per local month the stay ended, holding and branch: completed stays, total hours, median and 90th percentile. Mean = hours_sum / stays after summing; the percentiles do not roll up (take them from fct_stage_transition for other groupings).
-- column month: first day of the local month the deal left the stage
-- column holding_id: holding
-- column branch_id: branch
-- column stage: the stage (new .. contract)
-- column stage_order: its position
-- column stays: completed stays (entered and left)
-- column hours_sum: total hours of those stays
-- column hours_median: median hours (this grain only)
-- column hours_p90: 90th percentile of hours, interpolated (this grain only)
-- test: unique(month, holding_id, branch_id, stage)
-- test: not_null(month, stage, stays, hours_sum, hours_median, hours_p90)
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract)
-- test: sql: select * from mart_time_in_stage where hours_median > hours_p90 or hours_sum < 0
select
    local_month(t.left_at, d.time_zone) as month,
    d.holding_id,
    d.branch_id,
    t.stage,
    t.stage_order,
    count(*) as stays,
    sum(t.hours_in_stage) as hours_sum,
    median(t.hours_in_stage) as hours_median,
    percentile_cont(0.9) within group (order by t.hours_in_stage) as hours_p90
from fct_stage_transition t
join fct_deal d on d.deal_id = t.deal_id
join dim_stage s on s.stage = t.stage
where t.left_at is not null and s.is_open
group by local_month(t.left_at, d.time_zone), d.holding_id, d.branch_id, t.stage, t.stage_order
