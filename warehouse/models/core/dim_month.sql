-- Month spine: every calendar month from the first deal's month to the reference month (or the last deal month, if later), so months without deals still appear.
-- column month: first day of the month
-- column month_index: months since 1970-01 (month arithmetic as integers: month_index - 1 is the previous month)
-- test: unique(month)
-- test: not_null(month, month_index)
-- test: sql: select a.month from dim_month a left join dim_month b on b.month_index = a.month_index - 1 where b.month is null and a.month_index > (select min(month_index) from dim_month)
with bounds as (
    select
        least(min(created_month), min(closed_month)) as first_month,
        greatest(max(created_month), max(closed_month), (select max(reference_month) from stg_reference_time)) as last_month
    from fct_deal
),
months as (
    select unnest(generate_series(first_month, last_month, interval '1 month')) as month
    from bounds
    where first_month is not null
)
select month, month_diff(month, date '1970-01-01') as month_index
from months
