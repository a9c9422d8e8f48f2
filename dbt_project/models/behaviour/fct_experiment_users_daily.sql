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
    {% if is_incremental() %}
       and {{ within_affected_days('costs.event_hour') }}  -- read only the affected days' costs
    where {{ within_affected_days('events.event_time') }}
    {% endif %}

),

latency_buckets as (

    select day_utc, experiment, variant, user_id, {{ latency_bucket('latency_ms') }} as bucket, count(*) as n
    from day_events
    where latency_ms is not null
    group by 1, 2, 3, 4, 5

),

latency as (

    select
        day_utc, experiment, variant, user_id,
        array_agg(bucket order by bucket) as latency_buckets,
        array_agg(n order by bucket) as latency_counts
    from latency_buckets
    group by 1, 2, 3, 4

),

totals as (

    select
        day_utc,
        experiment,
        variant,
        user_id,
        min(event_time) as first_seen_at,
        max(event_time) as last_seen_at,
        count(*) as requests,
        count(*) filter (where is_error) as errors,
        count(cost_usd) as priced_requests,
        sum(cost_usd) as cost_usd,
        sum(cost_usd * cost_usd) as cost_usd_squares
    from day_events
    group by 1, 2, 3, 4

)

select
    totals.*,
    coalesce(latency.latency_buckets, '{}') as latency_buckets,
    coalesce(latency.latency_counts, '{}') as latency_counts,
    now() as built_at  -- publication copies the rows built since it last ran
from totals
left join latency
    on latency.day_utc = totals.day_utc
   and latency.experiment = totals.experiment
   and latency.variant = totals.variant
   and latency.user_id is not distinct from totals.user_id
