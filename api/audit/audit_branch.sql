-- Per switched branch: its switch, its requests on each side, the last legacy request, the findings by kind and the verdict. Verdict rules (audit_rule, from [audit] verdicts) are judged per branch: a rule fires when the branch has at least `at_least` findings of its kind; the branch gets the most severe verdict of the rules that fire (blocking before findings), and the first such rule in the file's order is named; no rule fires: clean.
-- column branch_id: the branch
-- column name: its name
-- column switch_date: its crm_switch_date
-- column legacy_requests: requests its legacy systems hold
-- column crm_requests: requests the CRM side holds (migrated and received)
-- column matched_legacy: legacy requests matched to a CRM request
-- column last_legacy_at: the latest request a legacy system received (UTC)
-- column legacy_after_switch: legacy requests received on or after the switch
-- column findings: findings of every kind
-- column verdict: clean, findings or blocking
-- column verdict_rule: the rule that decided it
with r as (select * from audit_request where switch_date is not null),
per as (
    select branch_id,
        sum(case when side = 'legacy' then 1 else 0 end) as legacy_requests,
        sum(case when side = 'crm' then 1 else 0 end) as crm_requests,
        max(case when side = 'legacy' then created_at end) as last_legacy_at,
        sum(case when side = 'legacy' and created_day >= switch_date then 1 else 0 end) as legacy_after_switch
    from r group by branch_id
),
matched as (
    select l.branch_id, count(distinct m.legacy_system || ':' || m.legacy_id) as matched_legacy
    from audit_match m join r l on l.system = m.legacy_system and l.source_id = m.legacy_id
    group by l.branch_id
),
counts as (
    select branch_id, kind, count(*) as n from audit_finding group by branch_id, kind
),
fired as (
    select c.branch_id, a.rule_no, a.verdict, a.finding, a.at_least, c.n,
        row_number() over (
            partition by c.branch_id
            order by case a.verdict when 'blocking' then 0 else 1 end, a.rule_no
        ) as pick
    from counts c join audit_rule a on a.finding = c.kind and c.n >= a.at_least
),
total as (select branch_id, sum(n) as findings from counts group by branch_id)
select b.branch_id, b.name, b.crm_switch_date as switch_date,
    per.legacy_requests, per.crm_requests, coalesce(matched.matched_legacy, 0) as matched_legacy,
    per.last_legacy_at, per.legacy_after_switch, coalesce(total.findings, 0) as findings,
    coalesce(f.verdict, 'clean') as verdict,
    case when f.verdict is null then 'no rule fired'
        else concat('rule ', cast(f.rule_no as varchar), ': ', f.finding, ' >= ', cast(f.at_least as varchar),
            ' (', cast(f.n as varchar), ' found)') end as verdict_rule
from branches b
join per on per.branch_id = b.branch_id
left join matched on matched.branch_id = b.branch_id
left join total on total.branch_id = b.branch_id
left join fired f on f.branch_id = b.branch_id and f.pick = 1
order by b.branch_id
