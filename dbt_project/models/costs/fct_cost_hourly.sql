{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_utc',
        indexes=[{'columns': ['hour_utc']}, {'columns': ['org_id', 'hour_utc']}, {'columns': ['built_at']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Cost per UTC hour, org, team, user, service, provider and model, by token bucket: the grain every
-- cost mart is built from (kept WAREHOUSE_HOURLY_RETENTION_DAYS, like the usage rollup).

with

events as (

    select * from {{ ref('fct_event_costs') }}

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
    where event_hour in (select event_hour from affected_hours)
    {% endif %}

),

final as (

    select
        -- grain
        event_hour as hour_utc,
        org_id,
        coalesce(team, 'unknown') as team,
        coalesce(user_id, 'unknown') as user_id,
        coalesce(service, 'unknown') as service,
        provider,
        model,

        -- requests
        count(*) as requests,
        count(*) filter (where is_error) as errors,
        count(*) filter (where not is_priced) as unpriced_requests,

        -- tokens by bucket
        sum(uncached_input_tokens)::bigint as uncached_input_tokens,
        sum(cache_read_tokens)::bigint as cache_read_tokens,
        sum(cache_write_tokens)::bigint as cache_write_tokens,
        sum(non_reasoning_output_tokens)::bigint as non_reasoning_output_tokens,
        sum(reasoning_tokens)::bigint as reasoning_tokens,

        -- cost by bucket, USD (priced requests only; unpriced ones are counted above)
        coalesce(sum(cost_request_usd), 0) as cost_request_usd,
        coalesce(sum(cost_input_usd), 0) as cost_input_usd,
        coalesce(sum(cost_cache_read_usd), 0) as cost_cache_read_usd,
        coalesce(sum(cost_cache_write_usd), 0) as cost_cache_write_usd,
        coalesce(sum(cost_output_usd), 0) as cost_output_usd,
        coalesce(sum(cost_reasoning_usd), 0) as cost_reasoning_usd,
        coalesce(sum(cost_usd), 0) as cost_usd,

        -- the provider's own figure, and both figures over the requests that have both
        sum(provider_cost_usd) as provider_cost_usd,
        count(*) filter (where is_priced and provider_cost_usd is not null) as compared_requests,
        coalesce(sum(cost_usd) filter (where provider_cost_usd is not null), 0) as compared_cost_usd,
        coalesce(sum(provider_cost_usd) filter (where is_priced), 0) as compared_provider_cost_usd

    from scoped
    group by 1, 2, 3, 4, 5, 6, 7

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
