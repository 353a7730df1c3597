-- The intake migration in figures: branches selected and switched, legacy and unified requests, legacy requests after their branch's switch, orphans.
-- column branches_total: branches selected
-- column branches_switched: of them, switched to the CRM by the end of the period
-- column legacy_requests: requests recorded by legacy intake systems
-- column unified_requests: requests recorded by the CRM itself
-- column legacy_after_switch: legacy requests on or after their branch's switch date
-- column orphans: requests neither rejected nor linked to an existing deal
with b as {query.intake_branches},
r as {query.intake_requests},
asof as {query.intake_as_of}
select bs.branches_total, bs.branches_switched, rs.legacy_requests, rs.unified_requests,
    rs.legacy_after_switch, rs.orphans
from (
    select count(*) as branches_total,
        coalesce(sum(case when b.crm_switch_date <= asof.day then 1 else 0 end), 0) as branches_switched
    from b cross join asof
) bs
cross join (
    select coalesce(sum(case when unified then 0 else 1 end), 0) as legacy_requests,
        coalesce(sum(case when unified then 1 else 0 end), 0) as unified_requests,
        coalesce(sum(case when not unified and after_switch then 1 else 0 end), 0) as legacy_after_switch,
        coalesce(sum(case when orphan then 1 else 0 end), 0) as orphans
    from r
) rs
