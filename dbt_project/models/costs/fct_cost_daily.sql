{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['org_id', 'day_utc']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Daily cost by org, team, user, service, provider and model, split by token bucket (UTC days).
-- fct_cost_daily_local has the same in each org's own time zone.

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
        org_id,
        team,
        user_id,
        service,
        provider,
        model,
        {{ cost_measures() }}
    from scoped
    group by 1, 2, 3, 4, 5, 6, 7

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
