-- Branches for the filter dropdown, narrowed by the holding chosen, by name.
-- filter branches: holding_id in :holding
-- column *: = branches
select branch_id, name, holding_id, city, time_zone from branches where {branches} order by name, branch_id
