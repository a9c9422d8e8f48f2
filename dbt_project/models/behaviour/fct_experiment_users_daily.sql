{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['experiment', 'variant']}, {'columns': ['built_at']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- One row per experiment, variant, user and UTC day (vars experiment_key, variant_key): what
-- fct_experiment_results adds up, so the report reads days of rollups instead of every event again.
-- Costs keep their sums and sums of squares (a variance of any set of days, exactly in numeric);
-- latencies keep a mergeable histogram (p95 within var latency_relative_accuracy).

with

events as (

    select
        events.event_id,
        events.event_time,
        events.event_hour,
        events.org_id,
        events.user_id,
        events.is_error,
        events.latency_ms,
        events.metadata ->> '{{ var("experiment_key") }}' as experiment,
        events.metadata ->> '{{ var("variant_key") }}' as variant
    from {{ ref('stg_usage__events') }} as events
    where events.metadata ->> '{{ var("experiment_key") }}' is not null
      and events.metadata ->> '{{ var("variant_key") }}' is not null

),

day_events as (

    select
        (events.event_hour at time zone 'UTC')::date as day_utc,
        events.*,
        costs.cost_usd
    from events
    left join {{ ref('fct_event_costs') }} as costs
        on costs.event_id = events.event_id
       and costs.event_hour = events.event_hour
       and costs.org_id = events.org_id  -- co-located when both are distributed by org (SCALING)
    {% if is_incremental() %}
       and {{ within_affected_days('costs.event_hour') }}  -- read only the affected days' costs
    where {{ within_affected_days('events.event_time') }}
    {% endif %}

),

-- one pass: per user, day and latency bucket, then the buckets rolled up into the user's day
by_bucket as (

    select
        day_utc, experiment, variant, user_id,
        case when latency_ms is not null then {{ latency_bucket('latency_ms') }} end as bucket,
        min(event_time) as first_seen_at,
        max(event_time) as last_seen_at,
        count(*) as requests,
        count(*) filter (where is_error) as errors,
        count(cost_usd) as priced_requests,
        sum(cost_usd) as cost_usd,
        sum(cost_usd * cost_usd) as cost_usd_squares
    from day_events
    group by 1, 2, 3, 4, 5

)

select
    day_utc,
    experiment,
    variant,
    user_id,
    min(first_seen_at) as first_seen_at,
    max(last_seen_at) as last_seen_at,
    sum(requests)::bigint as requests,
    sum(errors)::bigint as errors,
    sum(priced_requests)::bigint as priced_requests,
    sum(cost_usd) as cost_usd,
    sum(cost_usd_squares) as cost_usd_squares,
    coalesce(array_agg(bucket order by bucket) filter (where bucket is not null), '{}') as latency_buckets,
    coalesce(array_agg(requests order by bucket) filter (where bucket is not null), '{}') as latency_counts,
    now() as built_at  -- publication copies the rows built since it last ran
from by_bucket
group by 1, 2, 3, 4
