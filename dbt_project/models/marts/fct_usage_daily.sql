{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['org_id', 'day_utc']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- The hourly rollup summed to UTC days. An incremental run recomputes every day that holds an
-- hour refreshed by the same window, so daily always equals the sum of its hours.

with

hourly as (

    select * from {{ ref('fct_usage_hourly') }}

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

final as (

    select
        -- grain
        day_utc,
        org_id,
        service,
        provider,
        model,

        -- volume and outcome
        sum(requests)::bigint as requests,
        sum(successes)::bigint as successes,
        sum(errors)::bigint as errors,
        sum(errors)::double precision / nullif(sum(requests), 0) as error_rate,

        -- tokens
        sum(input_tokens)::bigint as input_tokens,
        sum(cached_input_tokens)::bigint as cached_input_tokens,
        sum(cache_write_tokens)::bigint as cache_write_tokens,
        sum(output_tokens)::bigint as output_tokens,
        sum(reasoning_tokens)::bigint as reasoning_tokens,

        -- money as reported by the provider
        sum(provider_cost_usd) as provider_cost_usd,

        -- latency
        sum(latency_ms_sum) / nullif(sum(latency_ms_count), 0) as latency_ms_avg,
        max(latency_ms_max) as latency_ms_max,
        sum(ttft_ms_sum) / nullif(sum(ttft_ms_count), 0) as ttft_ms_avg

    from scoped
    group by 1, 2, 3, 4, 5

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
