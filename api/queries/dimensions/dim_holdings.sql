-- Holdings for the filter dropdown, by name.
-- column *: = holdings
select holding_id, name from holdings order by name, holding_id
