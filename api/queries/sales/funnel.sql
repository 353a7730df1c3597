-- Stage funnel of the deals created in the period: per main-path stage (new .. won), the deals that reached it and went further, with the conversions between stages.
-- filter cohort: month >= :from
-- filter cohort: month <= :to
-- filter cohort: pipeline in :pipeline
-- filter cohort: holding_id in :holding
-- filter cohort: branch_id in :branch
-- filter cohort: manager_id in :manager
-- column stage: main-path stage
-- column stage_order: its position, 1 (new) .. 6 (won)
-- column deals_reached: deals created in the period whose furthest stage is this one or later
-- column deals_advanced: of them, deals that reached the next stage (0 for won)
-- column amount_reached: amount of the deals that reached the stage, in the reporting currency
-- column step_conversion: deals_advanced / deals_reached
-- column conversion_from_previous: deals_reached / deals_reached of the previous stage
-- column conversion_from_start: deals_reached / deals_reached of new
-- Counts are summed over the selected creation months, holdings, branches and managers first
-- (mart_funnel_monthly), then divided; every main-path stage appears, with zeros.
with f as (
    select stage, sum(deals_reached) as deals_reached, sum(deals_advanced) as deals_advanced,
        sum(amount_reached) as amount_reached
    from mart_funnel_monthly
    where {cohort}
    group by stage
),
st as (
    select s.stage, s.stage_order, coalesce(f.deals_reached, 0) as deals_reached,
        coalesce(f.deals_advanced, 0) as deals_advanced,
        coalesce(f.amount_reached, cast(0 as decimal(28, 2))) as amount_reached
    from dim_stage s
    left join f on f.stage = s.stage
    where s.stage_order between 1 and 6
)
select stage, stage_order, deals_reached, deals_advanced, amount_reached,
    cast(deals_advanced as double) / nullif(cast(deals_reached as double), 0) as step_conversion,
    cast(deals_reached as double)
        / nullif(cast(lag(deals_reached) over (order by stage_order) as double), 0) as conversion_from_previous,
    cast(deals_reached as double)
        / nullif(cast(first_value(deals_reached) over (order by stage_order) as double), 0) as conversion_from_start
from st
order by stage_order
