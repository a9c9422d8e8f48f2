{{ config(meta={"dagster": {"ref": {"name": "fct_usage_hourly"}}}) }}

-- Reconciliation: in every hour the run refreshed, the hourly rollup holds exactly the requests,
-- errors and tokens of the gated events of that hour (a lost row or a doubling join shows here).
with affected_hours as (
    {{ affected_event_hours() }}
),
events as (
    select event_hour as hour_utc, org_id, count(*) as requests, count(*) filter (where is_error) as errors,
           sum(input_tokens + output_tokens) as tokens
    from {{ ref('stg_usage__events') }}
    where {{ within_affected_hours() }}
    group by 1, 2
),
rollup as (
    select hour_utc, org_id, sum(requests) as requests, sum(errors) as errors,
           sum(input_tokens + output_tokens) as tokens
    from {{ ref('fct_usage_hourly') }}
    where hour_utc in (select event_hour from affected_hours)
    group by 1, 2
)
select hour_utc, org_id,
       events.requests as event_requests, rollup.requests as rollup_requests,
       events.errors as event_errors, rollup.errors as rollup_errors,
       events.tokens as event_tokens, rollup.tokens as rollup_tokens
from events
full outer join rollup using (hour_utc, org_id)
where events.requests is distinct from rollup.requests
   or events.errors is distinct from rollup.errors
   or events.tokens is distinct from rollup.tokens
