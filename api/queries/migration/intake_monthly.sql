-- Legacy requests per branch and local month.
-- column month: local month (first day)
-- column branch_id: branch
-- column legacy_requests: legacy requests
select month, branch_id, count(*) as legacy_requests
from {query.intake_requests} r
where not unified
group by month, branch_id
order by month, branch_id
