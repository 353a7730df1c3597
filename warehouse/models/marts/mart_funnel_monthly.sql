-- Stage funnel by creation cohort: per local month of deal creation, pipeline, holding, branch and manager, how many deals reached each main-path stage and how many went further (a skipped stage counts as reached); with the cohort's maturity, since a young cohort's deals have not had time to close yet.
-- column month: first day of the local month the deals were created in (cohort by creation, so late conversions count)
-- column pipeline: pipeline (category) id upstream: each pipeline is its own process, so sum stages within one
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column stage: main-path stage (new .. won)
-- column stage_order: its position (1 .. 6)
-- column deals_reached: deals whose furthest stage is this one or later
-- column deals_advanced: deals that reached the next stage (= deals_reached of the next stage; 0 for won)
-- column amount_reached: amount of the deals that reached the stage, in the reporting currency
-- column deals_open: deals that reached the stage and are still open (at stage new: the cohort's open deals)
-- column deals_won_within_window: deals that reached the stage and were won within conversion_window_days of their creation
-- column conversion_window_days: dealhouse.toml [kpi] conversion_window_days, else the median sales cycle of the won deals rounded up to whole days (30 while none is won)
-- column cohort_age_days: days from the first day of the cohort month to the reference date (stg_reference_time, UTC day)
-- column cohort_mature: every deal of the cohort is at least conversion_window_days old at the reference date (the month's end + the window has passed), so its conversion within the window is final
-- test: unique(month, pipeline, holding_id, branch_id, manager_id, stage)
-- test: not_null(month, stage, stage_order, deals_reached, deals_advanced, amount_reached, deals_open, deals_won_within_window, conversion_window_days, cohort_age_days, cohort_mature)
-- test: sql: select * from mart_funnel_monthly where deals_open > deals_reached or deals_won_within_window > deals_reached or conversion_window_days < 1
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract, won)
-- test: relationships(branch_id -> branches.branch_id)
-- test: sql: select a.* from mart_funnel_monthly a join mart_funnel_monthly b on a.month = b.month and a.pipeline = b.pipeline and coalesce(a.holding_id, '') = coalesce(b.holding_id, '') and coalesce(a.branch_id, '') = coalesce(b.branch_id, '') and coalesce(a.manager_id, '') = coalesce(b.manager_id, '') and b.stage_order = a.stage_order + 1 where b.deals_reached > a.deals_reached or b.deals_reached <> a.deals_advanced
-- test: sql: select * from mart_funnel_monthly where deals_advanced > deals_reached or (stage = 'won' and deals_advanced <> 0)
-- test: sql: select * from (select sum(deals_reached) as n from mart_funnel_monthly where stage = 'new') f, (select count(*) as n from fct_deal) d where f.n <> d.n
-- "% of previous step" = deals_reached / deals_reached of stage_order - 1 (or deals_advanced /
-- deals_reached of the same stage); "% of first stage" = deals_reached / deals_reached of new.
-- Sum the counts over any grouping first, then divide.
with conversion_window as (
    select greatest(coalesce(
        p.conversion_window_days,
        -- Rounded up to whole days; the median of two middle values can be a fraction: truncated.
        (select cast((median(seconds_between(created_at, closed_at)) + 86399) / 86400 as bigint) from fct_deal where status = 'won'),
        30
    ), 1) as days
    from params p
),
-- A cohort's age and maturity from its month and the reference date; a deal created on the
-- month's last day has had the window once the window's days have passed since the month's end.
cohort as (
    select c.month, w.days as conversion_window_days,
        seconds_between(cast(c.month as timestamp), cast(r.reference_date as timestamp)) / 86400 as cohort_age_days,
        seconds_between(cast(c.month + interval '1 month' as timestamp), cast(r.reference_date as timestamp)) >= w.days * 86400 as cohort_mature
    from (select distinct created_month as month from fct_deal) c
    cross join (select cast(reference_time as date) as reference_date from stg_reference_time) r
    cross join conversion_window w
),
deal as (
    select d.created_month, d.pipeline, d.holding_id, d.branch_id, d.manager_id, d.max_stage_order, d.amount, d.status,
        d.status = 'won' and seconds_between(d.created_at, d.closed_at) <= w.days * 86400 as won_in_window
    from fct_deal d
    cross join conversion_window w
)
select
    d.created_month as month,
    d.pipeline,
    d.holding_id,
    d.branch_id,
    d.manager_id,
    s.stage,
    s.stage_order,
    count(case when d.max_stage_order >= s.stage_order then 1 end) as deals_reached,
    count(case when d.max_stage_order > s.stage_order then 1 end) as deals_advanced,
    coalesce(sum(case when d.max_stage_order >= s.stage_order then d.amount end), cast(0 as decimal(18, 2))) as amount_reached,
    count(case when d.max_stage_order >= s.stage_order and d.status = 'open' then 1 end) as deals_open,
    count(case when d.max_stage_order >= s.stage_order and d.won_in_window then 1 end) as deals_won_within_window,
    c.conversion_window_days,
    c.cohort_age_days,
    c.cohort_mature
from deal d
join cohort c on c.month = d.created_month
cross join dim_stage s
where s.stage_order between 1 and 6
group by d.created_month, d.pipeline, d.holding_id, d.branch_id, d.manager_id, s.stage, s.stage_order,
    c.conversion_window_days, c.cohort_age_days, c.cohort_mature
