-- The kanban's cards: open deals (mart_deal_board), at most per_stage per stage by amount, with the deal's title and its client's and manager's names.
-- filter cards: b.created_month >= :from
-- filter cards: b.created_month <= :to
-- filter cards: b.pipeline in :pipeline
-- filter cards: b.holding_id in :holding
-- filter cards: b.branch_id in :branch
-- filter cards: b.manager_id in :manager
-- column *: = mart_deal_board
-- column title: title
-- column client_name: client name
-- column manager_name: manager name
-- column rank_in_stage: 1 = the stage's largest amount
with cards as (
    select b.deal_id, t.title, b.client_id, c.name as client_name, b.pipeline, b.holding_id, b.branch_id, b.time_zone,
        b.manager_id, m.name as manager_name, b.stage, b.stage_order, b.amount, b.commission, b.created_at,
        b.entered_stage_at, b.days_in_stage, b.stalled, b.days_idle,
        row_number() over (partition by b.stage order by b.amount desc nulls last, b.deal_id) as rank_in_stage
    from mart_deal_board b
    left join deals t on t.deal_id = b.deal_id
    left join clients c on c.client_id = b.client_id
    left join managers m on m.manager_id = b.manager_id
    where {cards}
)
select * from cards where rank_in_stage <= :per_stage order by stage_order, rank_in_stage
