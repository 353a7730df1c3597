-- The warehouse's reference time: the latest deals.updated_at, used instead of now() so a build over the same data always gives the same result.
-- column reference_time: latest deals.updated_at (UTC); null while there are no deals
-- column reference_month: first day of the UTC month of reference_time
-- test: sql: select count(*) as n from stg_reference_time having count(*) <> 1
select
    max(updated_at) as reference_time,
    cast(date_trunc('month', max(updated_at)) as date) as reference_month
from deals
