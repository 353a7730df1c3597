-- The amount of every deal the drill-down selects (the names beside each deal leave its rows one per deal).
-- column total_amount: amount of every matching deal, in the reporting currency
select sum(amount) as total_amount from {query.deals} d
