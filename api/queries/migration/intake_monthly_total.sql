-- Per month of the period: legacy and unified requests, deals created in the CRM and branches switched by the month's end.
-- filter months: month >= :from
-- filter months: month <= :to
-- filter deals: created_month >= :from
-- filter deals: created_month <= :to
-- filter deals: holding_id in :holding
-- filter deals: branch_id in :branch
-- column month: month (first day)
-- column legacy_requests: legacy requests
-- column unified_requests: requests recorded by the CRM
-- column crm_deals: deals created in the CRM
-- column switched_branches: branches switched by the month's end
with b as {query.intake_branches},
r as {query.intake_requests},
-- The CRM is the system that holds the deals.
crm as (select distinct source_system from deals),
months as (select month from dim_month where {months}),
req as (
    select month, sum(case when unified then 0 else 1 end) as legacy_requests,
        sum(case when unified then 1 else 0 end) as unified_requests
    from r group by month
),
switched as (
    select m.month, count(b.branch_id) as switched_branches
    from months m
    left join b on b.crm_switch_date < cast(m.month + interval '1 month' as date)
    group by m.month
),
crm_deals as (
    select created_month as month, count(*) as crm_deals
    from fct_deal join crm using (source_system) where {deals}
    group by created_month
)
select m.month, coalesce(req.legacy_requests, 0) as legacy_requests,
    coalesce(req.unified_requests, 0) as unified_requests,
    coalesce(crm_deals.crm_deals, 0) as crm_deals,
    coalesce(switched.switched_branches, 0) as switched_branches
from months m
left join req on req.month = m.month
left join crm_deals on crm_deals.month = m.month
left join switched on switched.month = m.month
order by m.month
