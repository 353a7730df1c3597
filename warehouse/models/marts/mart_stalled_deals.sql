-- Open deals with no call, meeting, email or stage change for longer than their stage's SLA (dim_stage.sla_days), measured at the reference time (the latest deals.updated_at).
-- column deal_id: the deal
-- column pipeline: pipeline (category) id upstream
-- column holding_id: holding
-- column branch_id: branch
-- column manager_id: responsible manager
-- column stage: current stage
-- column entered_stage_at: when the deal entered its current stay (UTC)
-- column last_activity_at: the latest of its last done call, meeting or email up to the reference time and entered_stage_at (UTC)
-- column days_idle: whole days from last_activity_at to the reference time
-- column sla_days: the stage's SLA in days
-- column amount: deal amount, in the reporting currency
-- column commission: deal commission, in the reporting currency
-- column reference_time: the time idleness is measured at (UTC)
-- test: unique(deal_id)
-- test: not_null(deal_id, stage, entered_stage_at, last_activity_at, days_idle, sla_days, reference_time)
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract)
-- test: relationships(deal_id -> fct_deal.deal_id)
-- test: sql: select * from mart_stalled_deals where days_idle < sla_days or last_activity_at < entered_stage_at
with ref as (
    select reference_time from stg_reference_time
),
current_stay as (
    select deal_id, entered_at
    from fct_stage_transition
    where left_at is null
),
last_touch as (
    select a.deal_id, max(a.at) as at
    from stg_activity a
    cross join ref
    where a.activity_type in ('call', 'meeting', 'email') and a.done and a.at <= ref.reference_time
    group by a.deal_id
),
idle as (
    select
        d.deal_id, d.pipeline, d.holding_id, d.branch_id, d.manager_id, d.stage, d.amount, d.commission,
        s.sla_days,
        c.entered_at as entered_stage_at,
        case when t.at > c.entered_at then t.at else c.entered_at end as last_activity_at,
        ref.reference_time
    from fct_deal d
    join dim_stage s on s.stage = d.stage
    join current_stay c on c.deal_id = d.deal_id
    cross join ref
    left join last_touch t on t.deal_id = d.deal_id
    where d.status = 'open' and s.is_open and s.sla_days is not null
)
select
    deal_id,
    pipeline,
    holding_id,
    branch_id,
    manager_id,
    stage,
    entered_stage_at,
    last_activity_at,
    cast(floor((to_unixtime(reference_time) - to_unixtime(last_activity_at)) / 86400.0) as bigint) as days_idle,
    sla_days,
    amount,
    commission,
    reference_time
from idle
where to_unixtime(reference_time) - to_unixtime(last_activity_at) > sla_days * 86400
