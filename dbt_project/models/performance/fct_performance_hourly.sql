{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_utc',
        indexes=[
            {'columns': ['hour_utc']},
            {'columns': ['org_id', 'hour_utc']},
            {'columns': ['built_at']},
        ],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Is it slow or failing, and where: per UTC hour, org, service, provider and model. Latency and time
-- to first token are kept as mergeable histograms, so any range and any dimension can be read from
-- this table alone (marts.histogram_quantile) after the raw events are gone.

with

events as (

    select * from {{ ref('stg_usage__events') }}

),

{% if is_incremental() %}
affected_hours as (

    {{ affected_event_hours() }}

),
{% endif %}

scoped as (

    select
        event_hour as hour_utc,
        org_id,
        coalesce(service, 'unknown') as service,
        provider,
        model,
        is_error,
        coalesce(error_code, 'unknown') as error_code,
        latency_ms,
        ttft_ms,
        output_tokens,
        -- generation time: from first token to the end, for successful streamed requests
        case when not is_error and latency_ms > ttft_ms then (latency_ms - ttft_ms) / 1000.0 end
            as generation_seconds
    from events
    {% if is_incremental() %}
    where {{ within_affected_hours() }}
    {% endif %}

),

latency_buckets as (

    select hour_utc, org_id, service, provider, model, {{ latency_bucket('latency_ms') }} as bucket, count(*) as n
    from scoped
    where latency_ms is not null
    group by 1, 2, 3, 4, 5, 6

),

latency as (

    select
        hour_utc, org_id, service, provider, model,
        array_agg(bucket order by bucket) as latency_buckets,
        array_agg(n order by bucket) as latency_counts
    from latency_buckets
    group by 1, 2, 3, 4, 5

),

ttft_buckets as (

    select hour_utc, org_id, service, provider, model, {{ latency_bucket('ttft_ms') }} as bucket, count(*) as n
    from scoped
    where ttft_ms is not null
    group by 1, 2, 3, 4, 5, 6

),

ttft as (

    select
        hour_utc, org_id, service, provider, model,
        array_agg(bucket order by bucket) as ttft_buckets,
        array_agg(n order by bucket) as ttft_counts
    from ttft_buckets
    group by 1, 2, 3, 4, 5

),

error_codes as (

    select hour_utc, org_id, service, provider, model, jsonb_object_agg(error_code, n) as errors_by_code
    from (
        select hour_utc, org_id, service, provider, model, error_code, count(*) as n
        from scoped
        where is_error
        group by 1, 2, 3, 4, 5, 6
    ) as counted
    group by 1, 2, 3, 4, 5

),

totals as (

    select
        hour_utc, org_id, service, provider, model,
        count(*) as requests,
        count(*) filter (where not is_error) as successes,
        count(*) filter (where is_error) as errors,
        count(latency_ms) as latency_count,
        max(latency_ms) as latency_max_ms,
        count(ttft_ms) as ttft_count,
        coalesce(sum(output_tokens) filter (where generation_seconds is not null), 0)::bigint as streamed_output_tokens,
        coalesce(sum(generation_seconds), 0) as generation_seconds
    from scoped
    group by 1, 2, 3, 4, 5

),

final as (

    select
        -- grain
        totals.hour_utc,
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
        totals.requests / 60.0 as requests_per_minute,

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
    left join latency using (hour_utc, org_id, service, provider, model)
    left join ttft using (hour_utc, org_id, service, provider, model)
    left join error_codes using (hour_utc, org_id, service, provider, model)

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
