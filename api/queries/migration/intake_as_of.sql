-- The day switch-off is judged at: the last day of `to`, else the data's reference day.
-- column day: the last day of the period, else the day of the reference time (UTC)
select coalesce(
    cast(cast(:to as date) + interval '1 month' - interval '1 day' as date),
    cast(reference_time as date)
) as day
from stg_reference_time
