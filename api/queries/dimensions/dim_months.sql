-- Months with data, for the period pickers.
-- column month: a month with data, YYYY-MM
select to_char(month, '%Y-%m') as month from dim_month order by month
