-- Cohort retention grid: clients by the month of their first won deal, and how many of them won a deal each later month, summed over the selected holdings and branches before dividing.
-- filter cohorts: cohort_month >= :from
-- filter cohorts: cohort_month <= :to
-- filter cohorts: holding_id in :holding
-- filter cohorts: branch_id in :branch
-- column cohort_month: month of the cohort's first won deals (first day)
-- column months_since: months after the cohort month (0 = the cohort month)
-- column cohort_clients: clients in the cohort
-- column retained_clients: of them, those with a won deal in that month
-- column retention: retained_clients / cohort_clients
select cohort_month, months_since, sum(cohort_clients) as cohort_clients,
    sum(retained_clients) as retained_clients,
    cast(sum(retained_clients) as double) / nullif(cast(sum(cohort_clients) as double), 0) as retention
from mart_cohort_retention
where {cohorts}
group by cohort_month, months_since
order by cohort_month, months_since
