-- Intake requests (mart_intake_request) in the request's local months, holdings and branches.
-- filter requests: month >= :from
-- filter requests: month <= :to
-- filter requests: holding_id in :holding
-- filter requests: branch_id in :branch
-- column *: = mart_intake_request
select * from mart_intake_request where {requests}
