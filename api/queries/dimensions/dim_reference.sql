-- The data's today: the UTC day of the latest deal update (stg_reference_time), the day a period to date runs through; the month before it is the last complete one, the default period.
-- column reference_date: YYYY-MM-DD; null while there are no deals
-- column last_complete_month: YYYY-MM, the month before the reference date's
select
    to_char(cast(reference_time as date), '%Y-%m-%d') as reference_date,
    to_char(reference_month - interval '1 month', '%Y-%m') as last_complete_month
from stg_reference_time
