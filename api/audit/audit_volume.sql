-- Requests per branch, department and week around the branch's switch: week 0 is the switch day and the six days after it, week -1 the seven days before. Legacy requests are every legacy system's; CRM requests are those the CRM received itself (no kept reference, on or after the switch), so migrated copies are not counted twice. Weeks without requests have no row.
-- column branch_id: the branch
-- column department: the department
-- column switch_date: the branch's crm_switch_date
-- column week_no: weeks from the switch (-{volume_weeks} to {volume_weeks} - 1)
-- column legacy_requests: requests received by legacy systems that week
-- column crm_requests: requests received by the CRM that week
with w as (
    select branch_id, department, switch_date, side, legacy_ref,
        cast(floor(cast(day_number - switch_day_number as double) / 7.0) as bigint) as week_no
    from audit_request
    where switch_date is not null and (side = 'legacy' or (legacy_ref is null and created_day >= switch_date))
)
select branch_id, department, switch_date, week_no,
    sum(case when side = 'legacy' then 1 else 0 end) as legacy_requests,
    sum(case when side = 'crm' then 1 else 0 end) as crm_requests
from w
where week_no >= -{volume_weeks} and week_no < {volume_weeks}
group by branch_id, department, switch_date, week_no
order by branch_id, department, week_no
