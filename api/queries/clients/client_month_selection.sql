-- The client base's months (mart_client_monthly) in the request's months, holdings and branches: what churn sums.
-- filter months: month >= :from
-- filter months: month <= :to
-- filter months: holding_id in :holding
-- filter months: branch_id in :branch
-- column *: = mart_client_monthly
select * from mart_client_monthly where {months}
