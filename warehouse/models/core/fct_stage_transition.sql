-- One row per stay of a deal in a stage: when it entered, when it left and for how long, from the stage history.
-- column deal_id: the deal
-- column entry_seq: 1 for the deal's first stay, then 2, 3, ... in time order
-- column stage: canonical stage of the stay
-- column stage_order: the stage's position (dim_stage)
-- column entered_at: when the deal entered the stage (UTC); the deal's created_at for the stay the history starts in
-- column left_at: when it left (UTC); null for the current stay
-- column next_stage: the stage it moved to; null for the current stay
-- column seconds_in_stage: left_at - entered_at in whole seconds (exact, so sums of them do not depend on the order they are added in); null for the current stay
-- column hours_in_stage: seconds_in_stage in hours, rounded to 6 decimals; null for the current stay
-- column from_history: false for the stay reconstructed from created_at (history missing its creation record)
-- test: unique(deal_id, entry_seq)
-- test: not_null(deal_id, entry_seq, stage, entered_at)
-- test: relationships(stage -> dim_stage.stage)
-- test: relationships(deal_id -> stg_deal.deal_id)
-- test: sql: select * from fct_stage_transition where left_at < entered_at
-- test: sql: select deal_id, count(*) as current_stays from fct_stage_transition where left_at is null group by deal_id having count(*) <> 1
-- incremental: deal_id from deals.deal_id, deal_stage_changes.deal_id
-- A deal's history either starts with its creation (from_stage null) or with a first move out
-- of a stage it has been in since created_at; deals with no history at all have been in their
-- current stage since created_at. Repeated entries into the same stage (pipeline moves,
-- duplicated records) are one stay.
with changes as (
    select c.deal_id, c.from_stage, c.to_stage, c.changed_at
    from deal_stage_changes c
    join stg_deal d on d.deal_id = c.deal_id
),
first_change as (
    select deal_id, from_stage, changed_at
    from (
        select deal_id, from_stage, changed_at,
            row_number() over (partition by deal_id order by changed_at, from_stage nulls first) as rn
        from changes
    ) f
    where rn = 1
),
starts as (
    -- Clock skew between systems can put created_at after the first move; the stay the history
    -- starts in cannot begin after it.
    select d.deal_id, coalesce(f.from_stage, d.stage) as stage,
        case when f.changed_at < d.created_at then f.changed_at else d.created_at end as entered_at,
        false as from_history
    from stg_deal d
    left join first_change f on f.deal_id = d.deal_id
    where f.deal_id is null or f.from_stage is not null
),
entries as (
    select deal_id, stage, entered_at, from_history from starts
    union all
    select deal_id, to_stage as stage, changed_at as entered_at, true as from_history from changes
),
ordered as (
    select e.deal_id, e.stage, e.entered_at, e.from_history,
        lag(e.stage) over (
            partition by e.deal_id order by e.entered_at, e.from_history, s.stage_order
        ) as previous_stage,
        s.stage_order
    from entries e
    left join dim_stage s on s.stage = e.stage
),
stays as (
    select deal_id, stage, stage_order, entered_at, from_history,
        row_number() over (partition by deal_id order by entered_at, from_history, stage_order) as entry_seq,
        lead(entered_at) over (partition by deal_id order by entered_at, from_history, stage_order) as left_at,
        lead(stage) over (partition by deal_id order by entered_at, from_history, stage_order) as next_stage
    from ordered
    where previous_stage is null or previous_stage <> stage
)
select
    deal_id,
    cast(entry_seq as int) as entry_seq,
    stage,
    stage_order,
    entered_at,
    left_at,
    next_stage,
    seconds_between(entered_at, left_at) as seconds_in_stage,
    cast(round(cast(seconds_between(entered_at, left_at) as decimal(38, 6)) / 3600, 6) as decimal(18, 6)) as hours_in_stage,
    from_history
from stays
