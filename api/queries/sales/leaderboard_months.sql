-- The period's months in order: the leaderboard sparklines' x axis.
-- filter period: month >= :from
-- filter period: month <= :to
-- column month: = dim_month
select month from dim_month where {period} order by month
