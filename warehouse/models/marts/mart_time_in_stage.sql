-- Time deals spend in each open stage, per local month the stay ended, pipeline, holding and branch: completed stays, total time, median and 90th percentile. Mean = seconds_sum / stays after summing; the percentiles do not roll up (take them from mart_stage_stay for other groupings). Every figure comes from whole seconds, so a rebuild gives the same digits.
-- column month: first day of the local month the deal left the stage
-- column pipeline: pipeline (category) id upstream
-- column holding_id: holding
-- column branch_id: branch
-- column stage: the stage (new .. contract)
-- column stage_order: its position
-- column stays: completed stays (entered and left)
-- column seconds_sum: total whole seconds of those stays (exact: sum and divide by stays for the mean)
-- column hours_sum: seconds_sum in hours, rounded to 6 decimals
-- column hours_median: median hours (this grain only), rounded to 6 decimals
-- column hours_p90: 90th percentile of hours, interpolated as percentile_cont (this grain only), rounded to 6 decimals
-- test: unique(month, pipeline, holding_id, branch_id, stage)
-- test: not_null(month, stage, stays, seconds_sum, hours_sum, hours_median, hours_p90)
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract)
-- test: sql: select * from mart_time_in_stage where hours_median > hours_p90 or seconds_sum < 0
with stay as (
    select
        local_month(t.left_at, d.time_zone) as month,
        d.pipeline,
        d.holding_id,
        d.branch_id,
        t.stage,
        t.stage_order,
        t.seconds_in_stage
    from fct_stage_transition t
    join fct_deal d on d.deal_id = t.deal_id
    join dim_stage s on s.stage = t.stage
    where t.left_at is not null and s.is_open
),
ranked as (
    select
        *,
        row_number() over (partition by month, pipeline, holding_id, branch_id, stage order by seconds_in_stage) as position,
        count(*) over (partition by month, pipeline, holding_id, branch_id, stage) as stays_in_group
    from stay
),
grouped as (
    -- percentile_cont(0.9) in exact integers: 0-based rank h = 0.9 (n - 1) = 9 (n - 1) / 10,
    -- so the value at 1-based position floor(h) + 1, plus tenths (9 (n - 1) mod 10) of the step
    -- to the next one; a float interpolation would not be exact.
    select
        month,
        pipeline,
        holding_id,
        branch_id,
        stage,
        stage_order,
        count(*) as stays,
        sum(seconds_in_stage) as seconds_sum,
        median(cast(seconds_in_stage as decimal(20, 1))) as seconds_median,
        max(case when position = 9 * (stays_in_group - 1) / 10 + 1 then seconds_in_stage end) as p90_below,
        max(case when position = 9 * (stays_in_group - 1) / 10 + 2 then seconds_in_stage end) as p90_above,
        max(9 * (stays_in_group - 1) % 10) as p90_tenths
    from ranked
    group by month, pipeline, holding_id, branch_id, stage, stage_order
)
select
    month,
    pipeline,
    holding_id,
    branch_id,
    stage,
    stage_order,
    stays,
    seconds_sum,
    cast(round(cast(seconds_sum as decimal(38, 6)) / 3600, 6) as decimal(18, 6)) as hours_sum,
    cast(round(cast(seconds_median as decimal(38, 6)) / 3600, 6) as decimal(18, 6)) as hours_median,
    cast(round(
        cast(10 * p90_below + (coalesce(p90_above, p90_below) - p90_below) * p90_tenths as decimal(38, 6)) / 36000, 6
    ) as decimal(18, 6)) as hours_p90
from grouped
