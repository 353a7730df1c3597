-- Won amount and deals per branch and month of the period: the leaderboard's sparklines (months without wins are absent).
-- column branch_id: branch (null: deals without a branch)
-- column month: month (first day)
-- column won_amount: won that month, in the reporting currency
-- column deals_won: deals won that month
select branch_id, month, sum(won_amount) as won_amount, sum(won) as deals_won
from {query.win_rate_selection} c
group by branch_id, month
