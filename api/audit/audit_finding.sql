-- Every finding, one row each, on branches that have switched (requests of other branches are not expected in the CRM yet). Legacy-side findings name the legacy request, CRM-side ones the CRM request; `related_*` names the other record involved.
-- column kind: unmatched_legacy, unmatched_crm, ambiguous, migrated_twice, duplicate_in_system, mismatch_client, mismatch_amount, mismatch_created, mismatch_status, legacy_after_switch or volume_drop
-- column branch_id: the branch
-- column department: the department (null for volume_drop)
-- column system: the system holding the record the finding is about (null for volume_drop)
-- column source_id: the record's id in it
-- column related_system: the other record's system (the CRM copy, the candidate, the original)
-- column related_id: the other record's id
-- column legacy_value: the legacy side's value (mismatches), or what was counted before the switch
-- column crm_value: the CRM side's value (mismatches), or what was counted after it
-- column detail: the rule or numbers behind the finding
with req as (
    select * from audit_request where switch_date is not null
),
legacy as (select * from req where side = 'legacy'),
crm as (select * from req where side = 'crm'),
matched_legacy as (select distinct legacy_system as system, legacy_id as source_id from audit_match),
matched_crm as (select distinct crm_system as system, crm_id as source_id from audit_match),
lc as (
    select legacy_system, legacy_id, count(*) as n from audit_candidate group by legacy_system, legacy_id
),
cc as (
    select crm_system, crm_id, count(*) as n from audit_candidate group by crm_system, crm_id
),
ambiguous_pairs as (
    -- Similarity candidates where either end has more than one.
    select a.legacy_system, a.legacy_id, a.crm_system, a.crm_id, a.score
    from audit_candidate a
    join lc on lc.legacy_system = a.legacy_system and lc.legacy_id = a.legacy_id
    join cc on cc.crm_system = a.crm_system and cc.crm_id = a.crm_id
    where lc.n > 1 or cc.n > 1
),
ambiguous_refs as (
    select crm_system, crm_id from audit_ref_match group by crm_system, crm_id having count(*) > 1
),
ambiguous_records as (
    select legacy_system as system, legacy_id as source_id from ambiguous_pairs
    union select crm_system, crm_id from ambiguous_pairs
    union select crm_system, crm_id from ambiguous_refs
),
copies as (
    select legacy_system, legacy_id, count(*) as n from audit_match group by legacy_system, legacy_id
),
pairs as (
    select m.rule, m.crm_system, m.crm_id,
        l.system as l_system, l.source_id as l_id, l.branch_id, l.department,
        l.client_inn as l_inn, c.client_inn as c_inn, l.amount as l_amount, c.amount as c_amount,
        l.created_day as l_day, c.created_day as c_day, l.status as l_status, c.status as c_status
    from audit_match m
    join legacy l on l.system = m.legacy_system and l.source_id = m.legacy_id
    join audit_request c on c.system = m.crm_system and c.source_id = m.crm_id
),
branch_volume as (
    select branch_id, switch_date,
        sum(case when week_no < 0 then legacy_requests + crm_requests else 0 end) as n_before,
        sum(case when week_no >= 0 then legacy_requests + crm_requests else 0 end) as n_after
    from audit_volume
    group by branch_id, switch_date
),
data_end as (select max(day_number) as last_day from audit_request),
findings as (
    select 'unmatched_legacy' as kind, l.branch_id, l.department, l.system, l.source_id,
        cast(null as varchar) as related_system, cast(null as varchar) as related_id,
        cast(null as varchar) as legacy_value, cast(null as varchar) as crm_value,
        'no CRM request names it or matches it by client, department, date and subject' as detail
    from legacy l
    where not exists (select 1 from matched_legacy m where m.system = l.system and m.source_id = l.source_id)
        and not exists (select 1 from ambiguous_records a where a.system = l.system and a.source_id = l.source_id)
        and not exists (select 1 from audit_duplicate d where d.system = l.system and d.source_id = l.source_id)
    union all
    select 'unmatched_crm', c.branch_id, c.department, c.system, c.source_id,
        c.ref_system as related_system, c.legacy_ref as related_id, cast(null as varchar) as legacy_value, cast(null as varchar) as crm_value,
        case when c.legacy_ref is not null then 'its legacy_ref names no legacy request'
            else 'dated before the switch, so migrated, but matches no legacy request' end
    from crm c
    where (c.legacy_ref is not null or c.created_day < c.switch_date)
        and not exists (select 1 from matched_crm m where m.system = c.system and m.source_id = c.source_id)
        and not exists (select 1 from ambiguous_records a where a.system = c.system and a.source_id = c.source_id)
        and not exists (select 1 from audit_duplicate d where d.system = c.system and d.source_id = c.source_id)
    union all
    select 'ambiguous', l.branch_id, l.department, a.legacy_system, a.legacy_id, a.crm_system, a.crm_id,
        cast(null as varchar) as legacy_value, cast(null as varchar) as crm_value,
        concat('one of several similarity candidates, score ', cast(a.score as varchar))
    from ambiguous_pairs a
    join legacy l on l.system = a.legacy_system and l.source_id = a.legacy_id
    union all
    select 'ambiguous', c.branch_id, c.department, c.system, c.source_id, m.legacy_system, m.legacy_id,
        cast(null as varchar) as legacy_value, cast(null as varchar) as crm_value,
        concat('its legacy_ref `', c.legacy_ref, '` names several legacy requests')
    from ambiguous_refs r
    join audit_ref_match m on m.crm_system = r.crm_system and m.crm_id = r.crm_id
    join crm c on c.system = r.crm_system and c.source_id = r.crm_id
    union all
    select 'migrated_twice', p.branch_id, p.department, p.l_system, p.l_id, p.crm_system, p.crm_id,
        cast(null as varchar) as legacy_value, cast(null as varchar) as crm_value,
        concat('one of ', cast(k.n as varchar), ' CRM requests matched to it (', p.rule, ')')
    from pairs p
    join copies k on k.legacy_system = p.l_system and k.legacy_id = p.l_id and k.n > 1
    union all
    select 'duplicate_in_system', r.branch_id, r.department, d.system, d.source_id,
        d.system as related_system, d.original_id as related_id, cast(null as varchar) as legacy_value, cast(null as varchar) as crm_value,
        'same branch, department, client INN, subject and day as an earlier request of the same system'
    from audit_duplicate d
    join req r on r.system = d.system and r.source_id = d.source_id
    union all
    select 'mismatch_client', branch_id, department, l_system, l_id, crm_system, crm_id, l_inn, c_inn,
        concat('client INN differs (', rule, ')')
    from pairs where coalesce(l_inn, '') <> coalesce(c_inn, '')
    union all
    select 'mismatch_amount', branch_id, department, l_system, l_id, crm_system, crm_id,
        cast(l_amount as varchar), cast(c_amount as varchar), concat('amount differs (', rule, ')')
    from pairs where l_amount is distinct from c_amount
    union all
    select 'mismatch_created', branch_id, department, l_system, l_id, crm_system, crm_id,
        cast(l_day as varchar), cast(c_day as varchar), concat('received on a different local day (', rule, ')')
    from pairs where l_day <> c_day
    union all
    select 'mismatch_status', branch_id, department, l_system, l_id, crm_system, crm_id, l_status, c_status,
        concat('status differs (', rule, ')')
    from pairs where l_status <> c_status
    union all
    select 'legacy_after_switch', l.branch_id, l.department, l.system, l.source_id,
        cast(null as varchar) as related_system, cast(null as varchar) as related_id, cast(l.created_day as varchar), cast(l.switch_date as varchar),
        'received by a legacy system on or after its branch switched to the CRM'
    from legacy l where l.created_day >= l.switch_date
    union all
    select 'volume_drop', v.branch_id, cast(null as varchar) as department, cast(null as varchar) as system, cast(null as varchar) as source_id,
        cast(null as varchar) as related_system, cast(null as varchar) as related_id,
        cast(v.n_before as varchar), cast(v.n_after as varchar),
        concat('requests in the ', cast({volume_weeks} as varchar), ' weeks after the switch fell below ',
            cast({volume_drop_ratio} as varchar), ' of the weeks before')
    from branch_volume v
    cross join data_end e
    join (select distinct branch_id, switch_day_number from req) s on s.branch_id = v.branch_id
    where v.n_before >= {volume_min_requests}
        and s.switch_day_number + 7 * {volume_weeks} <= e.last_day + 1
        and cast(v.n_after as double) < cast(v.n_before as double) * {volume_drop_ratio}
)
select * from findings
order by kind, branch_id, system, source_id, related_system, related_id
