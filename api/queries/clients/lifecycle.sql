-- The clients in the selected lifecycle states with their names, largest lifetime commission first.
-- filter states: l.state in :state
-- column *: = mart_client_lifecycle
-- column client_name: its name
select l.client_id, c.name as client_name, l.branch_id, l.holding_id, l.state, l.first_won_at, l.last_won_at,
    l.first_won_month, l.last_won_month, l.won_deals, l.lifetime_amount, l.lifetime_commission
from {query.client_lifecycle_selection} l
left join clients c on c.client_id = l.client_id
where {states}
order by l.lifetime_commission desc nulls last, l.client_id
