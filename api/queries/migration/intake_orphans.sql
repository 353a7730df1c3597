-- The orphans, oldest first: selected requests neither rejected nor linked to an existing deal.
-- column *: = mart_intake_request
select request_id, branch_id, time_zone, department, subject, status, created_at, age_days
from {query.intake_requests} r
where orphan
order by created_at, request_id
