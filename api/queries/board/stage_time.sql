-- Time deals spend in each open stage: completed stays (mart_stage_stay) by the local month the deal left the stage, with the median, mean and 90th percentile in days.
-- filter stays: left_month >= :from
-- filter stays: left_month <= :to
-- filter stays: pipeline in :pipeline
-- filter stays: holding_id in :holding
-- filter stays: branch_id in :branch
-- filter stays: manager_id in :manager
-- column stage: open stage
-- column stage_order: its position
-- column stays: completed stays
-- column median_days: median days of a stay
-- column mean_days: mean days of a stay
-- column p90_days: 90th percentile of days (interpolated)
-- Every open stage appears, with no stays where nothing matched. From whole seconds, with
-- aggregates whose result does not depend on the order the rows arrive in (an average of floats,
-- or a t-digest, does), so the same data always give the same answer. The 90th percentile is
-- percentile_cont's, interpolated in exact tenths of a second as mart_time_in_stage does
-- (DataFusion's own cuts the weight to millionths).
with ranked as (
    select stage, seconds_in_stage,
        row_number() over (partition by stage order by seconds_in_stage) as position,
        count(*) over (partition by stage) as stays_in_stage
    from mart_stage_stay
    where {stays}
),
a as (
    select stage, count(*) as stays,
        median(cast(seconds_in_stage as double)) / 86400 as median_days,
        cast(sum(seconds_in_stage) as double) / (count(*) * 86400) as mean_days,
        max(case when position = 9 * (stays_in_stage - 1) / 10 + 1 then seconds_in_stage end) as p90_below,
        max(case when position = 9 * (stays_in_stage - 1) / 10 + 2 then seconds_in_stage end) as p90_above,
        max(9 * (stays_in_stage - 1) % 10) as p90_tenths
    from ranked
    group by stage
)
select g.stage, g.stage_order, coalesce(a.stays, 0) as stays, a.median_days, a.mean_days,
    cast(10 * a.p90_below + (coalesce(a.p90_above, a.p90_below) - a.p90_below) * a.p90_tenths as double)
        / 864000 as p90_days
from dim_stage g
left join a on a.stage = g.stage
where g.is_open
order by g.stage_order
