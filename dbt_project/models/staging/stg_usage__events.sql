-- One row per usage event, from landing hours whose quality gate passed, with derived time grains.
with

source as (

    select * from {{ source('raw', 'usage_events') }}

),

gated as (

    -- rows of an hour that failed (or has not yet passed) its suite never reach a mart
    select source.*
    from source
    join {{ source('raw', 'landing_hours') }} as gate
        on gate.landing_hour = source.landing_hour
       and gate.gate_status = 'passed'

),

final as (

    select
        -- ids
        event_id,
        org_id,
        user_id,
        session_id,

        -- what was called
        service,
        operation,
        tool,
        action,
        event_type,
        provider,
        model,

        -- tokens
        coalesce(input_tokens, 0) as input_tokens,
        coalesce(cached_input_tokens, 0) as cached_input_tokens,
        coalesce(cache_write_tokens, 0) as cache_write_tokens,
        coalesce(output_tokens, 0) as output_tokens,
        coalesce(reasoning_tokens, 0) as reasoning_tokens,

        -- money
        credits,
        provider_cost_usd,

        -- performance
        latency_ms,
        ttft_ms,
        status,
        status = 'error' as is_error,
        error_code,
        http_status,

        -- time
        event_time,
        date_trunc('hour', event_time, 'UTC') as event_hour,
        received_at,
        landing_hour,

        metadata

    from gated

)

select * from final
