-- Stalled deals (mart_stalled_deals) with their client, creation month and names, largest amount first.
-- filter stalled: d.created_month >= :from
-- filter stalled: d.created_month <= :to
-- filter stalled: s.pipeline in :pipeline
-- filter stalled: s.holding_id in :holding
-- filter stalled: s.branch_id in :branch
-- filter stalled: s.manager_id in :manager
-- filter stalled: s.stage in :stage
-- column *: = mart_stalled_deals
-- column client_id: = fct_deal
-- column created_month: = fct_deal
-- column title: the deal's title
-- column client_name: client name
-- column manager_name: manager name
select s.deal_id, t.title, d.client_id, c.name as client_name, s.pipeline, s.holding_id, s.branch_id, s.manager_id,
    m.name as manager_name, s.stage, s.entered_stage_at, s.last_activity_at, s.days_idle, s.sla_days,
    s.amount, s.commission, d.created_month, s.reference_time
from mart_stalled_deals s
join fct_deal d on d.deal_id = s.deal_id
left join deals t on t.deal_id = s.deal_id
left join clients c on c.client_id = d.client_id
left join managers m on m.manager_id = s.manager_id
where {stalled}
order by s.amount desc nulls last, s.deal_id
