-- Every open deal as a kanban card: its current stay, whole days in the stage at the reference time (the latest deals.updated_at) and whether it is stalled (mart_stalled_deals).
-- column deal_id: the deal
-- column client_id: the client
-- column pipeline: pipeline (category) id upstream
-- column holding_id: holding
-- column branch_id: branch
-- column time_zone: the branch's IANA time zone
-- column manager_id: responsible manager
-- column stage: current stage
-- column stage_order: its position (dim_stage)
-- column amount: deal amount, in the reporting currency
-- column commission: deal commission, in the reporting currency
-- column created_at: creation time (UTC)
-- column created_month: local month of creation (first day)
-- column entered_stage_at: when the deal entered its current stage (UTC)
-- column days_in_stage: whole days from entered_stage_at to the reference time
-- column stalled: idle past the stage's SLA (in mart_stalled_deals)
-- column days_idle: whole days idle, for stalled deals
-- test: unique(deal_id)
-- test: not_null(deal_id, stage, stage_order, created_at, entered_stage_at, stalled)
-- test: relationships(deal_id -> fct_deal.deal_id)
-- test: sql: select * from mart_deal_board where stalled and days_idle is null
select
    d.deal_id,
    d.client_id,
    d.pipeline,
    d.holding_id,
    d.branch_id,
    d.time_zone,
    d.manager_id,
    d.stage,
    d.stage_order,
    d.amount,
    d.commission,
    d.created_at,
    d.created_month,
    st.entered_at as entered_stage_at,
    cast(floor((to_unixtime(r.reference_time) - to_unixtime(st.entered_at)) / 86400.0) as bigint) as days_in_stage,
    sd.deal_id is not null as stalled,
    sd.days_idle
from fct_deal d
join fct_stage_transition st on st.deal_id = d.deal_id and st.left_at is null
cross join stg_reference_time r
left join mart_stalled_deals sd on sd.deal_id = d.deal_id
where d.status = 'open'
