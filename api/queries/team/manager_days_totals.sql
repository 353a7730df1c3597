-- The daily report's totals over every selected manager-day (the manager's name leaves the rows one per day and manager).
-- column calls: done calls
-- column meetings: done meetings
-- column proposals_sent: proposals sent
-- column contracts_signed: contracts signed
-- column deals_won: deals won (by close time)
-- column deals_lost: deals lost (by close time)
-- column won_amount: amount of the deals won, in the reporting currency
select sum(calls) as calls, sum(meetings) as meetings, sum(proposals_sent) as proposals_sent,
    sum(contracts_signed) as contracts_signed, sum(deals_won) as deals_won, sum(deals_lost) as deals_lost,
    sum(won_amount) as won_amount
from {query.manager_days} d
