{{ config(meta={"dagster": {"ref": {"name": "fct_performance_daily"}}}) }}

-- Reconciliation: each UTC day of the performance mart holds the requests, errors and histogram
-- counts of its hours, bucket by bucket (from the day after the oldest hour kept: retention deletes
-- hours and keeps days). Judges the days of the run's window (every day in a full build).
with hourly as (
    select (hour_utc at time zone 'UTC')::date as day_utc, org_id, model, u.bucket, sum(u.n) as n
    from {{ ref('fct_performance_hourly') }}, unnest(latency_buckets, latency_counts) as u(bucket, n)
    where {{ within_affected_days('hour_utc') }}
    group by 1, 2, 3, 4
),
daily as (
    select day_utc, org_id, model, u.bucket, sum(u.n) as n
    from {{ ref('fct_performance_daily') }}, unnest(latency_buckets, latency_counts) as u(bucket, n)
    where {{ within_affected_days("day_utc::timestamp at time zone 'UTC'") }}
    group by 1, 2, 3, 4
)
select day_utc, org_id, model, bucket, hourly.n as hourly_count, daily.n as daily_count
from hourly
full outer join daily using (day_utc, org_id, model, bucket)
where day_utc > (select (min(hour_utc) at time zone 'UTC')::date from {{ ref('fct_performance_hourly') }})
  and hourly.n is distinct from daily.n
