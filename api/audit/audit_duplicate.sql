-- Duplicates inside one system: requests of the same system, branch, department and client INN with the same subject (case and outer spaces ignored) received on the same local day, none of them carrying a kept reference (those are judged by the reference: migrated twice). The first one received (then the lowest id) is the original; every later one is a duplicate of it.
-- column system: the system holding both
-- column source_id: the duplicate
-- column original_id: the first request of the group
with g as (
    select system, source_id, created_at,
        row_number() over (
            partition by system, branch_id, department, client_inn, lower(trim(subject)), created_day
            order by created_at, source_id
        ) as n,
        first_value(source_id) over (
            partition by system, branch_id, department, client_inn, lower(trim(subject)), created_day
            order by created_at, source_id
        ) as original_id
    from audit_request
    where client_inn is not null and subject is not null and legacy_ref is null
)
select system, source_id, original_id from g where n > 1
order by system, source_id
