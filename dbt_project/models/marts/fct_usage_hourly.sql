{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_utc',
        indexes=[
            {'columns': ['hour_utc']},
            {'columns': ['built_at']},
            {'columns': ['org_id', 'hour_utc']},
        ],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Requests, tokens, errors and latency per UTC hour, org, service, provider and model.
-- An incremental run recomputes whole hours: every hour touched by an event that landed in the
-- run's window (run_window: min_date/max_date), so a late event refreshes the hour it belongs to.

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

    select events.*
    from events
    {% if is_incremental() %}
    where {{ within_affected_hours() }}
    {% endif %}

),

final as (

    select
        -- grain
        event_hour as hour_utc,
        org_id,
        coalesce(service, 'unknown') as service,
        provider,
        model,

        -- volume and outcome
        count(*) as requests,
        count(*) filter (where not is_error) as successes,
        count(*) filter (where is_error) as errors,

        -- tokens
        sum(input_tokens)::bigint as input_tokens,
        sum(cached_input_tokens)::bigint as cached_input_tokens,
        sum(cache_write_tokens)::bigint as cache_write_tokens,
        sum(output_tokens)::bigint as output_tokens,
        sum(reasoning_tokens)::bigint as reasoning_tokens,

        -- money as reported by the provider (numeric: exact and order-independent)
        sum(provider_cost_usd::numeric) as provider_cost_usd,

        -- latency (sums and counts stay additive across hours; numeric sums are exact, so
        -- a recomputed hour is identical whatever order the rows are read in)
        sum(latency_ms::numeric) as latency_ms_sum,
        count(latency_ms) as latency_ms_count,
        max(latency_ms) as latency_ms_max,
        sum(ttft_ms::numeric) as ttft_ms_sum,
        count(ttft_ms) as ttft_ms_count

    from scoped
    group by 1, 2, 3, 4, 5

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
