-- One row per deal in its current state, with the close time taken from the final stage change, the furthest stage reached and the last open stage.
-- column deal_id: canonical deal id
-- column source_system: upstream system (source name in dealhouse.toml)
-- column source_id: the deal's id upstream
-- column client_id: the client
-- column manager_id: responsible manager
-- column branch_id: the deal's branch, else its manager's
-- column holding_id: holding of the branch
-- column time_zone: IANA zone of the branch (UTC when there is none): local days and months use it
-- column pipeline: pipeline (category) id upstream
-- column stage: current canonical stage
-- column stage_order: position of the current stage (dim_stage)
-- column status: open, won or lost
-- column amount: deal amount in the reporting currency ([reporting] currency; stg_deal converts it)
-- column commission: expected agent commission in the reporting currency
-- column created_at: creation time (UTC)
-- column updated_at: last modification upstream (UTC)
-- column closed_at: close time (UTC) for won and lost deals: the final stage change into the deal's status stage; deals.closed_at only when the history has none (then updated_at if that is missing too)
-- column crm_closed_at: close time as the CRM reports it (editable upstream, so not trusted)
-- column close_time_source: where closed_at comes from: stage_history, crm or updated_at
-- column lost_reason: why the deal was lost
-- column max_stage_order: furthest main-path stage ever entered (1 .. 6; a skipped stage counts as reached; won deals reach 6)
-- column last_open_stage: the last open stage (new .. contract) the deal was in: its current stage while open, the stage it was won or lost from otherwise; null when unknown
-- column created_month: first day of the local month of created_at
-- column closed_month: first day of the local month of closed_at
-- column closed_date: local calendar day of closed_at
-- test: unique(deal_id)
-- test: not_null(deal_id, stage, status, created_at, max_stage_order, created_month, time_zone)
-- test: accepted_values(status: open, won, lost)
-- test: accepted_values(stage: new, contact, proposal, negotiation, contract, won, lost)
-- test: accepted_values(last_open_stage: new, contact, proposal, negotiation, contract)
-- test: relationships(branch_id -> branches.branch_id)
-- test: relationships(manager_id -> managers.manager_id)
-- test: sql: select deal_id from fct_deal where (status = 'open') = (closed_at is not null)
-- test: sql: select deal_id from fct_deal where max_stage_order not between 1 and 6 or (status = 'won' and max_stage_order <> 6)
-- test: sql: select deal_id from fct_deal where amount < 0 or commission < 0
-- incremental: deal_id from deals.deal_id, deal_stage_changes.deal_id
with main_path as (
    select deal_id, max(stage_order) as max_order
    from fct_stage_transition
    where stage_order between 1 and 6
    group by deal_id
),
final_close as (
    select deal_id, stage, max(entered_at) as closed_at
    from fct_stage_transition
    -- A reconstructed stay starts at created_at, which is no close time.
    where stage in ('won', 'lost') and from_history
    group by deal_id, stage
),
last_open as (
    select deal_id, stage
    from (
        select t.deal_id, t.stage, row_number() over (partition by t.deal_id order by t.entry_seq desc) as rn
        from fct_stage_transition t
        join dim_stage s on s.stage = t.stage
        where s.is_open
    ) o
    where rn = 1
),
deal as (
    select
        d.*,
        s.stage_order,
        s.is_open as stage_is_open,
        case when d.status in ('won', 'lost') then coalesce(f.closed_at, d.crm_closed_at, d.updated_at) end as closed_at,
        case
            when d.status not in ('won', 'lost') then null
            when f.closed_at is not null then 'stage_history'
            when d.crm_closed_at is not null then 'crm'
            else 'updated_at'
        end as close_time_source,
        mp.max_order,
        lo.stage as history_last_open_stage
    from stg_deal d
    left join dim_stage s on s.stage = d.stage
    left join final_close f on f.deal_id = d.deal_id and f.stage = d.status
    left join main_path mp on mp.deal_id = d.deal_id
    left join last_open lo on lo.deal_id = d.deal_id
)
select
    deal_id,
    source_system,
    source_id,
    client_id,
    manager_id,
    branch_id,
    holding_id,
    time_zone,
    pipeline,
    stage,
    stage_order,
    status,
    amount,
    commission,
    created_at,
    updated_at,
    closed_at,
    crm_closed_at,
    close_time_source,
    lost_reason,
    -- Every deal reached `new`; the current stage counts even if the history missed the move;
    -- a won deal went through every stage.
    cast(case
        when status = 'won' then 6
        else greatest(
            coalesce(max_order, 1),
            case when stage_order between 1 and 6 then stage_order else 1 end
        )
    end as int) as max_stage_order,
    case
        when status = 'open' and stage_is_open then stage
        else history_last_open_stage
    end as last_open_stage,
    local_month(created_at, time_zone) as created_month,
    local_month(closed_at, time_zone) as closed_month,
    local_date(closed_at, time_zone) as closed_date
from deal
