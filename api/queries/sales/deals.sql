-- The deals behind any aggregate (the drill-down): fct_deal with the deal's title and its client's and manager's names.
-- choice period: created = d.created_month, closed = d.closed_month
-- filter deals: {period} >= :from
-- filter deals: {period} <= :to
-- filter deals: d.pipeline in :pipeline
-- filter deals: d.holding_id in :holding
-- filter deals: d.branch_id in :branch
-- filter deals: d.manager_id in :manager
-- filter deals: d.stage in :stage
-- filter deals: d.status in :status
-- filter deals: d.last_open_stage in :last_open_stage
-- filter deals: d.client_id in :client
-- filter deals: d.created_month = :created_month
-- filter deals: d.closed_month = :closed_month
-- filter deals: d.max_stage_order >= (select min(stage_order) from dim_stage where stage = :reached)
-- choice sort: created_at = d.created_at, closed_at = d.closed_at, amount = d.amount, commission = d.commission
-- choice order: desc = desc, asc = asc
-- column *: = fct_deal
-- column title: the deal's title
-- column client_name: client name
-- column manager_name: manager name
select d.deal_id, d.source_system, d.source_id, t.title, d.client_id, c.name as client_name,
    d.holding_id, d.branch_id, d.manager_id, m.name as manager_name, d.pipeline, d.stage, d.status,
    d.last_open_stage, d.max_stage_order, d.amount, d.commission, d.created_at, d.closed_at,
    d.created_month, d.closed_month, d.lost_reason
from fct_deal d
left join deals t on t.deal_id = d.deal_id
left join clients c on c.client_id = d.client_id
left join managers m on m.manager_id = d.manager_id
where {deals}
order by {sort} {order} nulls last, d.deal_id
