{{ config(meta={"dagster": {"ref": {"name": "fct_performance_hourly"}}}) }}

-- Reconciliation: in every hour the run refreshed, the performance rollup holds exactly the requests,
-- errors and latencies of the gated events, and each histogram holds every latency once.
with affected_hours as (
    {{ affected_event_hours() }}
),
events as (
    select event_hour as hour_utc, org_id, count(*) as requests, count(*) filter (where is_error) as errors,
           count(latency_ms) as latencies, count(ttft_ms) as ttfts
    from {{ ref('stg_usage__events') }}
    where {{ within_affected_hours() }}
    group by 1, 2
),
rollup as (
    select hour_utc, org_id, sum(requests) as requests, sum(errors) as errors, sum(latency_count) as latencies,
           sum(ttft_count) as ttfts,
           sum((select coalesce(sum(n), 0) from unnest(latency_counts) as n)) as latencies_in_buckets,
           sum((select coalesce(sum(n), 0) from unnest(ttft_counts) as n)) as ttfts_in_buckets,
           sum((select coalesce(sum(value::bigint), 0) from jsonb_each_text(errors_by_code))) as errors_by_code
    from {{ ref('fct_performance_hourly') }}
    where hour_utc in (select event_hour from affected_hours)
    group by 1, 2
)
select hour_utc, org_id, events.requests as event_requests, rollup.requests as rollup_requests,
       events.errors as event_errors, rollup.errors as rollup_errors, rollup.errors_by_code,
       events.latencies as event_latencies, rollup.latencies as rollup_latencies, rollup.latencies_in_buckets,
       events.ttfts as event_ttfts, rollup.ttfts_in_buckets
from events
full outer join rollup using (hour_utc, org_id)
where events.requests is distinct from rollup.requests
   or events.errors is distinct from rollup.errors
   or events.errors is distinct from rollup.errors_by_code
   or events.latencies is distinct from rollup.latencies
   or events.latencies is distinct from rollup.latencies_in_buckets
   or events.ttfts is distinct from rollup.ttfts
   or events.ttfts is distinct from rollup.ttfts_in_buckets
