-- Time deals spend in each open stage: completed stays (mart_stage_stay) by the local month the deal left the stage, with the median, mean and 90th percentile in days.
-- filter stays: left_month >= :from
-- filter stays: left_month <= :to
-- filter stays: holding_id in :holding
-- filter stays: branch_id in :branch
-- filter stays: manager_id in :manager
-- column stage: open stage
-- column stage_order: its position
-- column stays: completed stays
-- column median_days: median days of a stay
-- column mean_days: mean days of a stay
-- column p90_days: 90th percentile of days (approximate)
-- Every open stage appears, with no stays where nothing matched.
with a as (
    select stage, count(*) as stays, median(hours_in_stage) / 24.0 as median_days,
        avg(hours_in_stage) / 24.0 as mean_days,
        approx_percentile_cont(hours_in_stage, 0.9) / 24.0 as p90_days
    from mart_stage_stay
    where {stays}
    group by stage
)
select g.stage, g.stage_order, coalesce(a.stays, 0) as stays, a.median_days, a.mean_days, a.p90_days
from dim_stage g
left join a on a.stage = g.stage
where g.is_open
order by g.stage_order
