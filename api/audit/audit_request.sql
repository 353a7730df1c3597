-- The requests the audit reads: every intake request of a legacy system ([audit] legacy_sources) or of the CRM side ([audit] crm_sources), with its branch's switch date, its local days, and the reference a migrated request kept, split into the legacy system it names (if any) and the id.
-- column system: the source that holds it (source_system)
-- column source_id: its id in that system
-- column side: legacy or crm
-- column client_inn: the client's INN, blank taken as unknown
-- column created_day: local day it was received (the branch's time zone, UTC without a branch)
-- column day_number: created_day as days since 1970-01-01 (for week arithmetic)
-- column resolved_day: local day it was resolved
-- column ref_system: the legacy system a `SYSTEM:ID` reference names; null for a bare id
-- column ref_id: the legacy id the reference names
-- column switch_date: its branch's crm_switch_date; null for branches that have not switched (not audited)
-- column switch_day_number: switch_date as days since 1970-01-01
with r as (
    select r.*, coalesce(b.time_zone, 'UTC') as tz, b.crm_switch_date,
        nullif(trim(r.legacy_ref), '') as kept_ref
    from intake_requests r
    left join branches b on b.branch_id = r.branch_id
    where r.source_system in ({legacy_sources}) or r.source_system in ({crm_sources})
)
select
    source_system as system,
    source_id,
    case when source_system in ({legacy_sources}) then 'legacy' else 'crm' end as side,
    branch_id,
    department,
    nullif(trim(client_inn), '') as client_inn,
    subject,
    created_at,
    local_date(created_at, tz) as created_day,
    to_unixtime(local_date(created_at, tz)) / 86400 as day_number,
    status,
    resolved_at,
    local_date(resolved_at, tz) as resolved_day,
    amount,
    kept_ref as legacy_ref,
    case when strpos(kept_ref, ':') > 0 then split_part(kept_ref, ':', 1) end as ref_system,
    case when strpos(kept_ref, ':') > 0 then substr(kept_ref, strpos(kept_ref, ':') + 1) else kept_ref end as ref_id,
    crm_switch_date as switch_date,
    to_unixtime(crm_switch_date) / 86400 as switch_day_number
from r
