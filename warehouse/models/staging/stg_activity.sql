-- Activities with the responsible manager resolved (1C contract_signed rows carry none: the deal's manager is taken), the manager's branch, its time zone and the local day. Activities of a deal deleted upstream are left out: the CRMs delete them with the deal.
-- column activity_id: canonical activity id
-- column deal_id: deal the activity belongs to, if any
-- column activity_type: call, meeting, email, proposal_sent, contract_signed or task
-- column manager_id: the activity's manager, else the deal's manager
-- column branch_id: that manager's branch, else the deal's branch
-- column holding_id: holding of that branch
-- column time_zone: IANA zone of that branch; UTC when unknown
-- column at: when it happened (UTC)
-- column local_date: calendar day of `at` in the branch's zone
-- column done: whether it is done (planned calls, meetings and emails do not count as touches)
-- test: unique(activity_id)
-- test: not_null(activity_id, activity_type, at, local_date)
-- test: accepted_values(activity_type: vocabularies.activity_type)
-- test: sql: select a.activity_id from stg_activity a join deals d on d.deal_id = a.deal_id where d.deleted
select
    a.activity_id,
    a.activity_type,
    a.deal_id,
    coalesce(a.manager_id, d.manager_id) as manager_id,
    coalesce(m.branch_id, d.branch_id) as branch_id,
    b.holding_id,
    coalesce(b.time_zone, 'UTC') as time_zone,
    a.at,
    local_date(a.at, coalesce(b.time_zone, 'UTC')) as local_date,
    a.done
from activities a
left join stg_deal d on d.deal_id = a.deal_id
left join managers m on m.manager_id = coalesce(a.manager_id, d.manager_id)
left join branches b on b.branch_id = coalesce(m.branch_id, d.branch_id)
-- Not a join on stg_deal: a deal that is merely unknown (not synced yet, quarantined) keeps its
-- activities; only a deal known to be deleted takes them along.
where a.deal_id is null or a.deal_id not in (select deal_id from deals where deleted)
