-- One deal as the drill-down lists it, plus its branch's time zone.
-- column *: = fct_deal
-- column title: the deal's title
-- column client_name: client name
-- column manager_name: manager name
select d.deal_id, d.source_system, d.source_id, t.title, d.client_id, c.name as client_name,
    d.holding_id, d.branch_id, d.time_zone, d.manager_id, m.name as manager_name, d.pipeline, d.stage,
    d.status, d.last_open_stage, d.amount, d.commission, d.created_at, d.closed_at, d.lost_reason
from fct_deal d
left join deals t on t.deal_id = d.deal_id
left join clients c on c.client_id = d.client_id
left join managers m on m.manager_id = d.manager_id
where d.deal_id = :deal
