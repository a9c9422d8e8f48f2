{{ config(meta={"dagster": {"ref": {"name": "fct_cost_hourly"}}}) }}

-- Reconciliation: in every hour the run refreshed, the hourly cost rollup holds exactly the
-- requests, unpriced requests and cost of the priced events of that hour, and every gated event
-- was priced once (no event lost or doubled by the price join).
with affected_hours as (
    {{ affected_event_hours() }}
),
gated as (
    select event_hour as hour_utc, org_id, count(*) as requests
    from {{ ref('stg_usage__events') }}
    where {{ within_affected_hours() }}
    group by 1, 2
),
events as (
    select event_hour as hour_utc, org_id, count(*) as requests,
           count(*) filter (where not is_priced) as unpriced, coalesce(sum(cost_usd), 0) as cost_usd
    from {{ ref('fct_event_costs') }}
    where event_hour in (select event_hour from affected_hours)
    group by 1, 2
),
rollup as (
    select hour_utc, org_id, sum(requests) as requests, sum(unpriced_requests) as unpriced, sum(cost_usd) as cost_usd
    from {{ ref('fct_cost_hourly') }}
    where hour_utc in (select event_hour from affected_hours)
    group by 1, 2
)
select hour_utc, org_id, gated.requests as gated_requests, events.requests as costed_requests,
       rollup.requests as rollup_requests, events.unpriced as costed_unpriced, rollup.unpriced as rollup_unpriced,
       events.cost_usd as event_cost_usd, rollup.cost_usd as rollup_cost_usd
from gated
full outer join events using (hour_utc, org_id)
full outer join rollup using (hour_utc, org_id)
where gated.requests is distinct from events.requests
   or events.requests is distinct from rollup.requests
   or events.unpriced is distinct from rollup.unpriced
   or events.cost_usd is distinct from rollup.cost_usd
