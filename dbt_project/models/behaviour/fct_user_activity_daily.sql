{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='day_utc',
        indexes=[{'columns': ['day_utc']}, {'columns': ['org_id', 'user_id']}, {'columns': ['built_at']}],
    )
}}

-- depends_on: {{ ref('stg_usage__events') }}
-- Who was active on which UTC day: one row per org, user and day with their requests. Small (users x
-- days), so it is kept beyond the raw window: active users and cohorts are computed from it.

with

events as (

    select * from {{ ref('stg_usage__events') }}

),

final as (

    select
        (event_hour at time zone 'UTC')::date as day_utc,
        org_id,
        user_id,
        count(*) as requests,
        count(distinct session_id) as sessions,
        count(*) filter (where is_error) as errors,
        sum(input_tokens + output_tokens)::bigint as tokens
    from events
    where user_id is not null
    {% if is_incremental() %}
      and {{ within_affected_days('event_time') }}
    {% endif %}
    group by 1, 2, 3

)

select
    final.*,
    now() as built_at  -- publication copies the rows built since it last ran
from final
