-- Every pair the audit accepts: by the kept reference (a reference naming one legacy request), else by similarity when the legacy request has exactly one candidate and the candidate exactly one legacy request. A legacy request may pair with several CRM requests (migrated twice).
-- column legacy_system: the legacy request's system
-- column legacy_id: its id
-- column crm_system: the CRM request's system
-- column crm_id: its id
-- column rule: reference or similarity
-- column score: 1 for a reference, the subjects' similarity otherwise
with refs as (
    select crm_system, crm_id, count(*) as n from audit_ref_match group by crm_system, crm_id
),
lc as (
    select legacy_system, legacy_id, count(*) as n from audit_candidate group by legacy_system, legacy_id
),
cc as (
    select crm_system, crm_id, count(*) as n from audit_candidate group by crm_system, crm_id
)
select m.legacy_system, m.legacy_id, m.crm_system, m.crm_id, 'reference' as rule, 1.0 as score
from audit_ref_match m
join refs on refs.crm_system = m.crm_system and refs.crm_id = m.crm_id and refs.n = 1
union all
select a.legacy_system, a.legacy_id, a.crm_system, a.crm_id, 'similarity' as rule, a.score
from audit_candidate a
join lc on lc.legacy_system = a.legacy_system and lc.legacy_id = a.legacy_id and lc.n = 1
join cc on cc.crm_system = a.crm_system and cc.crm_id = a.crm_id and cc.n = 1
order by legacy_system, legacy_id, crm_system, crm_id
