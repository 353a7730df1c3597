-- Deals not deleted upstream, with the branch (the deal's own, else its manager's), the branch's holding and time zone resolved.
-- column deal_id: canonical deal id
-- column source_system: upstream system (source name in dealhouse.toml)
-- column source_id: the deal's id upstream
-- column client_id: the client
-- column manager_id: responsible manager
-- column branch_id: the deal's branch, else its manager's branch
-- column holding_id: holding of that branch
-- column time_zone: IANA zone of that branch; UTC when the deal has no branch
-- column pipeline: pipeline (category) id upstream
-- column stage: current canonical stage
-- column status: open, won or lost
-- column lost_reason: why the deal was lost
-- column amount: deal amount in RUB
-- column commission: expected agent commission in RUB
-- column created_at: creation time (UTC)
-- column updated_at: last modification upstream (UTC)
-- column crm_closed_at: close time as the CRM reports it (editable upstream: fct_deal prefers the stage history)
-- test: unique(deal_id)
-- test: not_null(deal_id, stage, status, created_at, time_zone)
select
    d.deal_id,
    d.source_system,
    d.source_id,
    d.client_id,
    d.manager_id,
    coalesce(d.branch_id, m.branch_id) as branch_id,
    b.holding_id,
    coalesce(b.time_zone, 'UTC') as time_zone,
    d.pipeline,
    d.stage,
    d.status,
    d.lost_reason,
    d.amount,
    d.commission,
    d.created_at,
    d.updated_at,
    d.closed_at as crm_closed_at
from deals d
left join managers m on m.manager_id = d.manager_id
left join branches b on b.branch_id = coalesce(d.branch_id, m.branch_id)
where not d.deleted
