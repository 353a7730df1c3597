-- Rule 2, similarity: the candidate pairs for legacy requests no reference names. A candidate is a CRM request without a kept reference, dated before its branch's switch (only a migrated request can be), of the same client INN and department, created at most {window_days} days apart, whose subject is at least {min_similarity} similar (1 - edit distance / length of the longer subject, case and outer spaces ignored).
-- column legacy_system: the legacy request's system
-- column legacy_id: its id
-- column crm_system: the candidate's system
-- column crm_id: its id
-- column score: the subjects' similarity, 0 to 1 (4 decimals)
with l as (
    select * from audit_request r
    where side = 'legacy' and client_inn is not null
        and not exists (select 1 from audit_ref_match m where m.legacy_system = r.system and m.legacy_id = r.source_id)
),
c as (
    select * from audit_request
    where side = 'crm' and legacy_ref is null and client_inn is not null and created_day < switch_date
),
p as (
    select l.system as legacy_system, l.source_id as legacy_id, c.system as crm_system, c.source_id as crm_id,
        lower(trim(coalesce(l.subject, ''))) as ls, lower(trim(coalesce(c.subject, ''))) as cs
    from l
    join c on c.client_inn = l.client_inn and c.department = l.department
    where abs(to_unixtime(l.created_at) - to_unixtime(c.created_at)) <= {window_days} * 86400
),
s as (
    select *, 1.0 - cast(levenshtein(ls, cs) as double)
        / cast(greatest(character_length(ls), character_length(cs), 1) as double) as similarity
    from p
)
select legacy_system, legacy_id, crm_system, crm_id, round(similarity, 4) as score
from s
where similarity >= {min_similarity}
