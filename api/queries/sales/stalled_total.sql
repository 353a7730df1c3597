-- The amount of every selected stalled deal (the names beside each deal leave its rows one per deal).
-- column total_amount: amount of every matching stalled deal, in the reporting currency
select sum(amount) as total_amount from {query.stalled} s
