-- Cohort retention grid: clients grouped by the month of their first won deal; for each later month, how many of them won a deal that month.
-- column cohort_month: first day of the month of the cohort's first won deals
-- column branch_id: the clients' branch (fct_client_month)
-- column holding_id: the branch's holding
-- column months_since: months after the cohort month (0 = the cohort month itself)
-- column cohort_clients: clients in the cohort
-- column retained_clients: of them, those with a won deal in cohort_month + months_since
-- test: unique(cohort_month, branch_id, months_since)
-- test: not_null(cohort_month, months_since, cohort_clients, retained_clients)
-- test: sql: select * from mart_cohort_retention where retained_clients > cohort_clients or months_since < 0
-- test: sql: select * from mart_cohort_retention where months_since = 0 and retained_clients <> cohort_clients
with client_cohort as (
    select client_id, branch_id, holding_id, month as cohort_month, month_index as cohort_index
    from fct_client_month
    where is_new
),
cohort as (
    select branch_id, holding_id, cohort_month, cohort_index, count(*) as cohort_clients
    from client_cohort
    group by branch_id, holding_id, cohort_month, cohort_index
),
retained as (
    select c.branch_id, c.holding_id, c.cohort_index, w.month_index - c.cohort_index as months_since,
        count(*) as retained_clients
    from client_cohort c
    join fct_client_month w on w.client_id = c.client_id and w.won_deals > 0
    group by c.branch_id, c.holding_id, c.cohort_index, w.month_index - c.cohort_index
)
select
    c.cohort_month,
    c.branch_id,
    c.holding_id,
    m.month_index - c.cohort_index as months_since,
    c.cohort_clients,
    coalesce(r.retained_clients, 0) as retained_clients
from cohort c
join dim_month m on m.month_index >= c.cohort_index
left join retained r
    on coalesce(r.branch_id, '') = coalesce(c.branch_id, '')
    and coalesce(r.holding_id, '') = coalesce(c.holding_id, '')
    and r.cohort_index = c.cohort_index
    and r.months_since = m.month_index - c.cohort_index
