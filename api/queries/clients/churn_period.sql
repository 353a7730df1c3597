-- Churn and inflow over the whole period: the flows summed over every selected month, rates as ratios of the sums.
-- column *: = churn
select sum(new_clients) as new_clients, sum(churned_clients) as churned_clients,
    sum(reactivated_clients) as reactivated_clients,
    cast(sum(churned_clients) as double) / nullif(cast(sum(active_start) as double), 0) as churn_rate,
    cast(sum(new_clients) as double) / nullif(cast(sum(active_start) as double), 0) as inflow_rate
from {query.client_month_selection} c
