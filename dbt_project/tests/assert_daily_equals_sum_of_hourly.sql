{{ config(meta={"dagster": {"ref": {"name": "fct_usage_daily"}}}) }}

-- Reconciliation: every UTC day's requests, errors and tokens equal the sum of its hours, from the
-- day after the oldest hour kept (retention deletes hours after WAREHOUSE_HOURLY_RETENTION_DAYS but
-- keeps days).
with hourly as (
    select (hour_utc at time zone 'UTC')::date as day_utc, org_id,
           sum(requests) as requests, sum(errors) as errors, sum(input_tokens + output_tokens) as tokens
    from {{ ref('fct_usage_hourly') }}
    group by 1, 2
),
daily as (
    select day_utc, org_id,
           sum(requests) as requests, sum(errors) as errors, sum(input_tokens + output_tokens) as tokens
    from {{ ref('fct_usage_daily') }}
    group by 1, 2
)
select day_utc, org_id, hourly.requests as hourly_requests, daily.requests as daily_requests,
       hourly.errors as hourly_errors, daily.errors as daily_errors,
       hourly.tokens as hourly_tokens, daily.tokens as daily_tokens
from hourly
full outer join daily using (day_utc, org_id)
where day_utc > (select (min(hour_utc) at time zone 'UTC')::date from {{ ref('fct_usage_hourly') }})
  and (hourly.requests is distinct from daily.requests
       or hourly.errors is distinct from daily.errors
       or hourly.tokens is distinct from daily.tokens)
