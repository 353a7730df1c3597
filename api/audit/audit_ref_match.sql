-- Rule 1, the kept reference: a CRM request whose legacy_ref names a legacy request, by its id (`1042`) or by system and id (`intake:1042`). A reference naming several legacy requests (a bare id two legacy systems both hold) pairs with each; the audit calls such a CRM request ambiguous.
-- column legacy_system: the legacy request's system
-- column legacy_id: its id
-- column crm_system: the CRM request's system
-- column crm_id: its id
select l.system as legacy_system, l.source_id as legacy_id, c.system as crm_system, c.source_id as crm_id
from audit_request c
join audit_request l on l.source_id = c.ref_id
where c.side = 'crm' and l.side = 'legacy' and (c.ref_system is null or c.ref_system = l.system)
