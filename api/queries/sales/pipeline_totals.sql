-- The pipeline's totals over every selected open deal.
-- column open_deals: open deals
-- column open_amount: their amount, in the reporting currency
-- column open_commission: their commission, in the reporting currency
-- column weighted_forecast: sum of the weighted amounts, in the reporting currency
select count(*) as open_deals, sum(amount) as open_amount, sum(commission) as open_commission,
    sum(weighted_amount) as weighted_forecast
from {query.open_deal_selection} o
