-- Churn and inflow over the whole period: the flows summed over every selected month, rates as ratios of the sums, null with the reason when any month of the period has no base.
-- column *: = churn
select sum(new_clients) as new_clients, sum(churned_clients) as churned_clients,
    sum(reactivated_clients) as reactivated_clients,
    case when count(rates_null_reason) = 0
        then cast(sum(churned_clients) as double) / nullif(cast(sum(active_start) as double), 0) end as churn_rate,
    case when count(rates_null_reason) = 0
        then cast(sum(new_clients) as double) / nullif(cast(sum(active_start) as double), 0) end as inflow_rate,
    min(rates_null_reason) as rates_null_reason
from {query.client_month_selection} c
