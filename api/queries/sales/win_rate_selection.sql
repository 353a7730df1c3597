-- Deals won and lost (mart_win_rate_monthly) in the request's close months, holdings, branches and managers: what the leaderboard ranks and draws.
-- filter closed: month >= :from
-- filter closed: month <= :to
-- filter closed: holding_id in :holding
-- filter closed: branch_id in :branch
-- filter closed: manager_id in :manager
-- column *: = mart_win_rate_monthly
select * from mart_win_rate_monthly where {closed}
