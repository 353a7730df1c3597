-- Per selected branch: its switch to the CRM and its legacy requests, orphans and the latest one.
-- column *: = branches
-- column switched: switched by the end of the period
-- column legacy_requests: legacy requests
-- column legacy_after_switch: of them, on or after the switch date
-- column orphans: orphan legacy requests
-- column last_legacy_at: the latest legacy request (UTC)
with b as {query.intake_branches},
asof as {query.intake_as_of},
per as (
    select branch_id, count(*) as legacy_requests,
        sum(case when after_switch then 1 else 0 end) as legacy_after_switch,
        sum(case when orphan then 1 else 0 end) as orphans, max(created_at) as last_legacy_at
    from {query.intake_requests} r
    where not unified
    group by branch_id
)
select b.branch_id, b.name, b.holding_id, b.time_zone, b.crm_switch_date,
    coalesce(b.crm_switch_date <= asof.day, false) as switched,
    coalesce(per.legacy_requests, 0) as legacy_requests,
    coalesce(per.legacy_after_switch, 0) as legacy_after_switch,
    coalesce(per.orphans, 0) as orphans, per.last_legacy_at
from b cross join asof left join per on per.branch_id = b.branch_id
order by b.crm_switch_date nulls last, b.name, b.branch_id
