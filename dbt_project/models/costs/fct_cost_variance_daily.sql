{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Computed cost against the cost the provider reported, per UTC day, provider and model, over the
-- requests that have both; and how many requests had no price (the pricing coverage metric).

with

hourly as (

    select * from {{ ref('fct_cost_hourly') }}

),

scoped as (

    select hourly.*, (hour_utc at time zone 'UTC')::date as day_utc
    from hourly
    {% if is_incremental() %}
    where {{ within_affected_days('hour_utc') }}
    {% endif %}

),

final as (

    select
        day_utc,
        provider,
        model,
        sum(requests)::bigint as requests,
        sum(unpriced_requests)::bigint as unpriced_requests,
        sum(unpriced_requests)::double precision / nullif(sum(requests), 0) as unpriced_share,
        sum(cost_usd) as computed_cost_usd,
        sum(compared_requests)::bigint as compared_requests,
        sum(compared_cost_usd) as compared_computed_cost_usd,
        sum(compared_provider_cost_usd) as compared_provider_cost_usd,
        sum(compared_cost_usd) - sum(compared_provider_cost_usd) as variance_usd,
        (sum(compared_cost_usd) - sum(compared_provider_cost_usd))
            / nullif(sum(compared_provider_cost_usd), 0) as variance_share
    from scoped
    group by 1, 2, 3

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
