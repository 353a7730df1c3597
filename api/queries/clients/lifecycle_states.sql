-- Clients and their lifetime amounts per lifecycle state at the reference month.
-- column state: lifecycle state
-- column clients: clients in it
-- column lifetime_amount: their lifetime amount, in the reporting currency
-- column lifetime_commission: their lifetime commission, in the reporting currency
select state, count(*) as clients, sum(lifetime_amount) as lifetime_amount,
    sum(lifetime_commission) as lifetime_commission
from {query.client_lifecycle_selection} l
group by state
order by state
