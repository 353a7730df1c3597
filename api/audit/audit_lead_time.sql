-- Lead time from request to resolution per branch and department, before the switch (legacy requests received before it) and after (requests the CRM received itself on or after it): resolved requests only. Lead times are skewed (a few take weeks), so the centre is the geometric mean of the hours and its 95% interval is the normal interval of the mean of their natural logs, exp(mean ± 1.96 · sd / √n), sd the sample standard deviation: exact, no random draws, the same rows give the same numbers. Fewer than 2 requests: no interval.
-- column branch_id: the branch
-- column department: the department
-- column period: before or after the switch
-- column requests: resolved requests
-- column geo_mean_hours: geometric mean of the lead times, hours (2 decimals)
-- column ci_low_hours: lower end of its 95% interval
-- column ci_high_hours: upper end of its 95% interval
with t as (
    select branch_id, department,
        case when created_day < switch_date then 'before' else 'after' end as period,
        ln(greatest(cast(to_unixtime(resolved_at) - to_unixtime(created_at) as double), 60.0) / 3600.0) as log_hours
    from audit_request
    where switch_date is not null and resolved_at is not null and resolved_at >= created_at
        and (
            (side = 'legacy' and created_day < switch_date)
            or (side = 'crm' and legacy_ref is null and created_day >= switch_date)
        )
),
s as (
    select branch_id, department, period, count(*) as requests, avg(log_hours) as m, stddev_samp(log_hours) as sd
    from t
    group by branch_id, department, period
)
select branch_id, department, period, requests,
    round(exp(m), 2) as geo_mean_hours,
    case when requests >= 2 then round(exp(m - 1.96 * sd / sqrt(cast(requests as double))), 2) end as ci_low_hours,
    case when requests >= 2 then round(exp(m + 1.96 * sd / sqrt(cast(requests as double))), 2) end as ci_high_hours
from s
order by branch_id, department, period desc
