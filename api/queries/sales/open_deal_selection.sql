-- The open deals the pipeline counts (the semantic layer's open_deals: weighted by their stage's historical win rate), narrowed by the request's creation months, holdings, branches and managers.
-- filter deals: created_month >= :from
-- filter deals: created_month <= :to
-- filter deals: pipeline in :pipeline
-- filter deals: holding_id in :holding
-- filter deals: branch_id in :branch
-- filter deals: manager_id in :manager
-- column *: = fct_deal
-- column weighted_amount: amount x won / closed of the deals that reached its stage (mart_stage_win_rate), rounded to kopecks; null when none of them has closed
select * from {tables.open_deals} o where {deals}
