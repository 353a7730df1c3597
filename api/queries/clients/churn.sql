-- Churn and inflow per month, summed over the selected holdings and branches before dividing.
-- column month: month (first day)
-- column active_start: clients active at the end of the previous month
-- column active_end: clients active at the end of the month
-- column new_clients: clients whose first won deal is in the month
-- column churned_clients: active at the previous month's end, not at this one's
-- column reactivated_clients: won a deal after having churned
-- column churn_rate: churned / active at start
-- column inflow_rate: new / active at start
select month, sum(active_start) as active_start, sum(active_end) as active_end,
    sum(new_clients) as new_clients, sum(churned_clients) as churned_clients,
    sum(reactivated_clients) as reactivated_clients,
    cast(sum(churned_clients) as double) / nullif(cast(sum(active_start) as double), 0) as churn_rate,
    cast(sum(new_clients) as double) / nullif(cast(sum(active_start) as double), 0) as inflow_rate
from {query.client_month_selection} c
group by month
order by month
