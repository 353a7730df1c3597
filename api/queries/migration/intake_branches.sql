-- The branches the intake migration reports on: the request's holdings and branches, with their CRM switch dates.
-- filter branches: holding_id in :holding
-- filter branches: branch_id in :branch
-- column *: = branches
select branch_id, holding_id, name, time_zone, crm_switch_date from branches where {branches}
