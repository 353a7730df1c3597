-- Branches ranked by the amount won in the period, with commission, deals won and lost and the win rate.
-- filter branches: holding_id in :holding
-- filter branches: branch_id in :branch
-- column rank: 1 = largest won amount; ties share a rank
-- column branch_id: branch (null: deals without a branch)
-- column branch_name: branch name
-- column city: city
-- column holding_id: holding
-- column won_amount: amount won in the period, in the reporting currency
-- column commission: commission of the deals won, in the reporting currency
-- column deals_won: deals won
-- column deals_lost: deals lost
-- column win_rate: won / (won + lost)
with w as (
    select branch_id, sum(won) as deals_won, sum(lost) as deals_lost, sum(won_amount) as won_amount,
        sum(won_commission) as commission
    from {query.win_rate_selection} c
    group by branch_id
),
-- Branches that closed nothing still rank (last), unless a manager filter narrows the board
-- to where those managers worked.
keys as (
    select branch_id from w
    union
    select branch_id from branches where {branches} and :manager is null
),
r as (
    select k.branch_id, b.name as branch_name, b.city, b.holding_id,
        coalesce(w.won_amount, cast(0 as decimal(28, 2))) as won_amount,
        coalesce(w.commission, cast(0 as decimal(28, 2))) as commission,
        coalesce(w.deals_won, 0) as deals_won,
        coalesce(w.deals_lost, 0) as deals_lost,
        cast(w.deals_won as double) / nullif(cast(w.deals_won + w.deals_lost as double), 0) as win_rate
    from keys k
    left join w on w.branch_id is not distinct from k.branch_id
    left join branches b on b.branch_id = k.branch_id
)
select rank() over (order by won_amount desc) as rank, r.*
from r
order by won_amount desc, branch_id
