-- Every intake request with its migration status: recorded by the CRM itself (unified) or by a legacy intake system, on or after its branch's switch to the CRM, orphaned (neither rejected nor linked to an existing deal; a deal deleted upstream no longer counts), dated in the branch's time zone.
-- column request_id: the request
-- column branch_id: the branch it came in at
-- column holding_id: the branch's holding
-- column time_zone: the branch's IANA time zone (UTC when the branch is unknown)
-- column department: marketing, content, docflow, accounting or self_service
-- column subject: short subject
-- column status: new, in_progress, done or rejected
-- column created_at: when it was received (UTC)
-- column month: local month it was received in (first day)
-- column unified: recorded by the CRM side (a system that holds deals, or requests migrated from a legacy system with their reference); false for legacy intake systems
-- column after_switch: received on or after its branch's crm_switch_date (local day)
-- column orphan: neither rejected nor linked to an existing deal (one not deleted upstream)
-- column age_days: whole days from created_at to the reference time
-- test: unique(request_id)
-- test: not_null(request_id, time_zone, created_at, month, unified, after_switch, orphan)
-- test: sql: select * from mart_intake_request where after_switch and holding_id is null
with crm as (
    -- The CRM side: the system holding deals, and any system holding requests migrated from a
    -- legacy one (they keep a legacy reference): intake moved there.
    select distinct source_system from deals
    union
    select distinct source_system from intake_requests where legacy_ref is not null
),
linked as (
    select distinct deal_id from deals where not deleted
),
ref as (
    select reference_time from stg_reference_time
),
r as (
    select
        r.request_id, r.branch_id, b.holding_id, coalesce(b.time_zone, 'UTC') as time_zone, r.department, r.subject,
        r.status, r.created_at, r.source_system, r.deal_id, b.crm_switch_date
    from intake_requests r
    left join branches b on b.branch_id = r.branch_id
)
select
    r.request_id,
    r.branch_id,
    r.holding_id,
    r.time_zone,
    r.department,
    r.subject,
    r.status,
    r.created_at,
    local_month(r.created_at, r.time_zone) as month,
    crm.source_system is not null as unified,
    coalesce(r.crm_switch_date is not null and local_date(r.created_at, r.time_zone) >= r.crm_switch_date, false)
        as after_switch,
    r.status <> 'rejected' and linked.deal_id is null as orphan,
    cast(floor((to_unixtime(ref.reference_time) - to_unixtime(r.created_at)) / 86400.0) as bigint) as age_days
from r
cross join ref
left join crm on crm.source_system = r.source_system
left join linked on linked.deal_id = r.deal_id
