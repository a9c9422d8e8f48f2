{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['org_id', 'day_utc']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- The hourly performance rollup merged to UTC days: counts add up, histograms merge bucket by
-- bucket, and the percentiles are read from the merged histograms (never averaged from hours).

with

hourly as (

    select * from {{ ref('fct_performance_hourly') }}

),

scoped as (

    select
        hourly.*,
        (hour_utc at time zone 'UTC')::date as day_utc
    from hourly
    {% if is_incremental() %}
    where {{ within_affected_days('hour_utc') }}
    {% endif %}

),

latency as (

    select
        day_utc, org_id, service, provider, model,
        array_agg(bucket order by bucket) as latency_buckets,
        array_agg(n order by bucket) as latency_counts
    from (
        select day_utc, org_id, service, provider, model, u.bucket, sum(u.n)::bigint as n
        from scoped, unnest(latency_buckets, latency_counts) as u(bucket, n)
        group by 1, 2, 3, 4, 5, 6
    ) as merged
    group by 1, 2, 3, 4, 5

),

ttft as (

    select
        day_utc, org_id, service, provider, model,
        array_agg(bucket order by bucket) as ttft_buckets,
        array_agg(n order by bucket) as ttft_counts
    from (
        select day_utc, org_id, service, provider, model, u.bucket, sum(u.n)::bigint as n
        from scoped, unnest(ttft_buckets, ttft_counts) as u(bucket, n)
        group by 1, 2, 3, 4, 5, 6
    ) as merged
    group by 1, 2, 3, 4, 5

),

error_codes as (

    select day_utc, org_id, service, provider, model, jsonb_object_agg(error_code, n) as errors_by_code
    from (
        select day_utc, org_id, service, provider, model, codes.key as error_code, sum(codes.value::bigint) as n
        from scoped, jsonb_each_text(errors_by_code) as codes
        group by 1, 2, 3, 4, 5, 6
    ) as counted
    group by 1, 2, 3, 4, 5

),

totals as (

    select
        day_utc, org_id, service, provider, model,
        sum(requests)::bigint as requests,
        sum(successes)::bigint as successes,
        sum(errors)::bigint as errors,
        sum(latency_count)::bigint as latency_count,
        max(latency_max_ms) as latency_max_ms,
        sum(ttft_count)::bigint as ttft_count,
        sum(streamed_output_tokens)::bigint as streamed_output_tokens,
        sum(generation_seconds) as generation_seconds
    from scoped
    group by 1, 2, 3, 4, 5

),

final as (

    select
        -- grain
        totals.day_utc,
        totals.org_id,
        totals.service,
        totals.provider,
        totals.model,

        -- outcome
        totals.requests,
        totals.successes,
        totals.errors,
        totals.errors::double precision / totals.requests as error_rate,
        coalesce(error_codes.errors_by_code, '{}'::jsonb) as errors_by_code,
        totals.requests / 1440.0 as requests_per_minute,

        -- latency
        totals.latency_count,
        marts.histogram_quantile(latency.latency_buckets, latency.latency_counts, 0.50) as latency_p50_ms,
        marts.histogram_quantile(latency.latency_buckets, latency.latency_counts, 0.90) as latency_p90_ms,
        marts.histogram_quantile(latency.latency_buckets, latency.latency_counts, 0.95) as latency_p95_ms,
        marts.histogram_quantile(latency.latency_buckets, latency.latency_counts, 0.99) as latency_p99_ms,
        totals.latency_max_ms,
        coalesce(latency.latency_buckets, '{}') as latency_buckets,
        coalesce(latency.latency_counts, '{}') as latency_counts,

        -- time to first token
        totals.ttft_count,
        marts.histogram_quantile(ttft.ttft_buckets, ttft.ttft_counts, 0.50) as ttft_p50_ms,
        marts.histogram_quantile(ttft.ttft_buckets, ttft.ttft_counts, 0.95) as ttft_p95_ms,
        coalesce(ttft.ttft_buckets, '{}') as ttft_buckets,
        coalesce(ttft.ttft_counts, '{}') as ttft_counts,

        -- generation speed
        totals.streamed_output_tokens,
        totals.generation_seconds,
        totals.streamed_output_tokens / nullif(totals.generation_seconds, 0) as output_tokens_per_second

    from totals
    left join latency using (day_utc, org_id, service, provider, model)
    left join ttft using (day_utc, org_id, service, provider, model)
    left join error_codes using (day_utc, org_id, service, provider, model)

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
