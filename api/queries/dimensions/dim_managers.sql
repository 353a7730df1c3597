-- Managers for the filter dropdown, narrowed by the holding and branch chosen, by name.
-- filter managers: b.holding_id in :holding
-- filter managers: m.branch_id in :branch
-- column *: = managers
-- column holding_id: holding of the branch
select m.manager_id, m.name, m.branch_id, b.holding_id, m.active
from managers m
left join branches b on b.branch_id = m.branch_id
where {managers}
order by m.name, m.manager_id
