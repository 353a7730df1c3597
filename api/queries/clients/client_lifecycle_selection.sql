-- Clients' lifecycle states (mart_client_lifecycle) in the request's holdings and branches.
-- filter clients: l.holding_id in :holding
-- filter clients: l.branch_id in :branch
-- column *: = mart_client_lifecycle
select * from mart_client_lifecycle l where {clients}
