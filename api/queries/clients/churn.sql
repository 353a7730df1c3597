-- Churn and inflow per month, summed over the selected holdings and branches before dividing; the rates are null, with the reason, where a month's look-back is not covered by the history (its base misses clients who bought before the data starts).
-- column month: month (first day)
-- column active_start: clients active at the end of the previous month
-- column active_end: clients active at the end of the month
-- column new_clients: clients whose first won deal is in the month
-- column churned_clients: active at the previous month's end, not at this one's
-- column reactivated_clients: won a deal after having churned
-- column churn_rate: churned / active at start; null without a base
-- column inflow_rate: new / active at start; null without a base
-- column rates_null_reason: why the rates have no base ("not enough history: 3 of 12 months"); null when they have one
select month, sum(active_start) as active_start, sum(active_end) as active_end,
    sum(new_clients) as new_clients, sum(churned_clients) as churned_clients,
    sum(reactivated_clients) as reactivated_clients,
    case when count(rates_null_reason) = 0
        then cast(sum(churned_clients) as double) / nullif(cast(sum(active_start) as double), 0) end as churn_rate,
    case when count(rates_null_reason) = 0
        then cast(sum(new_clients) as double) / nullif(cast(sum(active_start) as double), 0) end as inflow_rate,
    min(rates_null_reason) as rates_null_reason
from {query.client_month_selection} c
group by month
order by month
