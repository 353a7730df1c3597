-- Open pipeline per open stage (the kanban's columns): open deals, their amount and commission, the amount weighted by the stage's historical win rate, and that win rate.
-- filter rates: pipeline in :pipeline
-- column stage: open stage
-- column stage_order: its position
-- column open_deals: open deals in the stage
-- column open_amount: their amount, in the reporting currency
-- column open_commission: their commission, in the reporting currency
-- column weighted_amount: amount weighted by the stage's historical win rate, in the reporting currency
-- column stage_win_rate: won / closed of the deals of the selected pipelines that reached the stage
-- Every open stage appears, with zeros where no selected deal is in it.
with a as (
    select stage, count(*) as open_deals, sum(amount) as open_amount, sum(commission) as open_commission,
        sum(weighted_amount) as weighted_amount
    from {query.open_deal_selection} o
    group by stage
)
select s.stage, s.stage_order, coalesce(a.open_deals, 0) as open_deals,
    coalesce(a.open_amount, cast(0 as decimal(28, 2))) as open_amount,
    coalesce(a.open_commission, cast(0 as decimal(28, 2))) as open_commission,
    a.weighted_amount,
    cast(w.won_deals as double) / nullif(cast(w.closed_deals as double), 0) as stage_win_rate
from dim_stage s
left join a on a.stage = s.stage
left join (
    select stage, sum(won_deals) as won_deals, sum(closed_deals) as closed_deals
    from mart_stage_win_rate
    where {rates}
    group by stage
) w on w.stage = s.stage
where s.is_open
order by s.stage_order
