-- Pipelines (sales processes) the caller's deals are in, the main one first: the pipeline with the most deals (ties: the smaller id). Dashboards show the main one unless another is chosen, so two processes are never mixed in one funnel by default.
-- column pipeline: = fct_deal
-- column deals: deals in the pipeline
-- column open_deals: of them, open now
select pipeline, count(*) as deals, count(case when status = 'open' then 1 end) as open_deals
from fct_deal
group by pipeline
order by deals desc, pipeline
